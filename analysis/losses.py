"""Loss curves of training runs: CE, intra, inter, the weighted total and training accuracy
per epoch, plus the per-term gradient norms (grad_*) when the run logged them.

    python tools/analyze_prompts.py losses RUN_DIR... --out losses.png

Each epoch's value is the toolbox's running mean over that epoch's batches at its last logged
step (Dassl resets its meters every epoch): from tensorboard (``<run>/tensorboard``, every
batch, full precision) or, without events, from ``log.txt`` (every TRAIN.PRINT_FREQ batches,
4 decimals; resumed runs' ``log.txt-<time>`` files are read in order, later epochs win).
Runs whose folders differ only in their ``seed<k>`` part form one setting, drawn as the mean
over seeds with a band of +- one population std. The numbers go beside the PNG as CSV.
"""
from __future__ import annotations

import argparse
import csv
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from results.numbers import summarize
from trainers.dapt_init.errors import DaptInitError

# (meter name the trainer logs, panel title)
TERMS = (
    ("loss_ce", "CE"),
    ("loss_intra", "intra (unweighted)"),
    ("loss_inter", "inter (unweighted)"),
    ("loss", "weighted total"),
    ("acc", "training accuracy (%)"),
)
# Gradient norms of the weighted terms (conventions: TRAINER.DAPT_INIT.LOG_GRAD_NORMS).
GRAD_TERMS = tuple((f"grad_{term}_{prompts}", f"|grad {term}| wrt {prompts} prompts")
                   for prompts in ("vis", "txt") for term in ("ce", "intra", "inter"))
ALL_NAMES = tuple(name for name, _ in TERMS + GRAD_TERMS)
SOURCES = ("auto", "tensorboard", "log")

SEED_PART = re.compile(r"seed(\d+)$")
TRAIN_LINE = re.compile(r"epoch \[(\d+)/\d+\] batch \[(\d+)/(\d+)\] (.*)$")
# A MetricMeter entry "name value (average)"; time/data are meters of the loop, not the model.
METER = re.compile(r"(\w+) (\S+) \((\S+)\)")
NOT_MODEL_METERS = {"time", "data"}


@dataclass
class RunCurves:
    """Per-epoch values of one run folder: name -> {epoch (1-based): value}."""
    run_dir: Path
    setting: Path  # the run folder without its seed<k> part
    seed: int | None
    source: str  # "tensorboard" or "log.txt"
    values: dict[str, dict[int, float]] = field(default_factory=dict)

    @property
    def epochs(self) -> list[int]:
        return sorted({epoch for series in self.values.values() for epoch in series})


# ---------------------------------------------------------------------------- reading a run
def log_files(run_dir: Path) -> list[Path]:
    """log.txt first (the toolbox's first log), then log.txt-<time> in time order."""
    stamped = sorted(path for path in run_dir.glob("log.txt-*") if path.is_file())
    first = run_dir / "log.txt"
    return ([first] if first.is_file() else []) + stamped


def curves_from_log(run_dir: Path) -> tuple[dict[str, dict[int, float]], int | None]:
    """Per-epoch running means from the training lines, and the batches per epoch."""
    values: dict[str, dict[int, float]] = defaultdict(dict)
    batches = None
    for path in log_files(run_dir):
        for line in path.read_text(errors="replace").splitlines():
            match = TRAIN_LINE.search(line)
            if not match:
                continue
            epoch, batches = int(match.group(1)), int(match.group(3))
            for name, _, average in METER.findall(match.group(4)):
                if name not in NOT_MODEL_METERS:
                    values[name][epoch] = float(average)  # a later line of the epoch wins
    return dict(values), batches


def curves_from_tensorboard(folder: Path, batches: int) -> dict[str, dict[int, float]]:
    """The ``train/<name>`` scalars at each epoch's last step (step = epoch0 * batches + b)."""
    from tensorboard.backend.event_processing.event_accumulator import (SCALARS,
                                                                         EventAccumulator)

    accumulator = EventAccumulator(str(folder), size_guidance={SCALARS: 0})  # 0: keep all
    accumulator.Reload()
    values: dict[str, dict[int, float]] = {}
    for tag in accumulator.Tags().get("scalars", []):
        if not tag.startswith("train/") or tag == "train/lr":
            continue
        last: dict[int, tuple[int, float]] = {}
        for event in accumulator.Scalars(tag):  # in step order; a resumed run's repeats win
            epoch = event.step // batches + 1
            if epoch not in last or event.step >= last[epoch][0]:
                last[epoch] = (event.step, event.value)
        values[tag[len("train/"):]] = {epoch: value for epoch, (_, value) in last.items()}
    return values


def has_events(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("events.out.tfevents.*"))


def setting_and_seed(run_dir: Path) -> tuple[Path, int | None]:
    """The run folder minus its (last) seed<k> part, and k."""
    parts = list(run_dir.parts)
    for index in range(len(parts) - 1, -1, -1):
        match = SEED_PART.match(parts[index])
        if match:
            return Path(*(parts[:index] + parts[index + 1:])), int(match.group(1))
    return run_dir, None


