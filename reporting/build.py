"""The report's content: Table 1, the figure, the paired answer, analyses and inventory."""
from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from results.render import latex_escaped
from .analyses import Analyses
from .document import Block, Figure, Heading, Items, Paragraph, Table
from .inventory import Grid, pooled_differences, provenance, slots, status_counts
from .runs import FINISHED, Run
from .stats import ALPHA, METHOD
from .study import (TEXT_INIT, VIS_INIT, Comparison, Factor, Study, compare, comparison_label,
                    factor_value, factor_values, factors, non_monotone_steps, reference_value, short_key, summaries,
                    value_sort_key, Row)

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

    tex = latex_escaped  # by construction, one character at a time (issue 25)

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


def factor_title(factor: Factor) -> str:
    return factor.name if factor.name in (TEXT_INIT, VIS_INIT) else short_key(factor.key)


def answer_blocks(study: Study, factor: Factor, comparisons: Sequence[Comparison],
                  anchor: str) -> list[Block]:
    title = factor_title(factor)
    blocks: list[Block] = [
        Heading(2, f"The answer for {title}: each value against {factor.baseline}", anchor),
        Paragraph(f"Baseline {title} = {factor.baseline} ({factor.baseline_why}). Method: "
                  f"{METHOD}. Runs of one seed are paired by construction (same split, data "
                  "order, augmentations, dropout). A seed that only one side has, or whose two "
                  f"runs differ in more than {title}, is listed as unpaired and left out. Where "
                  "every paired difference is the same (sd 0) no interval or test is given: "
                  "identical differences carry no measure of noise. 'seeds for +-1 pt': the "
                  "fewest seeds whose interval would be +-1 pt at the observed sd."),
    ]
    if not comparisons:
        return blocks + [Paragraph(f"No cell has both {title} = {factor.baseline} and another "
                                   "value with everything else equal: nothing to compare.")]
    rows = []
    cells_per_row = Counter(comparison_label(c) + c.row.dataset for c in comparisons)
    for c in comparisons:
        p = c.paired
        interval = "-" if p is None or p.interval is None else \
            f"[{p.interval[0]:+.2f}, {p.interval[1]:+.2f}]"
        needed = "-" if p is None else (p.seeds_for_half_width() or "-")
        n_cells = cells_per_row[comparison_label(c) + c.row.dataset]
        rows.append([c.row.dataset, comparison_label(c), c.shots, "-" if p is None else p.n,
                     "-" if p is None else f"{p.mean:+.2f}", interval,
                     "-" if p is None or p.p_value is None else f"{p.p_value:.3g}",
                     "-" if c.holm_p is None else f"{c.holm_p:.3g}",
                     "no paired seed" if p is None else p.words(holm_p=c.holm_p, cells=n_cells),
                     needed, "; ".join(c.unpaired) or "none"])
    blocks.append(Table(["dataset", "compared", "shots", "paired seeds", "mean diff (pt)",
                         "95% interval", "p", "p (Holm)", "in words", "seeds for +-1 pt",
                         "unpaired"], rows, anchor=f"{anchor}-cells",
                        caption=f"Paired differences per dataset x shots ({title}); p (Holm): "
                                "adjusted over the shot counts of one compared row and data set"))
    summary_rows = []
    for label, (summary, cells) in summaries(comparisons).items():
        if summary is None:
            summary_rows.append([label, 0, "-", "-", "-", "no paired cell"])
            continue
        summary_rows.append([label, cells, len(summary.seeds), f"{summary.mean:+.2f}",
                             "-" if summary.p_value is None else f"{summary.p_value:.3g}",
                             summary.words()])
    blocks.append(Table(["compared", "cells", "seeds", "mean of cell differences (pt)",
                         "sign-flip p", "in words"], summary_rows, anchor=f"{anchor}-summary",
                        caption="Summary over all cells: a sign-flip permutation test with the "
                                "seed as unit (cells of one seed share its split and draws, so "
                                "all of a seed's differences flip together; exact over all "
                                "2^seeds patterns); each cell weighs the same"))
    return blocks


