"""From runs to the study's numbers: table rows, cells over seeds, paired comparisons."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Sequence

from . import sources
from .runs import OTHER_SETTINGS, Cell, Run
from .stats import Paired, pair_up, summary_over_cells

SEED_KEYS = {"SEED"}  # differ between the seeds of one cell by construction
INIT_KEYS = {"TRAINER.DAPT_INIT.INIT_METHOD"}  # differ between the inits of one pair


@dataclass(frozen=True)
class Row:
    """A table row: dataset x init (with visual init, tag, config where they are not one)."""
    dataset: str
    init: str
    vis_init: str
    tag: str
    config: str  # "" unless one row's shots hold several configs

    @property
    def label(self) -> str:
        parts = [self.init]
        if self.vis_init != "random":
            parts.append(f"vis {self.vis_init}")
        if self.tag:
            parts.append(self.tag)
        if self.config:
            parts.append(f"[{self.config}]")
        return ", ".join(parts)


@dataclass
class CellRuns:
    runs: dict[int, Run]  # seed -> finished run
    differing_keys: list[str] = field(default_factory=list)
    duplicates: list[Run] = field(default_factory=list)  # a seed met twice: not pooled

    @property
    def values(self) -> dict[int, float]:
        return {seed: run.accuracy for seed, run in sorted(self.runs.items())}

    @property
    def mean(self) -> float:
        v = list(self.values.values())
        return sum(v) / len(v)

    @property
    def std(self) -> float:
        return sources.summarize(list(self.values.values())).std  # population std

    @property
    def n(self) -> int:
        return len(self.runs)


def differing(runs: Sequence[Run], ignore: set[str]) -> list[str]:
    """Config keys whose values are not the same in every run (a key one run lacks counts)."""
    keys = set().union(*(run.keys for run in runs)) - ignore
    return sorted(k for k in keys if len({repr(run.keys.get(k, "<absent>")) for run in runs}) > 1)


def settings_of(run: Run, ignore: set[str]) -> str:
    return repr(sorted((k, repr(v)) for k, v in run.keys.items() if k not in ignore))


@dataclass
class Study:
    rows: list[Row]
    shots: list[int]
    cells: dict[tuple[Row, int], CellRuns]
    row_of: dict[Cell, Row]


def row_sort_key(row: Row) -> tuple:
    rank = sources.INIT_ORDER.index(row.init) if row.init in sources.INIT_ORDER else 99
    return (sources.dataset_sort_key(row.dataset), rank, row.init, row.vis_init != "random",
            row.vis_init, sources.natural_key(row.tag), row.config)


def build_study(runs: Sequence[Run]) -> Study:
    finished = [run for run in runs if run.finished and run.cell is not None]
    configs: dict[tuple, set[str]] = defaultdict(set)
    for run in finished:
        c = run.cell
        configs[(c.dataset, c.init, c.vis_init, c.tag, c.shots)].add(c.config)
    row_of: dict[Cell, Row] = {}
    grouped: dict[tuple[Row, int], list[Run]] = defaultdict(list)
    for run in finished:
        c = run.cell
        mixed = len(configs[(c.dataset, c.init, c.vis_init, c.tag, c.shots)]) > 1
        row = Row(c.dataset, c.init, c.vis_init, c.tag, c.config if mixed else "")
        row_of[c] = row
        grouped[(row, c.shots)].append(run)
    cells: dict[tuple[Row, int], CellRuns] = {}
    for key, members in grouped.items():
        by_seed: dict[int, Run] = {}
        duplicates = []
        for run in members:
            if run.seed is None or run.seed in by_seed:
                duplicates.append(run)
            else:
                by_seed[run.seed] = run
        pooled = list(by_seed.values())
        cells[key] = CellRuns(by_seed, differing(pooled, SEED_KEYS), duplicates)
        mark_other_settings(pooled)
    rows = sorted({row for row, _ in cells}, key=row_sort_key)
    shots = sorted({s for _, s in cells})
    return Study(rows, shots, cells, row_of)


def mark_other_settings(pooled: Sequence[Run]) -> None:
    """Runs whose settings differ from the cell's most common ones (first seen wins a tie)."""
    if len(pooled) < 2:
        return
    counts = Counter(settings_of(run, SEED_KEYS) for run in pooled)
    common = counts.most_common(1)[0][0]
    for run in pooled:
        if settings_of(run, SEED_KEYS) != common:
            others = [r for r in pooled if settings_of(r, SEED_KEYS) == common]
            run.status = OTHER_SETTINGS
            run.detail = "differs in " + ", ".join(differing([run] + others[:1], SEED_KEYS))