def read_run(run_dir: Path, source: str = "auto") -> RunCurves:
    """The per-epoch curves of one run folder (see the module docstring for the sources)."""
    if not run_dir.is_dir():
        raise DaptInitError(f"run folder {run_dir} does not exist.")
    from_log, batches = curves_from_log(run_dir)
    if batches is None:
        raise DaptInitError(
            f"run folder {run_dir} has no training lines in log.txt ('epoch [e/E] batch "
            "[b/B] ...'). Give folders train.py trained into (--output-dir), after one epoch.")
    events = run_dir / "tensorboard"
    if source == "tensorboard" and not has_events(events):
        raise DaptInitError(f"run folder {run_dir} has no tensorboard events in {events}; "
                            "use --source log.")
    setting, seed = setting_and_seed(run_dir)
    if source != "log" and has_events(events):
        values = curves_from_tensorboard(events, batches)
        return RunCurves(run_dir, setting, seed, "tensorboard", values)
    return RunCurves(run_dir, setting, seed, "log.txt", from_log)


# ----------------------------------------------------------------------------- aggregation
@dataclass
class Line:
    """What one plotted line shows: a single run, or the mean and std over seeds."""
    label: str
    runs: list[RunCurves]
    mean: dict[str, dict[int, float]]
    std: dict[str, dict[int, float]]  # population std over seeds (0 for one run)
    count: dict[str, dict[int, int]]


def mean_and_std(values: Sequence[float]) -> tuple[float, float]:
    summary = summarize(values)  # the parser's population std: one definition
    return summary.mean, summary.std


def setting_labels(settings: Sequence[Path]) -> dict[Path, str]:
    """Settings named by the parts where they differ (the common leading parts dropped)."""
    parts = [setting.parts for setting in settings]
    common = 0
    while (len(settings) > 1 and all(len(p) > common + 1 for p in parts)
           and len({p[common] for p in parts}) == 1):
        common += 1
    if len(settings) == 1:
        common = max(len(parts[0]) - 2, 0)  # one setting: its last two folders
    return {setting: "/".join(setting.parts[common:]) for setting in settings}


def group_lines(runs: Sequence[RunCurves]) -> list[Line]:
    """One line per setting, in the order first given; seeds ascending within it."""
    by_setting: dict[Path, list[RunCurves]] = defaultdict(list)
    for run in runs:
        by_setting[run.setting].append(run)
    labels = setting_labels(list(by_setting))
    lines = []
    for setting, members in by_setting.items():
        members.sort(key=lambda run: (run.seed is None, run.seed or 0, str(run.run_dir)))
        mean: dict[str, dict[int, float]] = {}
        std: dict[str, dict[int, float]] = {}
        count: dict[str, dict[int, int]] = {}
        for name in {name for run in members for name in run.values}:
            epochs = sorted({e for run in members for e in run.values.get(name, {})})
            mean[name], std[name], count[name] = {}, {}, {}
            for epoch in epochs:
                seen = [run.values[name][epoch] for run in members
                        if epoch in run.values.get(name, {})]
                mean[name][epoch], std[name][epoch] = mean_and_std(seen)
                count[name][epoch] = len(seen)
        label = labels[setting]
        if len(members) > 1:
            label += f" ({len(members)} seeds)"
        elif members[0].seed is not None:
            label += f" seed{members[0].seed}"
        lines.append(Line(label, members, mean, std, count))
    return lines


# ------------------------------------------------------------------------------------ output
def present_panels(lines: Sequence[Line]) -> list[tuple[str, str]]:
    """The loss / accuracy panels any run has, then the gradient panels any run has."""
    names = {name for line in lines for name in line.mean}
    return [(name, title) for name, title in TERMS + GRAD_TERMS if name in names]


# Settings often share a curve exactly (the intra term sees only the visual prompts, so text
# inits of one seed log the same values): each line gets its own dash pattern and hollow marker,
# and the lines drawn first are wider and their markers larger, so every one shows around the
# lines drawn over it.
LINE_STYLES = ("-", "--", ":", "-.")
LINE_MARKERS = ("o", "s", "^", "D", "v", "P")


def line_style(index: int, count: int) -> dict[str, Any]:
    """matplotlib keywords of line ``index`` of ``count`` in a panel."""
    from_top = count - 1 - index  # 0 for the line drawn last (on top)
    return {"linestyle": LINE_STYLES[index % len(LINE_STYLES)],
            "marker": LINE_MARKERS[index % len(LINE_MARKERS)], "markerfacecolor": "none",
            "linewidth": 1.2 + 0.9 * from_top, "markersize": 4.0 + 2.5 * from_top}


def plot_lines(lines: Sequence[Line], out: Path) -> None:
    import matplotlib.pyplot as plt

    figure = draw_lines(lines)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=80)
    plt.close(figure)


