"""Accuracy against shots: one panel per dataset, one line per init with its seed spread."""
from __future__ import annotations

import io
from typing import Any

from .study import Study, non_monotone_steps, reference_value

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def png_bytes(figure: Any, dpi: int = 90) -> bytes:
    """The figure as PNG bytes (then closed: a report draws many)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    plt.close(figure)
    return buffer.getvalue()


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display; the report is written from any machine
    import matplotlib.pyplot as plt
    return plt


def accuracy_figure(study: Study, reference: Any) -> bytes:
    plt = pyplot()
    datasets = list(dict.fromkeys(row.dataset for row in study.rows))
    figure, axes = plt.subplots(1, len(datasets), figsize=(5.2 * len(datasets), 4.2),
                                squeeze=False)
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labels = list(dict.fromkeys(row.label for row in study.rows))
    for axis, dataset in zip(axes[0], datasets):
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
                          label=f"{row.label} (mean +- std)")
            axis.fill_between(x, [m - s for m, s in zip(means, stds)],
                              [m + s for m, s in zip(means, stds)], color=color, alpha=0.12,
                              linewidth=0)
            ref = [(xi, reference_value(reference, row, s)) for xi, s in zip(x, shots)]
            ref = [(xi, v) for xi, v in ref if v is not None]
            if ref:
                axis.scatter([p[0] for p in ref], [p[1] for p in ref], marker=marker, s=60,
                             facecolors="none", edgecolors=color, linewidths=1.5,
                             label=f"{row.label} (reference)")
            for s0, s1, drop in non_monotone_steps(study, row):
                xi = x[shots.index(s1)]
                axis.annotate(f"-{drop:.1f}", (xi, means[shots.index(s1)]), color="red",
                              xytext=(4, -12), textcoords="offset points", fontsize=8)
                axis.scatter([xi], [means[shots.index(s1)]], marker="x", s=90, color="red",
                             zorder=5)
        axis.set_xscale("log", base=2)
        axis.set_xticks(study.shots, [str(s) for s in study.shots])
        axis.minorticks_off()
        axis.set_title(dataset)
        axis.set_xlabel("shots per class")
        axis.set_ylabel("test accuracy (%)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="x-small")
    figure.suptitle("Accuracy vs shots (red x: below the previous shot count by more than "
                    "the seeds' spread)", fontsize=9)
    figure.tight_layout()
    return png_bytes(figure)
