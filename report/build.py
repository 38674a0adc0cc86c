"""The report's content: Table 1, the figure, the paired answer, analyses and inventory."""
from __future__ import annotations

import csv
import io
from typing import Any, Sequence

from . import sources
from .analyses import Analyses
from .document import Block, Figure, Heading, Items, Paragraph, Table
from .inventory import Grid, pooled_differences, provenance, slots, status_counts
from .runs import FINISHED, Run
from .stats import METHOD
from .study import Study, compare, non_monotone_steps, reference_value, summaries

PM = "\u00b1"


def cell_text(study: Study, row: Any, shots: int) -> str:
    cell = study.cells.get((row, shots))
    if cell is None:
        return "-"
    mark = " \u2020" if cell.differing_keys else ""  # dagger: pooled runs differ in settings
    return f"{cell.mean:.2f} {PM} {cell.std:.2f} (n={cell.n}){mark}"


def table1(study: Study, reference: Any, reference_name: str) -> Table:
    headers = ["dataset", "init"]
    for s in study.shots:
        headers += [f"{s} shots", f"{s} {reference_name}"] if reference else [f"{s} shots"]
    rows = []
    for row in study.rows:
        cells = [row.dataset, row.label]
        for s in study.shots:
            cells.append(cell_text(study, row, s))
            if reference:
                value = reference_value(reference, row, s)
                cells.append("-" if value is None else f"{value:.1f}")
        rows.append(cells)
    return Table(headers, rows, anchor="table1",
                 caption="Table 1: test accuracy (%), mean " + PM + " population std over seeds "
                         "(n seeds)" + (f", the reference {reference_name} beside each"
                                        if reference else ""))


def table1_latex(study: Study, reference: Any, reference_name: str) -> str:
    table = table1(study, reference, reference_name)

    tex = sources.latex_escaped  # by construction, one character at a time (issue 25)

    lines = ["\\begin{table}[t]", "\\centering", "\\small",
             "\\begin{tabular}{ll" + "r" * (len(table.headers) - 2) + "}", "\\toprule",
             " & ".join(tex(h) for h in table.headers) + " \\\\", "\\midrule"]
    lines += [" & ".join(tex(c) for c in row) + " \\\\" for row in table.rows]
    lines += ["\\bottomrule", "\\end{tabular}", f"\\caption{{{tex(table.caption)}}}",
              "\\label{tab:dapt-init-accuracy}", "\\end{table}", ""]
    return "\n".join(lines)


RUN_COLUMNS = ["path", "status", "detail", "spec_source", "dataset", "init", "vis_init", "shots",
               "seed", "config", "tag", "accuracy", "error_rate", "macro_f1", "epoch",
               "max_epoch", "wall_s", "fingerprint"]


