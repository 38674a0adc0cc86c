"""From runs to the study's numbers: table rows, cells over seeds, paired comparisons."""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Sequence

from results.labels import INIT_ORDER
from results.numbers import summarize
from study.run import dataset_sort_key, natural_key, normalized_dataset
from trainers.dapt_init.dapt_values import dapt_values
from .runs import OTHER_SETTINGS, Cell, Run
from .stats import Paired, Summary, holm, pair_up, sign_flip_summary

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
        return summarize(list(self.values.values())).std  # population std

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
    grid_keys: list[str] = field(default_factory=list)  # keys some run's spec grid varied
    row_grid: dict[Row, dict[str, str]] = field(default_factory=dict)  # a row's grid values


def normalized_value(value: Any) -> str:
    """One spelling per value: 10, 10.0 and "1e1" are the same loss weight."""
    if isinstance(value, bool):
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isfinite(number) and number == int(number) and not isinstance(value, float) \
            and "." not in str(value) and "e" not in str(value).lower():
        return str(int(number))
    return repr(number)


def row_sort_key(row: Row) -> tuple:
    rank = INIT_ORDER.index(row.init) if row.init in INIT_ORDER else 99
    return (dataset_sort_key(row.dataset), rank, row.init, row.vis_init != "random",
            row.vis_init, natural_key(row.tag), row.config)


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
    grid_keys = sorted({k for run in finished for k in run.grid if k not in FACTOR_KEYS.values()})
    row_grid: dict[Row, dict[str, str]] = {}
    for (row, _), cell in cells.items():
        for run in cell.runs.values():
            # The run's own config value (what it trained with), else the spec's word for it.
            values = {k: normalized_value(run.keys[k] if k in run.keys else run.grid.get(k, "?"))
                      for k in grid_keys}
            row_grid.setdefault(row, values)
    return Study(rows, shots, cells, row_of, grid_keys, row_grid)


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
TEXT_INIT, VIS_INIT = "text init", "visual init"
FACTOR_KEYS = {TEXT_INIT: "TRAINER.DAPT_INIT.INIT_METHOD",
               VIS_INIT: "TRAINER.DAPT_INIT.VIS_INIT_METHOD"}


@dataclass(frozen=True)
class Factor:
    """One thing the tree varies: the text init, the visual init, or a ``--grid`` key."""
    name: str  # "text init", "visual init" or the config key
    key: str  # the config key it sets
    baseline: str  # the value every other value is paired against
    baseline_why: str = ""


def factor_value(study: Study, row: Row, factor: Factor) -> str:
    if factor.name == TEXT_INIT:
        return row.init
    if factor.name == VIS_INIT:
        return row.vis_init
    return study.row_grid.get(row, {}).get(factor.key, "?")


def row_identity(study: Study, row: Row, factor: Factor, value: str) -> tuple:
    """Everything that names a row except ``factor``, which is set to ``value``: two rows with
    one identity differ in that factor only."""
    grid = dict(study.row_grid.get(row, {}))
    init, vis = row.init, row.vis_init
    if factor.name == TEXT_INIT:
        init = value
    elif factor.name == VIS_INIT:
        vis = value
    else:
        grid[factor.key] = value
    tag = row.tag if not study.grid_keys else ""  # with a grid, the tag spells its values
    return (row.dataset, init, vis, tag, row.config, tuple(sorted(grid.items())))


def factor_values(study: Study, factor: Factor) -> list[str]:
    return sorted({factor_value(study, row, factor) for row in study.rows}, key=value_sort_key)


def value_sort_key(value: str) -> tuple:
    try:
        return (0, float(value), value)
    except ValueError:
        rank = INIT_ORDER.index(value) if value in INIT_ORDER else 99
        return (1, rank, value)


def factors(study: Study, chosen: dict[str, str]) -> list[Factor]:
    """Every factor with at least two values in the tree, each with its baseline: the user's
    (``--baseline``), else DAPT's (random init; for a grid key, the value of runs made without
    that grid, else DAPT's published value for the tree's data sets), else the smallest value
    present."""
    found = []
    candidates = [(TEXT_INIT, FACTOR_KEYS[TEXT_INIT], "random"),
                  (VIS_INIT, FACTOR_KEYS[VIS_INIT], "random")]
    for key in study.grid_keys:
        plain = {study.row_grid[row][key] for row in study.rows
                 if not any(key in r.grid for cell in
                            [study.cells[(row, s)] for s in study.shots if (row, s) in study.cells]
                            for r in cell.runs.values())}
        candidates.append((key, key, sorted(plain, key=value_sort_key)[0] if plain else ""))
    datasets = {row.dataset for row in study.rows}
    published = {}  # key -> DAPT's value, where every data set of the tree has the same one
    for key in study.grid_keys:
        dapt = {normalized_value((dapt_values(d) or {}).get(key)) for d in datasets}
        if len(dapt) == 1 and "None" not in dapt:
            published[key] = dapt.pop()
    for name, key, default in candidates:
        probe = Factor(name, key, "")
        values = factor_values(study, probe)
        if len(values) < 2:
            continue
        user = chosen.get(name) or chosen.get(key) or chosen.get(key.rsplit(".", 1)[-1])
        if user is not None:
            base, why = normalized_value(user) if name not in FACTOR_KEYS else user, "chosen"
        elif default in values:
            base, why = default, ("DAPT's" if name in FACTOR_KEYS
                                  else "the value of runs made without this grid (the config's)")
        elif published.get(key) in values:
            base, why = published[key], f"DAPT's published value for {', '.join(sorted(datasets))}"
        else:
            base, why = values[0], "the smallest value present (no run without the grid)"
        found.append(Factor(name, key, base, why))
    return found


