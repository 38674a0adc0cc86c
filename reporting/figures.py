"""Accuracy against shots: one panel per dataset, one line per init with its seed spread."""
from __future__ import annotations

import io
from typing import Any

from .study import Study, non_monotone_steps, reference_value

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


PAGE_PX = 1200  # the report's column (report.html's max-width): figures are drawn this wide
MIN_TEXT_PX = 10  # no text smaller than this when the page is shown at 100 %


def fit_to_page(figure: Any, width_px: int = PAGE_PX, min_px: float = MIN_TEXT_PX) -> float:
    """The dpi that draws ``figure`` exactly page-wide; any text that would be smaller than
    ``min_px`` there is grown to it (tick labels included), and the layout redone."""
    from matplotlib.text import Text

    dpi = width_px / figure.get_figwidth()
    floor = min_px * 72.0 / dpi + 1e-6
    grown = False
    for axis in figure.axes:
        for which in (axis.xaxis, axis.yaxis):
            labels = which.get_ticklabels()
            if labels and labels[0].get_fontsize() < floor:
                axis.tick_params(axis="x" if which is axis.xaxis else "y", labelsize=floor)
                grown = True
    for text in figure.findobj(Text):
        if text.get_text() and text.get_fontsize() < floor:
            text.set_fontsize(floor)
            grown = True
    if grown and not figure.get_constrained_layout():
        figure.tight_layout()  # only when sizes changed: a drawer's own layout stays otherwise
    return dpi


def separate_labels(figure: Any, dpi: float, rounds: int = 40) -> int:
    """Move overlapping annotations of each panel apart vertically (t-SNE class names); each
    stays beside its point's column. Returns how many overlaps are left (0: none)."""
    from matplotlib.text import Annotation

    figure.set_dpi(dpi)
    renderer = figure.canvas.get_renderer()
    left = 0
    for axis in figure.axes:
        labels = [t for t in axis.texts if isinstance(t, Annotation)]
        for _ in range(rounds):
            boxes = [t.get_window_extent(renderer) for t in labels]
            moved = False
            for i in range(len(labels)):
                for j in range(i + 1, len(labels)):
                    a, b = boxes[i], boxes[j]
                    if a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1:
                        # push the lower one down and the upper one up by half the overlap
                        step = (min(a.y1, b.y1) - max(a.y0, b.y0)) / 2 + 1
                        low, high = (labels[i], labels[j]) if a.y0 <= b.y0 else \
                            (labels[j], labels[i])
                        for text, sign in ((low, -1), (high, 1)):
                            x, y = text.get_position() if text.get_anncoords() != "offset points" \
                                else text.xyann
                            text.xyann = (x, y + sign * step * 72.0 / dpi)
                        moved = True
                        boxes = [t.get_window_extent(renderer) for t in labels]
            if not moved:
                break
        boxes = [t.get_window_extent(renderer) for t in labels]
        left += sum(1 for i in range(len(boxes)) for j in range(i + 1, len(boxes))
                    if boxes[i].overlaps(boxes[j]))
    return left


def layout_problems(figure: Any, dpi: float, min_px: float = MIN_TEXT_PX) -> list[str]:
    """Every visible text that lies outside the figure or is drawn below ``min_px``."""
    from matplotlib.text import Text

    figure.set_dpi(dpi)
    renderer = figure.canvas.get_renderer()
    figure.draw(renderer)
    width, height = figure.get_figwidth() * dpi, figure.get_figheight() * dpi
    # Tick labels of ticks outside an axis's view exist but are never drawn: skip them.
    undrawn = set()
    for axis in figure.axes:
        for which, (low, high) in ((axis.xaxis, axis.get_xlim()), (axis.yaxis, axis.get_ylim())):
            low, high = min(low, high), max(low, high)
            for tick in which.get_major_ticks() + which.get_minor_ticks():
                if not low - 1e-9 * abs(high - low) <= tick.get_loc() <= high + 1e-9 * abs(high - low) \
                        or not axis.get_visible():
                    undrawn.update({id(tick.label1), id(tick.label2)})
    problems = []
    for text in figure.findobj(Text):
        if not (text.get_visible() and text.get_text().strip()) or id(text) in undrawn or \
                (text.axes is not None and not text.axes.get_visible()):
            continue
        box = text.get_window_extent(renderer)
        if box.x0 < -1 or box.y0 < -1 or box.x1 > width + 1 or box.y1 > height + 1:
            problems.append(f"'{text.get_text()[:40]}' outside the figure ({box.x0:.0f}, "
                            f"{box.y0:.0f}, {box.x1:.0f}, {box.y1:.0f} in {width:.0f}x"
                            f"{height:.0f})")
        size = text.get_fontsize() * dpi / 72.0
        if size < min_px - 1e-3:
            problems.append(f"'{text.get_text()[:40]}' drawn at {size:.1f} px")
    return problems


