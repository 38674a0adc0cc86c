"""Command line of the study report (tools/report.py is its entry point)."""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Sequence

from results.reference import ReferenceDataError, load_reference

from .analyses import start_analyses
from .figures import accuracy_figure, grid_figure
from .build import build_blocks, runs_csv, table1_latex
from .document import write_report
from .output import OutputError, ReportFolder
from .inventory import observed_grid
from .runs import read_tree

REPO = Path(__file__).resolve().parent.parent
from .study import FACTOR_KEYS, TEXT_INIT, VIS_INIT, build_study, factors

DEFAULT_REFERENCE = REPO / "docs" / "reference" / "report_seed1.csv"
TSNE_CELL = re.compile(r"^[^:]+:\d+$")


class UserError(Exception):
    """A problem with the command line or its files: one ``error:`` line, exit status 2."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tools/report.py",
        description="The study report of an output tree: report.html (self-contained), "
                    "report.md with PNG figures, table1.tex, runs.csv.")
    parser.add_argument("output_root", type=Path, help="the sweep's OUTPUT_ROOT")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the report to")
    parser.add_argument("--reference", default=str(DEFAULT_REFERENCE),
                        help="reference CSV ([NAME=]FILE, parse_test_res.py's format); "
                             "'none' for no reference (default: %(default)s)")
    parser.add_argument("--baseline", action="append", default=[], metavar="[FACTOR=]VALUE",
                        help="the value others are paired against: INIT (text init, default "
                             "random), 'vis=INIT' (visual init), KEY=VALUE for a grid key "
                             "(default: the value of runs made without that grid); repeatable")
    parser.add_argument("--tsne", metavar="DATASET:SHOTS", default=None,
                        help="the cell of the analyses (default: the first present)")
    grid = parser.add_argument_group("the grid the inventory expects (default: what is there)")
    grid.add_argument("--datasets", nargs="+")
    grid.add_argument("--inits", nargs="+")
    grid.add_argument("--shots", nargs="+", type=int)
    grid.add_argument("--seeds", nargs="+", type=int)
    return parser.parse_args(argv)


def reference_of(spec: str):
    if spec.lower() == "none":
        return None, ""
    try:
        reference = load_reference(spec, "accuracy")
    except ReferenceDataError as error:
        raise UserError(str(error)) from None
    return reference, reference.name


def parse_baselines(given: Sequence[str]) -> dict[str, str]:
    """--baseline words -> {factor name or key: value}."""
    chosen: dict[str, str] = {}
    for word in given:
        name, sep, value = word.partition("=")
        if not sep:
            name, value = TEXT_INIT, word
        elif name.lower() in ("vis", "vis_init", "visual init"):
            name = VIS_INIT
        elif name.lower() in ("init", "txt", "text init"):
            name = TEXT_INIT
        if not name.strip() or not value.strip():
            raise UserError(f"--baseline {word}: expected INIT, vis=INIT or KEY=VALUE "
                            "(e.g. TRAINER.DAPT_INIT.TXT_BETA=0.1).")
        chosen[name.strip()] = value.strip()
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return make_report(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def make_report(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    root = args.output_root
    if not root.is_dir():
        raise UserError(f"{root} is not a folder; give the sweep's OUTPUT_ROOT (e.g. output/).")
    if args.tsne is not None and not TSNE_CELL.match(args.tsne):
        raise UserError(f"--tsne {args.tsne}: expected DATASET:SHOTS, e.g. eurosat:1.")
    out = ReportFolder(args.out)
    try:
        out.check()  # before any work: a user's folder is refused untouched
    except OutputError as error:
        raise UserError(str(error)) from None
    chosen = parse_baselines(args.baseline)
    reference, reference_name = reference_of(args.reference)
    runs = read_tree(root)
    study = build_study(runs)  # also marks runs whose settings differ from their cell's
    grid = observed_grid(runs, args.datasets, args.inits, args.shots, args.seeds)
    finish_analyses = start_analyses(study, args.tsne)
    accuracy_png = accuracy_figure(study, reference) if study.rows else b""
    extra = {f.key: grid_figure(study, f) for f in factors(study, chosen)
             if f.name not in FACTOR_KEYS}
    blocks = build_blocks(str(root), runs, study, grid, reference, reference_name,
                          chosen, finish_analyses(), accuracy_png, extra)
    try:
        out.claim()
        written = write_report(out, f"DAPT_Init study report: {root.name}", blocks)
        out.write("table1.tex", table1_latex(study, reference, reference_name))
        out.write("runs.csv", runs_csv(runs))
        out.finish()
    except OutputError as error:
        raise UserError(str(error)) from None
    except OSError as error:
        raise UserError(f"cannot write the report into {args.out} ({error.strerror}).") from None
    finished = sum(r.finished for r in runs)
    print(f"Report of {len(runs)} runs ({finished} finished) written to {args.out}/: "
          f"{', '.join(p.name for p in written)}, table1.tex, runs.csv "
          f"({time.perf_counter() - started:.1f} s)")
    return 0