@dataclass
class Comparison:
    row: Row
    baseline: Row
    shots: int
    paired: Paired | None
    unpaired: list[str]  # "seed 3: only random" / "seed 2: settings differ (...)"
    factor: Factor | None = None
    value: str = ""
    holm_p: float | None = None  # Holm-adjusted over the cells of this row's comparison


def pair_reason(a: Run, b: Run, factor_key: str = FACTOR_KEYS[TEXT_INIT]) -> str | None:
    """Why two runs of one seed are not a valid pair, or None."""
    keys = differing([a, b], SEED_KEYS | {factor_key})
    if keys:
        return "settings differ (" + ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "") + ")"
    sha_a, sha_b = a.clip_weights.get("sha256"), b.clip_weights.get("sha256")
    if sha_a != sha_b:
        return "different CLIP weights"
    return None


def compare(study: Study, baseline: str | Factor) -> list[Comparison]:
    """Every row whose ``factor`` value is not the baseline against the row that differs from
    it in that factor only, per shot count, paired on seed; Holm over each row's cells."""
    factor = baseline if isinstance(baseline, Factor) else \
        Factor(TEXT_INIT, FACTOR_KEYS[TEXT_INIT], baseline)
    by_identity = {}
    for row in study.rows:
        by_identity.setdefault(row_identity(study, row, factor, factor_value(study, row, factor)),
                               row)
    comparisons = []
    for row in study.rows:
        value = factor_value(study, row, factor)
        if value == factor.baseline:
            continue
        base_row = by_identity.get(row_identity(study, row, factor, factor.baseline))
        if base_row is None:
            continue
        mine_all = []
        for shots in study.shots:
            mine, theirs = study.cells.get((row, shots)), study.cells.get((base_row, shots))
            if mine is None or theirs is None:
                continue
            unpaired, base_values, my_values = [], {}, {}
            for seed in sorted(set(mine.runs) | set(theirs.runs)):
                a, b = theirs.runs.get(seed), mine.runs.get(seed)
                if a is None or b is None:
                    unpaired.append(f"seed {seed}: only {value if a is None else factor.baseline}")
                    continue
                reason = pair_reason(a, b, factor.key)
                if reason:
                    unpaired.append(f"seed {seed}: {reason}")
                    continue
                base_values[seed], my_values[seed] = a.accuracy, b.accuracy
            paired, _ = pair_up(base_values, my_values)
            mine_all.append(Comparison(row, base_row, shots, paired, unpaired, factor, value))
        for c, p in zip(mine_all, holm([c.paired.p_value if c.paired else None
                                        for c in mine_all])):
            c.holm_p = p
        comparisons += mine_all
    return comparisons


def comparison_label(c: Comparison) -> str:
    """What a comparison row compares, without its data set and shots."""
    if c.factor is None or c.factor.name == TEXT_INIT:
        return Row("", c.row.init, c.row.vis_init, c.row.tag, c.row.config).label
    return f"{c.row.label} ({short_key(c.factor.key)}={c.value})"


def short_key(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def summaries(comparisons: Sequence[Comparison]) -> dict[str, tuple[Summary | None, int]]:
    """Per comparison label, over all its cells: the seed-unit sign-flip summary and how many
    cells it covers."""
    cells: dict[str, list[dict[int, float]]] = defaultdict(list)
    for c in comparisons:
        label = comparison_label(c)
        if c.paired is not None:
            cells[label].append(dict(zip(c.paired.seeds, c.paired.differences)))
        else:
            cells.setdefault(label, [])
    return {label: (sign_flip_summary(values), len(values)) for label, values in cells.items()}


def reference_value(reference: Any, row: Row, shots: int) -> float | None:
    if reference is None:
        return None
    key = (normalized_dataset(row.dataset), row.init, row.vis_init, row.tag, shots)
    return reference.values.get(key)
