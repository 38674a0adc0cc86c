"""CoOp's directory mode: DIR holds seed folders (or, with --multi-exp, experiments of seed
folders); one line per run, then ``* accuracy: MEAN% +- STD% (n=N)`` as CoOp prints it."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from study.run_read import RESULT_FILE

from .logs import log_files_newest_first, subfolders
from .numbers import Summary, summarize
from .outcomes import RunOutcome, exit_status, read_run, report_problems


def run_folders_of(directory: Path) -> list[Path]:
    """The seed folders of an experiment; the folder itself when it is a run folder."""
    if log_files_newest_first(directory) or (directory / RESULT_FILE).is_file():
        return [directory]
    return subfolders(directory)


def summarize_directory(directory: Path, options: argparse.Namespace,
                        out: TextIO) -> tuple[list[RunOutcome], Summary | None]:
    """Print CoOp's per-run lines and summary for one experiment folder."""
    keyword = options.keyword
    print(f"Parsing files in {directory}", file=out)
    outcomes = [read_run(run_dir, keyword, options.test_log)
                for run_dir in run_folders_of(directory)]
    complete = [outcome for outcome in outcomes if outcome.complete]
    for outcome in complete:
        print(f"file: {outcome.source}. {keyword}: {outcome.value:.2f}%.", file=out)
    summary = summarize([outcome.value for outcome in complete]) if complete else None
    print("===", file=out)
    print(f"Summary of directory: {directory}", file=out)
    if summary is None:
        print(f"* {keyword}: no complete run", file=out)
    else:
        spread = summary.spread(options.ci95)
        print(f"* {keyword}: {summary.mean:.2f}% +- {spread:.2f}% (n={summary.n})", file=out)
    print("===", file=out)
    return outcomes, summary


def run_directory_mode(options: argparse.Namespace) -> int:
    directory: Path = options.directory
    experiments = subfolders(directory) if options.multi_exp else [directory]
    outcomes: list[RunOutcome] = []
    experiment_means: list[float] = []
    for experiment in experiments:
        experiment_outcomes, summary = summarize_directory(experiment, options, sys.stdout)
        outcomes += experiment_outcomes
        if summary is not None:
            experiment_means.append(summary.mean)
    if options.multi_exp:
        print("Average performance")
        if experiment_means:
            average = sum(experiment_means) / len(experiment_means)
            print(f"* {options.keyword}: {average:.2f}% (over {len(experiment_means)} experiments)")
        else:
            print(f"* {options.keyword}: no complete experiment")
    report_problems([(str(outcome.run_dir), outcome) for outcome in outcomes])
    return exit_status(outcomes)