def runs_csv(runs: Sequence[Run]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(RUN_COLUMNS)
    for run in runs:
        c = run.cell
        writer.writerow([
            run.path, run.status, run.detail, run.spec_source,
            c.dataset if c else "", c.init if c else "", c.vis_init if c else "",
            c.shots if c else "", "" if run.seed is None else run.seed,
            c.config if c else "", c.tag if c else "",
            *("" if run.metrics.get(k) is None else repr(run.metrics.get(k))
              for k in ("accuracy", "error_rate", "macro_f1")),
            "" if run.epoch is None else run.epoch, "" if run.max_epoch is None else run.max_epoch,
            "" if run.wall_s is None else run.wall_s, run.fingerprint or ""])
    return buffer.getvalue()


def answer_blocks(study: Study, baseline: str) -> list[Block]:
    comparisons = compare(study, baseline)
    blocks: list[Block] = [
        Heading(2, f"The answer: each init against {baseline}", "answer"),
        Paragraph(f"Method: {METHOD}. Runs of one seed are paired by construction (same split, "
                  "data order, augmentations, dropout). A seed that only one init has, or whose "
                  "two runs differ in more than the init, is listed as unpaired and left out of "
                  "the paired numbers. 'seeds for +-1 pt': the fewest seeds whose interval "
                  "would be +-1 pt at the observed sd of the differences."),
    ]
    if not comparisons:
        return blocks + [Paragraph(f"No cell has both {baseline} and another init: nothing to "
                                   "compare.")]
    rows = []
    for c in comparisons:
        p = c.paired
        interval = "-" if p is None or p.interval is None else \
            f"[{p.interval[0]:+.2f}, {p.interval[1]:+.2f}]"
        needed = "-" if p is None else (p.seeds_for_half_width() or "-")
        rows.append([c.row.dataset, c.row.label, c.shots, "-" if p is None else p.n,
                     "-" if p is None else f"{p.mean:+.2f}", interval,
                     "no paired seed" if p is None else p.words(), needed,
                     "; ".join(c.unpaired) or "none"])
    blocks.append(Table(["dataset", "init", "shots", "paired seeds", "mean diff (pt)",
                         "95% interval", "in words", "seeds for +-1 pt", "unpaired"], rows,
                        anchor="paired", caption="Paired differences per dataset x shots"))
    summary_rows = []
    for label, (summary, cells) in summaries(comparisons).items():
        if summary is None:
            summary_rows.append([label, 0, "-", "-", "no paired cell"])
            continue
        interval = summary.interval
        summary_rows.append([label, cells, f"{summary.mean:+.2f}",
                             "-" if interval is None else
                             f"[{interval[0]:+.2f}, {interval[1]:+.2f}]",
                             summary.words().replace("seeds", "cells").replace(
                                 "one seed", "one cell")])
    blocks.append(Table(["init", "cells", "mean of cell differences (pt)", "95% interval",
                         "in words"], summary_rows, anchor="summary",
                        caption="Summary over all cells: one-sample t interval over the cells' "
                                "mean paired differences (each cell weighs the same)"))
    return blocks


def shape_paragraph(study: Study) -> Paragraph:
    steps = [f"{row.dataset} {row.label}: {s1} shots {drop:.1f} pt below {s0}"
             for row in study.rows for s0, s1, drop in non_monotone_steps(study, row)]
    return Paragraph("Non-monotone steps (a shot count below the one before by more than the "
                     "seeds' spread, red x in the figure): " + ("; ".join(steps) or "none") + ".")


def analysis_blocks(analyses: Analyses) -> list[Block]:
    where = f"{analyses.dataset}, {analyses.shots} shots" if analyses.dataset else "no cell"
    blocks: list[Block] = [Heading(2, f"Analyses ({where})", "analyses"),
                           Heading(3, "First text-prompt token as runs start (epoch 0)")]
    if analyses.stats_rows:
        blocks.append(Table(["init", "seed", "mean", "std (n-1)", "min", "max"],
                            analyses.stats_rows, anchor="tokenstats"))
    else:
        blocks.append(Paragraph(analyses.stats_note))
    blocks.append(Heading(3, "t-SNE of the class text features after epoch 1"))
    if analyses.tsne_png:
        blocks.append(Figure("tsne.png", analyses.tsne_png,
                             f"t-SNE, one panel per init: {analyses.tsne_note}"))
    else:
        blocks.append(Paragraph(f"t-SNE {analyses.tsne_note}"))
    blocks.append(Heading(3, "Loss curves per init (mean over seeds, band +- std)"))
    if analyses.loss_png:
        blocks.append(Figure("losses.png", analyses.loss_png, f"Loss curves: {analyses.loss_note}"))
    else:
        blocks.append(Paragraph(f"Loss curves {analyses.loss_note}"))
    return blocks


def inventory_blocks(study: Study, runs: Sequence[Run], grid: Grid) -> list[Block]:
    all_slots, outside = slots(grid, runs)
    counts = status_counts(all_slots)
    inits = [" ".join([init] + ([f"vis {vis}"] if vis != "random" else []) + ([tag] if tag else []))
             for init, vis, tag in grid.inits]
    blocks: list[Block] = [
        Heading(2, "Inventory", "inventory"),
        Paragraph(f"Grid: {', '.join(grid.datasets) or '-'} x inits {', '.join(inits) or '-'}"
                  f" x shots {', '.join(map(str, grid.shots)) or '-'} x seeds "
                  f"{', '.join(map(str, grid.seeds)) or '-'} = {len(all_slots)} runs: "
                  + (", ".join(f"{n} {status}" for status, n in counts) or "none") + "."),
    ]
    open_slots = [s for s in all_slots if s.status != FINISHED]
    if open_slots:
        blocks.append(Table(["dataset", "init", "shots", "seed", "status", "detail", "folder"],
                            [[s.dataset, s.init, s.shots, s.seed, s.status, s.detail, s.path]
                             for s in open_slots], anchor="notfinished",
                            caption="Runs of the grid that are not finished with their cell's "
                                    "settings"))
    else:
        blocks.append(Paragraph("Every run of the grid is finished."))
    if outside:
        blocks.append(Table(["folder", "status", "detail"],
                            [[str(r.path), r.status, r.detail] for r in outside],
                            caption="Run folders outside the grid (not in Table 1 unless "
                                    "finished and placed)"))
    differing = pooled_differences(study)
    blocks.append(Heading(3, "Config keys that differ between runs pooled in one cell"))
    if differing:
        blocks.append(Table(["cell", "shots", "keys (\u2020 in Table 1)"],
                            [list(d) for d in differing], anchor="pooledkeys"))
    else:
        blocks.append(Paragraph("Keys differing within a cell (SEED aside): none."))
    blocks.append(Heading(3, "Provenance"))
    blocks.append(Table(["what", "value"], [list(p) for p in provenance(runs)],
                        anchor="provenance"))
    return blocks


def build_blocks(root: str, runs: Sequence[Run], study: Study, grid: Grid, reference: Any,
                 reference_name: str, baseline: str, analyses: Analyses,
                 accuracy_png: bytes) -> list[Block]:
    blocks: list[Block] = [
        Paragraph(f"Runs under {root}: {len(runs)} seed folders, "
                  f"{sum(r.finished for r in runs)} with a test result. Sections: Table 1, "
                  "accuracy vs shots, the paired answer, analyses, inventory."),
        Heading(2, "Table 1: accuracy", "results"),
    ]
    if study.rows:
        blocks.append(table1(study, reference, reference_name))
        blocks.append(Figure("accuracy_vs_shots.png", accuracy_png,
                             "Accuracy vs shots: filled markers mean " + PM + " std over seeds, "
                             "hollow markers the reference, red x non-monotone steps"))
        blocks.append(shape_paragraph(study))
    else:
        blocks.append(Paragraph("No finished run yet: nothing to tabulate (see the inventory)."))
    blocks += answer_blocks(study, baseline)
    blocks += analysis_blocks(analyses)
    blocks += inventory_blocks(study, runs, grid)
    blocks.append(Items(["Files beside this report: report.html (self-contained), report.md "
                         "with its PNG figures, table1.tex, runs.csv (one row per run)."]))
    return blocks


__all__ = ["build_blocks", "table1_latex", "runs_csv"]