# ----------------------------------------------------------------------- non-monotone steps
def non_monotone_steps(study: Study, row: Row) -> list[tuple[int, int, float]]:
    """(shots before, shots, drop in pt) where the mean falls by more than the seeds' spread
    (the larger population std of the two cells; 0 with one seed, so any fall counts)."""
    present = [(s, study.cells[(row, s)]) for s in study.shots if (row, s) in study.cells]
    steps = []
    for (s0, c0), (s1, c1) in zip(present, present[1:]):
        drop = c0.mean - c1.mean
        if drop > max(c0.std, c1.std):
            steps.append((s0, s1, drop))
    return steps


# ------------------------------------------------------------------------ paired comparison
@dataclass
class Comparison:
    row: Row
    baseline: Row
    shots: int
    paired: Paired | None
    unpaired: list[str]  # "seed 3: only random" / "seed 2: settings differ (...)"


def pair_reason(a: Run, b: Run) -> str | None:
    """Why two runs of one seed are not a valid pair, or None."""
    keys = differing([a, b], SEED_KEYS | INIT_KEYS)
    if keys:
        return "settings differ (" + ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "") + ")"
    sha_a, sha_b = a.clip_weights.get("sha256"), b.clip_weights.get("sha256")
    if sha_a != sha_b:
        return "different CLIP weights"
    return None


def compare(study: Study, baseline_init: str) -> list[Comparison]:
    comparisons = []
    for row in study.rows:
        if row.init == baseline_init:
            continue
        base_row = Row(row.dataset, baseline_init, row.vis_init, row.tag, row.config)
        for shots in study.shots:
            mine, theirs = study.cells.get((row, shots)), study.cells.get((base_row, shots))
            if mine is None or theirs is None:
                continue
            unpaired, base_values, my_values = [], {}, {}
            for seed in sorted(set(mine.runs) | set(theirs.runs)):
                a, b = theirs.runs.get(seed), mine.runs.get(seed)
                if a is None or b is None:
                    unpaired.append(f"seed {seed}: only {row.init if a is None else baseline_init}")
                    continue
                reason = pair_reason(a, b)
                if reason:
                    unpaired.append(f"seed {seed}: {reason}")
                    continue
                base_values[seed], my_values[seed] = a.accuracy, b.accuracy
            paired, _ = pair_up(base_values, my_values)
            comparisons.append(Comparison(row, base_row, shots, paired, unpaired))
    return comparisons


def summaries(comparisons: Sequence[Comparison]) -> dict[str, tuple[Paired | None, int]]:
    """Per init label: the over-all-cells summary and how many cells it covers."""
    means: dict[str, list[float]] = defaultdict(list)
    for c in comparisons:
        label = Row("", c.row.init, c.row.vis_init, c.row.tag, c.row.config).label
        if c.paired is not None:
            means[label].append(c.paired.mean)
        else:
            means.setdefault(label, [])
    return {label: (summary_over_cells(values), len(values)) for label, values in means.items()}


def reference_value(reference: Any, row: Row, shots: int) -> float | None:
    if reference is None:
        return None
    key = (sources.normalized_dataset(row.dataset), row.init, row.vis_init, row.tag, shots)
    return reference.values.get(key)
