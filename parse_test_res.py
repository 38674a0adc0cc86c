#!/usr/bin/env python
"""Summarize test results of CoOp-family runs (DAPT_Init, CoOp, CoCoOp, DAPT, RPO, ...).

Reads only the files a run leaves on disk (``log.txt*`` and, for DAPT_Init, ``result.json``):
no Dassl, no torch. Needs the standard library and ``tabulate``; ``matplotlib`` only for --plot.

Directory mode (CoOp-compatible)
--------------------------------
    python parse_test_res.py output/eurosat/DAPT_Init/diff/vit_b16_ep100_4shots

DIR holds one folder per seed (``seed1/``, ``seed2/``, ... each with a log). Prints one line per
run (file and value) and then ``* accuracy: MEAN% +- STD% (n=N)``. The options mean what they mean
in CoOp's ``parse_test_res.py``:

    --ci95       show the 95% confidence interval 1.96 * std / sqrt(n) instead of the std
    --multi-exp  DIR holds several experiments, each holding seed folders: summarize each, then
                 print the average of the experiment means
    --keyword K  read the metric line ``* K: VALUE%`` (default ``accuracy``; e.g. ``macro_f1``)
    --test-log   count every result after ``=> result``, also in logs that have training lines
                 but no ``Finish training`` line. Eval-only logs (``--eval-only`` runs, which have
                 no training lines at all) are recognised without this flag.

Study mode
----------
    python parse_test_res.py --study output/ [--format plain|github|csv|latex]
                             [--table fewshot|dg|base2new] [--plot accuracy.png] [--ci95]
                             [--reference [NAME=]FILE.csv ...]

Walks the output root, finds every ``seed<k>`` run folder and prints one table per layout found:

    few-shot   <dataset>/<trainer>/<init>/<cfg>_<shots>shots[_<TAG>]/seed<k>
    dg         evaluation/<target_dataset>/<trainer>/<init>/<cfg>_<shots>shots[_<TAG>]/seed<k>
    base2new   base2new/{train_base,test_new}/<dataset>/shots_<K>/<trainer>/<init>/<cfg>/seed<k>

A run that recorded its spec in ``result.json`` (``"spec"``: kind, dataset, init, vis_init,
config, shots, seed, tag, grid; written by train.py) is placed by that record whatever its
folders are called, and a note names each field the folder names contradict; the folder names
place only runs without one (CoOp-family trees, older runs). Either way only ``seed<k>`` folders
are read. Runs of one cell recorded with different sweep settings (``grid``) are not pooled:
their settings are appended in brackets.
``<init>`` may be ``<init>_vis-<visinit>`` (the scripts' folder for a non-random visual init).
Few-shot and dg tables: rows are init x shots (grouped by init in the order random, same, diff,
then other methods; shots ascending), columns are datasets, cells ``mean +- std (n seeds)``.
The visual init (from the folder or result.json's "vis_init_method"; runs recording none used
random) becomes a "vis init" column when the study holds more than one, and runs with a TAG
get a "tag" column: runs of different tags or visual inits are never pooled.
The base-to-new table has one row per dataset x init x shots with columns base, new and H, where
H = 2*b*n/(b+n) is computed from the MEAN base and MEAN new values (not a mean of per-seed H).
``--plot FILE.png`` draws the few-shot table: accuracy against shots, one panel per dataset, one
line per init with std (or ci95) error bars, the inits dodged side by side along x so their bars
never overlap and the bars cut at 0 and 100. With ``--format csv`` and several tables, each table
is preceded by a ``# <title>`` row and a blank line separates them; pick one with ``--table``.

``--reference FILE.csv`` (repeatable; ``NAME=FILE.csv`` names it, else the file name does) adds,
per dataset of the few-shot and dg tables, the reference value, measured mean - reference in
points, and that difference in seed standard deviations ('-' where the std is 0); the plot shows
references as hollow markers. Its columns: dataset (folder or display name), init, shots and the
metric (``accuracy``, or the --keyword); optional vis_init (default random) and tag (default
none); '#' lines are comments. docs/reference/report_seed1.csv is the study report's table.

DIR must be one output root: when its runs sit below known dataset folders deeper down (a folder
holding several output roots, or another tree), or DIR is a dataset folder, the study is refused
with one ``error:`` line naming the folder to give (exit status 2).

Path leniency: a run folder with no init level (``<dataset>/<trainer>/<cfg>_<shots>shots/...``,
other trainers) gets the trainer name as its row label; folders between the shots folder and the
seed folder (CoOp's ``nctx16_cscFalse_ctpend/``) are appended: ``CoOp/nctx16_cscFalse_ctpend``.
If several trainers have init levels, labels become ``<trainer>/<init>``. If one cell would mix
runs of different config names, the config is appended in brackets. Dataset columns use readable
names for the 15 CoOp datasets (``oxford_pets`` -> OxfordPets) and the folder name otherwise.

What counts as a complete run
-----------------------------
* Logs: ``log.txt`` and the ``log.txt-YYYY-MM-DD-HH-MM-SS`` files Dassl writes when a run is
  resumed or re-run. The newest log (by the time stamp in its name) that holds a final result is
  used; older results of the same folder are ignored.
* A final result is a ``* <keyword>: VALUE%`` line after ``Finish training`` (training logs; the
  per-epoch *val* results before it are ignored) or, in eval-only logs, after ``=> result``.
* Several final results in one log: the LAST one is used (as CoOp's parser does) and a note says
  so.
* ``result.json`` (written by a finished DAPT_Init run) is preferred over the log when it holds
  the metric; if the log's value differs by more than the log's rounding (0.05), a note says so.
  An unreadable ``result.json`` is noted and the log is used.
* Skipped, each with its reason: no log, run in progress (training not finished), crashed run
  (traceback and no final result; the exception line is shown), non-numeric or non-finite value,
  paths that match no layout (study mode). Skipped runs and notes go to stderr; stdout holds only
  results.

Statistics: mean over seeds; std is the POPULATION standard deviation (ddof=0, numpy's default,
as CoOp's parser uses ``np.std``); ci95 = 1.96 * std / sqrt(n). A single seed has std 0.

Exit status: 0 when at least one complete run was found, 1 when none was, 2 for usage errors
(including a bad --reference file or a DIR that is not one output root) and for a ``--plot``
that cannot be written (one ``error:`` line; a folder that does not exist or cannot be written
is refused before any run is read).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

# The code lives in results/ (one module per concern) and study/run*.py (what a run is).
from results.coop import run_directory_mode
from results.labels import label_methods
from results.outcomes import exit_status, report_problems
from results.plots import plot_if_possible, plot_path_problem
from results.reference import ReferenceDataError, load_reference
from results.render import FORMATS, print_tables
from results.study import NOT_AS_PUBLISHED, collect_study
from results.tables import (MIXED_WEIGHTS_NOTE, TABLE_KINDS, base2new_text_table,
                            build_grid_table, grid_text_table, matched_cells, table_titles)
from study.run import find_run_folders, output_root_problem


# ---- Study mode: driver ----------------------------------------------------------------------
def run_study_mode(options: argparse.Namespace) -> int:
    root: Path = options.directory
    problem = output_root_problem(root, find_run_folders(root))
    try:
        if problem:
            raise ReferenceDataError(problem)
        references = [load_reference(spec, options.keyword) for spec in options.reference]
    except ReferenceDataError as error:  # before any output: one line, as for usage errors
        print(f"error: {error}", file=sys.stderr)
        return 2
    runs, named_outcomes = collect_study(root, options.keyword, options.test_log)
    methods = label_methods(run.key for run in runs)
    titles = table_titles(options.keyword, options.ci95)
    table_format = options.format or "plain"
    grids = {kind: build_grid_table(runs, kind, titles[kind], methods)
             for kind in ("fewshot", "dg")}
    tables = {kind: grid_text_table(grid, options.ci95, table_format, references)
              for kind, grid in grids.items()}
    tables["base2new"] = base2new_text_table(runs, methods, titles["base2new"], options.ci95,
                                             table_format)
    wanted = [options.table] if options.table else list(TABLE_KINDS)
    print_tables([tables[kind] for kind in wanted if tables[kind].rows], table_format)
    sys.stdout.flush()  # the tables before the notes on stderr, also when both go to one file
    plotted = plot_if_possible(grids["fewshot"], options, references) if options.plot else True
    if any(grid.mixed_weights for grid in grids.values()):
        print(MIXED_WEIGHTS_NOTE, file=sys.stderr)
    for reference in references:
        print(f"Reference {reference.name} ({reference.path}): {len(reference.values)} values, "
              f"{matched_cells(reference, list(grids.values()))} beside measured cells",
              file=sys.stderr)
    unpublished = set().union(*(grid.unpublished.get((method.label, shots), set())
                                for grid in grids.values() for method, shots in grid.rows))
    if references and unpublished:
        print(f"Note: rows marked '{NOT_AS_PUBLISHED}' were not made with the published recipe "
              f"({'; '.join(sorted(unpublished))}): their difference from a reference says "
              "nothing about the method.", file=sys.stderr)
    report_problems(named_outcomes)
    complete = sum(outcome.complete for _, outcome in named_outcomes)
    print(f"{complete} complete runs, {len(named_outcomes) - complete} skipped, under {root}",
          file=sys.stderr)
    return exit_status(outcome for _, outcome in named_outcomes) if plotted else 2


# ---- Command line ----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Mean +- std over seeds of CoOp-family runs (DAPT_Init, CoOp, DAPT, ...), "
                    "from their log.txt / result.json files. Without --study: DIR holds seed "
                    "folders (CoOp's parse_test_res.py). With --study: DIR is an output root and "
                    "the study tables are printed. Skipped runs and notes go to stderr.",
        epilog="Std is the population std (ddof=0, like np.std). Exit status 1 when no "
               "complete run is found. See the module docstring for the layouts and rules.")
    parser.add_argument("directory", type=Path, metavar="DIR",
                        help="folder of seed folders, or with --study the output root "
                             "(e.g. output/)")
    parser.add_argument("--ci95", action="store_true",
                        help="show the 95%% confidence interval 1.96*std/sqrt(n) instead of std")
    parser.add_argument("--test-log", action="store_true",
                        help="count results after '=> result' even in logs with training lines "
                             "and no 'Finish training' (eval-only logs are detected anyway)")
    parser.add_argument("--multi-exp", action="store_true",
                        help="DIR holds several experiment folders, each with seed folders; "
                             "also print the average of their means")
    parser.add_argument("--keyword", default="accuracy",
                        help="metric to read from '* KEYWORD: VALUE%%' lines and result.json "
                             "(default: accuracy; e.g. macro_f1, error)")
    study = parser.add_argument_group("study mode")
    study.add_argument("--study", action="store_true",
                       help="DIR is an output root: find every dataset/trainer/init/shots/seed "
                            "run and print the tables (rows init x shots, columns datasets)")
    study.add_argument("--format", choices=FORMATS + ("markdown",), default=None,
                       help="table format: plain text (default), github (= markdown), csv, "
                            "latex")
    study.add_argument("--table", choices=TABLE_KINDS, default=None,
                       help="print only this table: fewshot (main), dg (evaluation/), "
                            "base2new (default: every table that has results)")
    study.add_argument("--plot", type=Path, metavar="FILE.png", default=None,
                       help="also draw the few-shot results: accuracy against shots, one panel "
                            "per dataset, one line per init, std (or ci95) error bars")
    study.add_argument("--reference", action="append", default=[], metavar="[NAME=]FILE.csv",
                       help="reference accuracies (columns dataset, init, shots, accuracy; "
                            "optional vis_init, tag) beside the measured means: a column per "
                            "reference and the difference in points and in seed stds, hollow "
                            "markers in the plot; repeatable; NAME defaults to the file name. "
                            "The report's table: docs/reference/report_seed1.csv")
    return parser


def check_options(parser: argparse.ArgumentParser, options: argparse.Namespace) -> None:
    """Usage errors exit with status 2 before anything is read."""
    if options.format == "markdown":
        options.format = "github"
    if not options.study:
        for name in ("format", "table", "plot"):
            if getattr(options, name) is not None:
                parser.error(f"--{name} needs --study")
        if options.reference:
            parser.error("--reference needs --study")
    elif options.multi_exp:
        parser.error("--multi-exp and --study do not go together: --study finds every "
                     "experiment itself")
    if not options.directory.is_dir():
        parser.error(f"not a folder: {options.directory}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    options = parser.parse_args(argv)
    check_options(parser, options)
    problem = plot_path_problem(options.plot) if options.plot else None
    if problem:
        print(f"error: {problem}.", file=sys.stderr)
        return 2
    return run_study_mode(options) if options.study else run_directory_mode(options)


if __name__ == "__main__":
    from study.entry import run_main

    sys.exit(run_main(main))