def draw_lines(lines: Sequence[Line]) -> Any:
    """The figure: one panel per logged term, one styled line per setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import MaxNLocator

    panels = present_panels(lines)
    columns = 3
    # Loss panels first; the gradient panels start a row of their own (vis row, txt row).
    slots, slot = [], 0
    for name, _ in panels:
        if name.startswith("grad_") and slot % columns and not slots[-1][0].startswith("grad_"):
            slot += columns - slot % columns
        slots.append((name, slot))
        slot += 1
    rows = math.ceil(slot / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows),
                                squeeze=False)
    used = {position for _, position in slots}
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (name, title), (_, position) in zip(panels, slots):
        axis = axes.flat[position]
        for index, line in enumerate(lines):
            series = line.mean.get(name)
            if not series:
                continue
            epochs = sorted(series)
            means = [series[e] for e in epochs]
            color = palette[index % len(palette)]
            style = line_style(index, len(lines))
            if len(epochs) >= 30:  # markers would hide a long curve
                style["marker"] = None
            axis.plot(epochs, means, color=color, label=line.label, **style)
            if len(line.runs) > 1:
                # Every term, norm and accuracy is >= 0 (accuracy <= 100): cut the band there.
                top = 100.0 if name == "acc" else math.inf
                low = [max(series[e] - line.std[name][e], 0.0) for e in epochs]
                high = [min(series[e] + line.std[name][e], top) for e in epochs]
                axis.fill_between(epochs, low, high, color=color, alpha=0.2, linewidth=0)
        if name.startswith("grad_") and all(v > 0 for line in lines
                                            for v in line.mean.get(name, {}).values()):
            axis.set_yscale("log")  # the terms' norms differ by orders of magnitude
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.set_ylabel(title)  # the panel's quantity, read without looking up at the title
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
    for position, axis in enumerate(axes.flat):
        axis.set_visible(position in used)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3),
                  fontsize="small", frameon=False)
    figure.tight_layout(rect=(0, 0.04 + 0.03 * math.ceil(len(labels) / 3) / rows, 1, 1))
    return figure


CSV_HEADER = ["statistic", "setting", "seed", "run_dir", "source", "n", "epoch"]


def csv_rows(lines: Sequence[Line]) -> list[list[Any]]:
    """Per run and epoch ("run" rows), then per setting of several seeds "mean" and "std"."""
    names = [name for name in ALL_NAMES if any(name in line.mean for line in lines)]
    rows: list[list[Any]] = [CSV_HEADER + names]
    for line in lines:
        for run in line.runs:
            for epoch in run.epochs:
                rows.append(["run", line.label, "" if run.seed is None else run.seed,
                             run.run_dir, run.source, 1, epoch]
                            + [repr(run.values[n][epoch]) if epoch in run.values.get(n, {})
                               else "" for n in names])
        if len(line.runs) > 1:
            epochs = sorted({e for series in line.mean.values() for e in series})
            for statistic, table in (("mean", line.mean), ("std", line.std)):
                for epoch in epochs:
                    counts = {line.count[n].get(epoch, 0) for n in names if n in line.count}
                    rows.append([statistic, line.label, "", "", "", max(counts), epoch]
                                + [repr(table[n][epoch]) if epoch in table.get(n, {}) else ""
                                   for n in names])
    return rows


def write_csv(lines: Sequence[Line], path: Path) -> None:
    with path.open("w", newline="") as file:
        csv.writer(file).writerows(csv_rows(lines))


def losses(args: argparse.Namespace) -> int:
    if args.out.suffix.lower() != ".png":
        raise DaptInitError(f"--out {args.out} must end in .png (the CSV goes beside it).")
    runs = [read_run(run_dir, args.source) for run_dir in args.run_dirs]  # errors first
    lines = group_lines(runs)
    if not present_panels(lines):
        raise DaptInitError("the runs logged none of " + ", ".join(ALL_NAMES) + ".")
    plot_lines(lines, args.out)
    csv_path = args.out.with_suffix(".csv")
    write_csv(lines, csv_path)
    for line in lines:
        sources = sorted({run.source for run in line.runs})
        print(f"{line.label}: {len(line.runs)} run(s), epochs "
              f"{max(len(run.epochs) for run in line.runs)}, from {', '.join(sources)}")
    print(f"Wrote {args.out} and {csv_path}")
    return 0


def add_losses_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "losses", help="loss terms, training accuracy and gradient norms per epoch",
        description="Plots CE, intra, inter, the weighted total and training accuracy per "
                    "epoch (one panel per term, one line per setting; several seeds of one "
                    "setting, i.e. folders differing only in seed<k>, give the mean and a "
                    "+- std band), and the grad_* norms when logged. Writes OUT and OUT's .csv.")
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR",
                        help="run folders (train.py --output-dir)")
    parser.add_argument("--out", type=Path, default=Path("losses.png"),
                        help="figure file (default losses.png); numbers go beside it as .csv")
    parser.add_argument("--source", choices=SOURCES, default="auto",
                        help="auto (default): tensorboard events when the run has them, else "
                             "log.txt; tensorboard or log to force one")
    parser.set_defaults(handler=losses)