def grid_blocks(study: Study, factor: Factor, figure: bytes | None) -> list[Block]:
    """A grid key's own section: accuracy per value per shots, every other factor fixed."""
    title = short_key(factor.key)
    values = factor_values(study, factor)
    headers = ["dataset", "other factors", title] + [f"{s} shots" for s in study.shots]
    rows = []
    for row in study.rows:
        others = Row("", row.init, row.vis_init, "", row.config).label
        rows.append([row.dataset, others, factor_value(study, row, factor)]
                    + [cell_text(study, row, s) for s in study.shots])
    rows.sort(key=lambda r: (r[0], r[1], value_sort_key(r[2])))
    blocks: list[Block] = [
        Heading(2, f"Grid: {factor.key}", f"grid-{title.lower()}"),
        Paragraph(f"Values {', '.join(values)}; baseline {factor.baseline} "
                  f"({factor.baseline_why}). Accuracy (%) per value and shots, mean {PM} "
                  "population std over seeds (n seeds)."),
        Table(headers, rows, anchor=f"grid-{title.lower()}-table"),
    ]
    if figure:
        blocks.append(Figure(f"grid_{title.lower()}.png", figure,
                             f"Accuracy against {title}, one line per shot count"))
    return blocks


def conclusion(factor: Factor, comparisons: Sequence[Comparison]) -> list[str]:
    """One sentence per compared value of ``factor``: what the data support."""
    lines = []
    for label, (summary, n_cells) in summaries(comparisons).items():
        mine = [c for c in comparisons if comparison_label(c) == label and c.paired]
        head = f"{factor_title(factor)}: {label} against {factor.baseline}"
        if summary is None:
            lines.append(f"{head}: no paired seed, nothing can be said.")
            continue
        excl = sum(1 for c in mine if c.paired.interval and
                   (c.paired.interval[0] > 0 or c.paired.interval[1] < 0))
        holm_ok = sum(1 for c in mine if c.holm_p is not None and c.holm_p < ALPHA)
        flat = sum(1 for c in mine if c.paired.degenerate)
        if flat == len(mine) and all(abs(c.paired.mean) <= 1e-9 for c in mine):
            lines.append(f"{head}: the same accuracy in every paired seed of all {n_cells} "
                         "cells (every difference 0.00): no difference and no measure of noise; "
                         "nothing can be concluded.")
            continue
        text = (f"{head}: {summary.words()}; {excl} of {n_cells} cells' 95 % intervals "
                f"exclude 0 ({holm_ok} after Holm)")
        if flat:
            text += f"; {flat} cell(s) have identical differences in every seed (no interval)"
        lines.append(text + ".")
    return lines


def shape_paragraph(study: Study) -> Paragraph:
    steps = [f"{row.dataset} {row.label}: {s1} shots {drop:.1f} pt below {s0}"
             for row in study.rows for s0, s1, drop in non_monotone_steps(study, row)]
    return Paragraph("Non-monotone steps (a shot count below the one before by more than the "
                     "seeds' spread, red x in the figure): " + ("; ".join(steps) or "none") + ".")


