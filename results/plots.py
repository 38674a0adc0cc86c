"""--plot: the few-shot grid as accuracy against shots, one panel per dataset, one line per
method (dodged along x, error bars cut at 0 and 100), references as hollow markers."""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from .labels import Method
from study.run import dataset_display_name
from .reference import Reference
from .study import NOT_AS_PUBLISHED
from .tables import GridTable

DODGE_OCTAVES = 0.1  # horizontal offset between neighbouring methods, in log2(shots) units
CAPSIZE = 3  # error bar caps, points
REFERENCE_MARKERS = ("o", "s", "^", "D", "v", "P")
METRIC_RANGE = (0.0, 100.0)  # percentages: error bars are clipped to it


def dodge_factor(index: int, count: int) -> float:
    """Multiplier of the shots for method ``index`` of ``count`` (a log2 x axis): the methods
    sit side by side, centred on the shots, so their error bars never overlap."""
    step = min(DODGE_OCTAVES, 0.8 / count)  # all of them stay within 0.4 octave of the shots
    return 2.0 ** ((index - (count - 1) / 2) * step)


def clipped_error(mean: float, spread: float) -> tuple[float, float]:
    """(down, up) error bar lengths, cut at the metric's range (0 % and 100 %)."""
    low, high = METRIC_RANGE
    return max(min(spread, mean - low), 0.0), max(min(spread, high - mean), 0.0)


def draw_grid_figure(table: GridTable, use_ci95: bool, keyword: str,
                     references: Sequence[Reference] = ()) -> tuple:
    """The figure, and {(dataset, method label): [(x, mean, down, up)]} as plotted."""
    import matplotlib

    matplotlib.use("Agg")  # a file, no display needed
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    columns = min(len(table.datasets), 3)
    panel_rows = math.ceil(len(table.datasets) / columns)
    figure, axes = plt.subplots(panel_rows, columns, figsize=(4.5 * columns, 3.5 * panel_rows),
                                squeeze=False)
    methods = list(dict.fromkeys(method for method, _ in table.rows))
    # One colour per method in every panel, even where a method has no points.
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    plotted: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
    all_shots = sorted({shots for _, shots in table.rows})
    for axis, dataset in zip(axes.flat, table.datasets):
        for index, method in enumerate(methods):
            color = palette[index % len(palette)]
            factor = dodge_factor(index, len(methods))
            points = [(shots * factor, mean, *clipped_error(mean, spread))
                      for shots, mean, spread in plot_points(table, method, dataset, use_ci95)]
            if points:
                xs, means, downs, ups = zip(*points)
                unpublished = references and any(
                    (method.label, shots) in table.unpublished for method_, shots in table.rows
                    if method_ == method)
                label = f"{method.label} ({NOT_AS_PUBLISHED})" if unpublished else method.label
                axis.errorbar(xs, means, yerr=[downs, ups], marker="o", capsize=CAPSIZE,
                              label=label, color=color)
                plotted[(dataset, method.label)] = points
            for marker, reference in zip(REFERENCE_MARKERS, references):
                marks = [(shots * factor, value) for shots in all_shots
                         if (method, shots) in table.rows
                         and (value := reference.value(method, shots, dataset)) is not None]
                if marks:
                    axis.plot(*zip(*marks), linestyle="none", marker=marker, markersize=7,
                              markerfacecolor="none", markeredgecolor=color)
        axis.set_xscale("log", base=2)
        axis.set_xticks(all_shots, [str(shots) for shots in all_shots])
        axis.set_xticks([], minor=True)
        axis.set_title(dataset_display_name(dataset))
        axis.set_xlabel("shots per class")
        axis.set_ylabel(f"{keyword} (%)")
        axis.grid(alpha=0.3)
        handles, _ = axis.get_legend_handles_labels()
        handles += [Line2D([], [], linestyle="none", marker=marker, markerfacecolor="none",
                           markeredgecolor="gray", label=reference.name)
                    for marker, reference in zip(REFERENCE_MARKERS, references)]
        axis.legend(handles=handles, fontsize="small")
    for axis in list(axes.flat)[len(table.datasets):]:
        axis.set_visible(False)
    figure.tight_layout()
    return figure, plotted


def plot_grid_table(table: GridTable, path: Path, use_ci95: bool, keyword: str,
                    references: Sequence[Reference] = ()) -> None:
    """Accuracy against shots, one panel per dataset, one line per method with error bars
    (methods dodged along x, bars clipped to 0-100), references as hollow markers."""
    import matplotlib.pyplot as plt

    figure, _ = draw_grid_figure(table, use_ci95, keyword, references)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_points(table: GridTable, method: Method, dataset: str,
                use_ci95: bool) -> list[tuple[int, float, float]]:
    """(shots, mean, spread) in increasing shots for one line of the plot."""
    points = []
    for shots in sorted({shots for row_method, shots in table.rows if row_method == method}):
        summary = table.summary(method, shots, dataset)
        if summary is not None:
            points.append((shots, summary.mean, summary.spread(use_ci95)))
    return points


def plot_if_possible(fewshot: GridTable, options: argparse.Namespace,
                     references: Sequence[Reference] = ()) -> bool:
    """Draw the plot; False (one ``error:`` line printed) when it was asked for but failed."""
    if not fewshot.rows:
        print(f"No few-shot results: {options.plot} not written.", file=sys.stderr)
        return True
    try:
        plot_grid_table(fewshot, options.plot, options.ci95, options.keyword, references)
    except (ImportError, OSError, ValueError) as error:
        # The tables are printed already; the exit status still says the plot is missing.
        print(f"error: cannot write the plot {options.plot} ({error}).", file=sys.stderr)
        return False
    print(f"Plot written to {options.plot}", file=sys.stderr)
    return True


def plot_path_problem(path: Path) -> str | None:
    """Why ``--plot`` could not be written, checked before any run is read; None if it can."""
    folder = path.resolve().parent
    fix = "give --plot a path in a folder you can write to"
    if path.is_dir():
        return f"--plot {path} is a folder; {fix}, e.g. {path / 'curves.png'}"
    if not folder.is_dir():
        return f"--plot {path}: the folder {folder} does not exist or is not a folder; {fix}"
    try:  # a real write: permission bits, a read-only mount, a full disk all show here
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        return f"--plot {path}: cannot write in {folder} ({error.strerror or error}); {fix}"
    return None