def png_bytes(figure: Any, dpi: float | None = None) -> bytes:
    """The figure as PNG bytes, page-wide with readable text (then closed: a report draws
    many). ``dpi`` is ignored: the page decides it (kept for callers' signatures)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    dpi = fit_to_page(figure)
    separate_labels(figure, dpi)
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    return buffer.getvalue()


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display; the report is written from any machine
    import matplotlib.pyplot as plt
    return plt


PAGE_INCHES = 12.0  # at DPI, as wide as the page's 1200 px column: shown at 100 %, no scaling
DPI = 100
FONT = 11  # pt at DPI 100: ~15 px, above the 10 px floor at the page's width
PANELS_PER_ROW = 3


def _grid(plt: Any, panels: int, height: float = 3.6) -> tuple[Any, list[Any]]:
    columns = max(1, min(panels, PANELS_PER_ROW))
    lines = -(-panels // columns)
    figure, axes = plt.subplots(lines, columns, figsize=(PAGE_INCHES, height * lines + 0.9),
                                squeeze=False, layout="constrained")
    flat = [a for row in axes for a in row]
    for spare in flat[panels:]:
        spare.set_visible(False)
    return figure, flat[:panels]


def _legend_below(figure: Any, axes: list[Any]) -> None:
    """One legend for every panel, below them: it never covers data."""
    seen: dict[str, Any] = {}
    for axis in axes:
        for handle, label in zip(*axis.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    if seen:
        figure.legend(list(seen.values()), list(seen), loc="outside lower center",
                      ncol=min(4, len(seen)), fontsize=FONT - 1, frameon=False)


def accuracy_figure(study: Study, reference: Any) -> bytes:
    return png_bytes(accuracy_plot(study, reference))


def accuracy_plot(study: Study, reference: Any) -> Any:
    plt = pyplot()
    plt.rcParams.update({"font.size": FONT})
    datasets = list(dict.fromkeys(row.dataset for row in study.rows))
    figure, axes = _grid(plt, len(datasets))
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labels = list(dict.fromkeys(row.label for row in study.rows))
    for axis, dataset in zip(axes, datasets):
        for row in [r for r in study.rows if r.dataset == dataset]:
            index = labels.index(row.label)
            color, marker = palette[index % len(palette)], MARKERS[index % len(MARKERS)]
            shots = [s for s in study.shots if (row, s) in study.cells]
            cells = [study.cells[(row, s)] for s in shots]
            # A small sideways offset per init (log x): spreads of one shot count never overlap.
            x = [s * 2 ** (0.06 * (index - (len(labels) - 1) / 2)) for s in shots]
            means = [c.mean for c in cells]
            stds = [c.std for c in cells]
            axis.errorbar(x, means, yerr=stds, color=color, marker=marker, capsize=3,
                          label=f"{row.label}")
            ref = [(xi, reference_value(reference, row, s)) for xi, s in zip(x, shots)]
            ref = [(xi, v) for xi, v in ref if v is not None]
            if ref:
                axis.scatter([p[0] for p in ref], [p[1] for p in ref], marker=marker, s=60,
                             facecolors="none", edgecolors=color, linewidths=1.5,
                             label=f"{row.label} (reference)")
            for s0, s1, drop in non_monotone_steps(study, row):
                xi = x[shots.index(s1)]
                axis.scatter([xi], [means[shots.index(s1)]], marker="x", s=90, color="red",
                             zorder=5, label="below the previous shot count")
        axis.set_xscale("log", base=2)
        axis.set_xticks(study.shots, [str(s) for s in study.shots])
        axis.minorticks_off()
        axis.set_title(dataset)
        axis.set_xlabel("shots per class")
        axis.set_ylabel("test accuracy (%)")
        axis.grid(alpha=0.3)
    _legend_below(figure, axes)
    return figure


def grid_figure(study: Study, factor: Any) -> bytes:
    return png_bytes(grid_plot(study, factor))


def grid_plot(study: Study, factor: Any) -> Any:
    """Accuracy against one grid key's values: a panel per data set and other factors, a line
    per shot count (mean, bars: population std over seeds)."""
    from .study import factor_value, factor_values, short_key, Row

    plt = pyplot()
    plt.rcParams.update({"font.size": FONT})
    values = factor_values(study, factor)
    panels: dict[tuple[str, str], list] = {}
    for row in study.rows:
        others = Row("", row.init, row.vis_init, "", row.config).label
        panels.setdefault((row.dataset, others), []).append(row)
    figure, axes = _grid(plt, len(panels))
    for axis, ((dataset, others), rows) in zip(axes, panels.items()):
        for shots in study.shots:
            points = [(values.index(factor_value(study, r, factor)), study.cells[(r, shots)])
                      for r in rows if (r, shots) in study.cells]
            points.sort(key=lambda p: p[0])
            if points:
                axis.errorbar([p[0] for p in points], [c.mean for _, c in points],
                              yerr=[c.std for _, c in points], marker="o", capsize=3,
                              label=f"{shots} shot" + ("s" if shots != 1 else ""))
        axis.set_xticks(range(len(values)), values)
        axis.set_xlim(-0.4, len(values) - 0.6)
        axis.set_title(f"{dataset}, {others}")
        axis.set_xlabel(f"{short_key(factor.key)} (baseline {factor.baseline})")
        axis.set_ylabel("test accuracy (%)")
        axis.grid(alpha=0.3)
    _legend_below(figure, axes)
    return figure