def analysis_blocks(analyses: Analyses) -> list[Block]:
    where = (f"{analyses.dataset}, {analyses.shots} shot{'s' if analyses.shots != 1 else ''}"
             if analyses.dataset else "no cell")
    blocks: list[Block] = [Heading(2, f"Analyses ({where})", "analyses"),
                           Heading(3, "First text-prompt token as runs start (epoch 0)")]
    if analyses.stats_rows:
        blocks.append(Table(["init", "seed", "mean", "std (n-1)", "min", "max"],
                            analyses.stats_rows, anchor="tokenstats"))
        firsts: dict[tuple[str, Any], list[Any]] = {}
        for label, seed, *numbers in analyses.stats_rows:
            firsts[(label.split(",")[0], seed)] = numbers
        if any(firsts.get(("same", seed)) == numbers for (init, seed), numbers in firsts.items()
               if init == "diff"):
            blocks.append(Paragraph("same and diff rows of one seed are identical by design: "
                                    "both draw their noise from the same generator state, so "
                                    "same's one shared token is diff's first token; they differ "
                                    "from the second token on (tools/analyze_prompts.py "
                                    "init-stats --tokens all compares every token)."))
    else:
        blocks.append(Paragraph(analyses.stats_note))
    blocks.append(Heading(3, "t-SNE of the class text features after epoch 1"))
    if analyses.tsne_png:
        blocks.append(Figure("tsne.png", analyses.tsne_png,
                             f"t-SNE, one panel per init: {analyses.tsne_note}"))
    else:
        blocks.append(Paragraph(f"t-SNE {analyses.tsne_note}"))
    cells = [(analyses.shots, analyses.loss_png, analyses.loss_note)] + analyses.other_losses
    for shots, png, note in sorted(cells, key=lambda c: c[0]):
        blocks.append(Heading(3, f"Loss curves, {analyses.dataset} {shots} "
                                 f"shot{'s' if shots != 1 else ''} (mean over seeds, band "
                                 f"{PM} std)"))
        name = "losses.png" if shots == analyses.shots else f"losses_{shots}shots.png"
        if png:
            blocks.append(Figure(name, png, f"Loss curves: {note}"))
        else:
            blocks.append(Paragraph(f"Loss curves {note}"))
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
    noted = [[str(r.path), note] for r in runs for note in r.notes]
    if noted:  # what was odd or damaged in a run's record (study/run_read.py)
        blocks.append(Table(["folder", "note"], noted, anchor="runnotes",
                            caption="Notes on run folders (damaged or disagreeing records)"))
    differing = pooled_differences(study)
    blocks.append(Heading(3, "Config keys that differ between runs pooled in one cell"))
    if differing:
        blocks.append(Table(["cell", "shots", "keys (\u2020 in Table 1)"],
                            [list(d) for d in differing], anchor="pooledkeys"))
    else:
        blocks.append(Paragraph("Keys differing within a cell (SEED aside): none."))
    flagged: dict[str, list[Run]] = {}
    for run in runs:
        why = unpublished(run)
        if why:
            flagged.setdefault("; ".join(why), []).append(run)
    blocks.append(Heading(3, "Runs that differ from the published setup"))
    if flagged:
        blocks.append(Table(["differs in", "runs", "first folder"],
                            [[why, len(members), str(members[0].path)]
                             for why, members in flagged.items()], anchor="unpublished",
                            caption="Published setup: CLIP ViT-B/16 (~335 MB), real data, "
                                    "configs vit_b16, vit_b16_ep50, vit_b16_ep100"))
    else:
        blocks.append(Paragraph("None found: every run used a CLIP file of ViT-B/16's size, "
                                "data not generated by tools/tiny_data.py, and a published "
                                "config."))
    blocks.append(Heading(3, "Provenance"))
    blocks.append(Table(["what", "value"], [list(p) for p in provenance(runs)],
                        anchor="provenance"))
    return blocks


PUBLISHED_CONFIGS = {"vit_b16", "vit_b16_ep50", "vit_b16_ep100"}
PUBLISHED_CLIP_BYTES = 100_000_000  # ViT-B/16's clip file is ~335 MB; a small CLIP is ~KB-MB
TINY_DATA_MARKER = ".made_by_tiny_data"  # tools/tiny/marker.py: a generated data set


