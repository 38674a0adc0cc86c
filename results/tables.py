"""The study's tables: grids (method x shots -> dataset -> seed values) and the text tables
built from them (few-shot and dg grids, the base-to-new table), cells 'mean +- std (n)'."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from .labels import Method, method_of
from study.run import RunKey, dataset_display_name, dataset_sort_key
from .numbers import Summary, harmonic_mean, summarize
from .reference import Reference, reference_cells
from .study import NOT_AS_PUBLISHED, StudyRun

TABLE_KINDS = ("fewshot", "dg", "base2new")
# Beside a cell that pools runs made with other CLIP weights than each other: their mean mixes
# two models, so it is marked, never shown as one model's number.
MIXED_WEIGHTS_MARK = "\u2020"
MIXED_WEIGHTS_NOTE = (f"{MIXED_WEIGHTS_MARK}: the cell pools runs made with different CLIP "
                      "weights (result.json clip.weights.sha256)")


@dataclass
class GridTable:
    """Rows method x shots, columns datasets, cells the values of the seeds."""

    title: str
    rows: list[tuple[Method, int]]
    datasets: list[str]
    values: dict[tuple[str, int, str], list[float]]  # (method label, shots, dataset) -> values
    # (method label, shots) -> why some of the row's runs are not the published recipe
    unpublished: dict[tuple[str, int], set[str]] = field(default_factory=dict)
    # (method label, shots, dataset) of cells whose runs recorded different CLIP weights
    mixed_weights: set[tuple[str, int, str]] = field(default_factory=set)

    def summary(self, method: Method, shots: int, dataset: str) -> Summary | None:
        values = self.values.get((method.label, shots, dataset))
        return summarize(values) if values else None


def build_grid_table(runs: Sequence[StudyRun], kind: str, title: str,
                     methods: dict[RunKey, Method]) -> GridTable:
    values: dict[tuple[str, int, str], list[float]] = defaultdict(list)
    unpublished: dict[tuple[str, int], set[str]] = defaultdict(set)
    weights: dict[tuple[str, int, str], set[str]] = defaultdict(set)
    rows: set[tuple[Method, int]] = set()
    datasets: set[str] = set()
    for run in runs:
        if run.key.kind != kind or not run.outcome.complete:
            continue
        method = method_of(run.key, methods)
        values[(method.label, run.key.shots, run.key.dataset)].append(run.outcome.value)
        if run.clip_sha256 is not None:  # a run that recorded no weights says nothing
            weights[(method.label, run.key.shots, run.key.dataset)].add(run.clip_sha256)
        unpublished[(method.label, run.key.shots)].update(run.unpublished)
        rows.add((method, run.key.shots))
        datasets.add(run.key.dataset)
    # Shots ascending (1, 2, 4, 8, 16) within each method.
    ordered_rows = sorted(rows, key=lambda row: (row[0].sort_key, row[0].label, row[1]))
    return GridTable(title, ordered_rows, sorted(datasets, key=dataset_sort_key), dict(values),
                     {row: reasons for row, reasons in unpublished.items() if reasons},
                     {cell for cell, found in weights.items() if len(found) > 1})


@dataclass
class TextTable:
    """A table ready to render: headers and rows of strings."""

    title: str
    headers: list[str]
    rows: list[list[str]]


def format_cell(summary: Summary | None, use_ci95: bool, table_format: str) -> str:
    """'mean +- spread (n)'; '-' for an empty cell."""
    if summary is None:
        return "-"
    plus_minus = r"$\pm$" if table_format == "latex" else "+-"
    return f"{summary.mean:.2f} {plus_minus} {summary.spread(use_ci95):.2f} ({summary.n})"


def row_key_headers(methods: Iterable[Method]) -> list[str]:
    """'init', then 'vis init' and 'tag' where the rows differ in them."""
    methods = list(methods)
    return (["init"] + (["vis init"] if any(method.vis for method in methods) else [])
            + (["tag"] if any(method.tag for method in methods) else []))


def row_key_cells(method: Method, headers: Sequence[str]) -> list[str]:
    cells = {"init": method.init_label, "vis init": method.vis or "-",
             "tag": method.tag or "-"}
    return [cells[header] for header in headers]


def grid_text_table(table: GridTable, use_ci95: bool, table_format: str,
                    references: Sequence[Reference] = ()) -> TextTable:
    keys = row_key_headers(method for method, _ in table.rows)
    headers = keys + ["shots"]
    for dataset in table.datasets:
        name = dataset_display_name(dataset)
        headers.append(name)
        for reference in references:
            headers += [f"{name} {reference.name}", f"{name} - {reference.name} (pt)",
                        f"{name} - {reference.name} (std)"]
    rows = []
    for method, shots in table.rows:
        row = row_key_cells(method, keys) + [str(shots)]
        for dataset in table.datasets:
            summary = table.summary(method, shots, dataset)
            mark = ((r" $^\dagger$" if table_format == "latex" else f" {MIXED_WEIGHTS_MARK}")
                    if (method.label, shots, dataset) in table.mixed_weights else "")
            row.append(format_cell(summary, use_ci95, table_format) + mark)
            for reference in references:
                row += reference_cells(summary, reference.value(method, shots, dataset))
        rows.append(row)
    if references and table.unpublished:
        # Beside published numbers, a trial (small CLIP, fewer epochs) must say it is one.
        headers.append(NOT_AS_PUBLISHED)
        for row, (method, shots) in zip(rows, table.rows):
            row.append("; ".join(sorted(table.unpublished.get((method.label, shots), ()))) or "-")
    return TextTable(table.title, headers, rows)


def base2new_text_table(runs: Sequence[StudyRun], methods: dict[RunKey, Method], title: str,
                        use_ci95: bool, table_format: str) -> TextTable:
    """One row per dataset x method x shots: base, new, H (H from the mean base and new)."""
    values: dict[tuple[str, Method, int], dict[str, list[float]]] = defaultdict(
        lambda: {"base": [], "new": []})
    for run in runs:
        if run.key.kind == "base2new" and run.outcome.complete:
            row = (run.key.dataset, method_of(run.key, methods), run.key.shots)
            values[row][run.key.split].append(run.outcome.value)
    ordered = sorted(values, key=lambda row: (dataset_sort_key(row[0]), row[1].sort_key,
                                              row[1].label, row[2]))
    keys = row_key_headers(method for _, method, _ in ordered)
    rows = []
    for dataset, method, shots in ordered:
        by_split = values[(dataset, method, shots)]
        base, new = (summarize(by_split[split]) if by_split[split] else None
                     for split in ("base", "new"))
        harmonic = (f"{harmonic_mean(base.mean, new.mean):.2f}"
                    if base is not None and new is not None else "-")
        rows.append([dataset_display_name(dataset)] + row_key_cells(method, keys)
                    + [str(shots), format_cell(base, use_ci95, table_format),
                       format_cell(new, use_ci95, table_format), harmonic])
    return TextTable(title, ["dataset"] + keys + ["shots", "base", "new", "H"], rows)


def table_titles(keyword: str, use_ci95: bool) -> dict[str, str]:
    cell = f"mean +- {'ci95' if use_ci95 else 'std'} (n seeds)"
    return {
        "fewshot": f"Few-shot: test {keyword} (%), {cell}",
        "dg": f"Domain generalisation (target datasets): test {keyword} (%), {cell}",
        "base2new": f"Base-to-new: {keyword} (%), {cell}; H = harmonic mean of mean base "
                    f"and mean new",
    }


def matched_cells(reference: Reference, tables: Sequence[GridTable]) -> int:
    """How many measured cells have a value of the reference beside them."""
    return sum(reference.value(method, shots, dataset) is not None
               and table.summary(method, shots, dataset) is not None
               for table in tables for method, shots in table.rows for dataset in table.datasets)
