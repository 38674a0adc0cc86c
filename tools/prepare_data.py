"""Check a data root for the CoOp-family data sets and, where the sources are public, fetch them.

    python tools/prepare_data.py --root /data                        # survey all fifteen
    python tools/prepare_data.py --root /data --dataset eurosat      # one (config or class name)
    python tools/prepare_data.py --root /data --dataset EuroSAT --download

For each data set it prints what is present, what is missing and the exact next step. With
``--download`` it fetches what is public (archives by URL, CoOp's split files from Google Drive
with ``gdown``), verifies published MD5 checksums and sizes where they are known (and says so
where none is), extracts into a temporary folder inside the data set folder and only then
renames the parts into place, so an interrupted run never leaves a half-extracted folder. An
archive already sitting in the data set folder (fetched by hand) is used instead of a download.
Data sets whose licence needs a person (ImageNet, ...) get the exact manual steps.

Without ``--dataset`` it surveys the root: the data sets present get the full report and
those without a folder one line (all fifteen get the full report when none is present).

Exit status: 0 when every data set checked is ready (in a survey: every one present, and at
least one), 1 when any is not (so scripts can test it), 2 for a bad command line.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

# The toolbox imports wilds, whose 'outdated' dependency imports the deprecated pkg_resources:
# a warning on every start that is about neither this project nor the user's setup.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
from pathlib import Path  # noqa: E402
from typing import Sequence  # noqa: E402

# The table of data sets, the report
# and the download code are in tools/data_prep/; this module is the command line.
from tools.data_prep.check import report  # noqa: E402
from tools.data_prep.download import PrepareError, prepare  # noqa: E402
from tools.data_prep.specs import SPECS, Spec  # noqa: E402


def find_spec(name: str) -> Spec:
    """A data set by class name (EuroSAT) or config name (eurosat), any case."""
    for spec in SPECS:
        if name.lower() in (spec.name.lower(), spec.config.lower()):
            return spec
    choices = ", ".join(spec.config for spec in SPECS)
    raise SystemExit(f"Unknown data set {name!r}; choose one of: {choices}, or all.")


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Check (and with --download fetch) CoOp-family data sets under a data root.",
        epilog="Exit status: 0 all checked data sets ready, 1 some not ready, 2 usage error.")
    parser.add_argument("--root", required=True, type=Path, help="the data root (DATASET.ROOT)")
    parser.add_argument("--dataset", default="all",
                        help="config name (eurosat) or class name (EuroSAT), or all (default)")
    parser.add_argument("--download", action="store_true",
                        help="fetch and lay out what is public and missing")
    args = parser.parse_args(argv)
    root = Path(os.path.abspath(os.path.expanduser(str(args.root))))
    specs = SPECS if args.dataset.lower() == "all" else (find_spec(args.dataset),)
    print(f"Data root: {root}\n")
    absent = []
    if args.dataset.lower() == "all" and not args.download:
        # A survey: a root usually holds the few data sets its user works on. Those without a
        # folder get one line, not fifteen "NOT READY" reports, and do not fail the check.
        absent = [spec for spec in specs if not (root / spec.folder).is_dir()]
        if len(absent) < len(specs):
            specs = tuple(spec for spec in specs if spec not in absent)
        else:
            absent = []
    ready = []
    for spec in specs:
        if args.download:
            try:
                prepare(spec, root)
            except PrepareError as error:
                print(f"   FAILED: {error}")
        ready.append(report(spec, root))
        print()
    done = [spec.name for spec, ok in zip(specs, ready) if ok]
    todo = [spec.name for spec, ok in zip(specs, ready) if not ok]
    print(f"Ready: {', '.join(done) or 'none'}")
    print(f"Not ready: {', '.join(todo) or 'none'}")
    if absent:
        print(f"Not present (no folder, not checked): {', '.join(s.name for s in absent)}")
        print(f"Check or fetch one: python tools/prepare_data.py --root {root} --dataset NAME "
              "[--download]")
    return 0 if all(ready) else 1


if __name__ == "__main__":
    from study.entry import run_main

    sys.exit(run_main(main))