def unpublished(run: Run) -> list[str]:
    """How a run differs from the published setup (real CLIP ViT-B/16, real data, DAPT's
    configs), as far as its record and log tell."""
    found = []
    size = run.clip_weights.get("size")
    path = str(run.clip_weights.get("path", ""))
    if (isinstance(size, int) and size < PUBLISHED_CLIP_BYTES) or "small_clip" in path:
        found.append("a small random CLIP" + (f" ({size / 1e6:.1f} MB)"
                                               if isinstance(size, int) else ""))
    if run.split_file and (Path(run.split_file).parent / TINY_DATA_MARKER).is_file():
        found.append("generated tiny data (noise images)")
    if run.cell is not None and run.cell.config and run.cell.config not in PUBLISHED_CONFIGS:
        found.append(f"config {run.cell.config}")
    if run.cell is not None and "trial" in run.cell.tag.split("_"):
        found.append("tagged trial")
    return found


def banner(runs: Sequence[Run]) -> list[Block]:
    flagged = [(r, unpublished(r)) for r in runs if r.finished and unpublished(r)]
    if not flagged:
        return []
    reasons = Counter(reason.split(" (")[0] for _, why in flagged for reason in why)
    return [Paragraph("WARNING: these numbers show the pipeline, not the method. "
                      f"{len(flagged)} of {sum(r.finished for r in runs)} finished runs were made "
                      "with " + "; ".join(f"{reason} ({n} runs)" for reason, n
                                          in reasons.most_common())
                      + ". Their accuracies say nothing about DAPT or the inits (see the "
                        "inventory).", banner=True)]


def reference_note(study: Study, reference: Any, reference_name: str) -> list[Block]:
    if reference is None:
        return [Paragraph("No reference columns: the report was run with --reference none.")]
    present = [reference_value(reference, row, s) for row in study.rows for s in study.shots]
    if any(v is not None for v in present):
        return []
    return [Paragraph(f"The reference columns ({reference_name}) are all '-': the reference "
                      "has no value for any data set x init x shots of this tree (it holds "
                      f"{len(reference.values)} values; names and shots must match).")]


def build_blocks(root: str, runs: Sequence[Run], study: Study, grid: Grid, reference: Any,
                 reference_name: str, chosen: dict[str, str], analyses: Analyses,
                 accuracy_png: bytes, extra_figures: dict[str, bytes] | None = None
                 ) -> list[Block]:
    all_factors = factors(study, chosen)
    compared = [(f, compare(study, f)) for f in all_factors]
    blocks: list[Block] = banner(runs) + [
        Paragraph(f"Runs under {root}: {len(runs)} seed folders, "
                  f"{sum(r.finished for r in runs)} with a test result."),
        Heading(2, "What the data support", "conclusions"),
        Items([line for factor, comparisons in compared for line in conclusion(factor, comparisons)]
              or ["Nothing varies between runs with everything else equal: no comparison."]),
        Heading(2, "Table 1: accuracy", "results"),
    ]
    if study.rows:
        blocks.append(table1(study, reference, reference_name))
        blocks += reference_note(study, reference, reference_name)
        blocks.append(Figure("accuracy_vs_shots.png", accuracy_png,
                             "Accuracy vs shots: filled markers mean " + PM + " std over seeds, "
                             "hollow markers the reference, red x non-monotone steps"))
        blocks.append(shape_paragraph(study))
    else:
        blocks.append(Paragraph("No finished run yet: nothing to tabulate (see the inventory)."))
    if not compared:
        blocks.append(Heading(2, "The answer", "answer"))
        blocks.append(Paragraph("No cell has two values of one factor (text init, visual init "
                                "or a grid key) with everything else equal: nothing to compare."))
    for index, (factor, comparisons) in enumerate(compared):
        if factor.name not in (TEXT_INIT, VIS_INIT):
            blocks += grid_blocks(study, factor, (extra_figures or {}).get(factor.key))
        blocks += answer_blocks(study, factor, comparisons, "answer" if index == 0
                                else f"answer-{index}")
    blocks += analysis_blocks(analyses)
    blocks += inventory_blocks(study, runs, grid)
    blocks.append(Items(["Files beside this report: report.html (self-contained), report.md "
                         "with its PNG figures, table1.tex, runs.csv (one row per run)."]))
    return blocks


__all__ = ["build_blocks", "table1_latex", "runs_csv"]
