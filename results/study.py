"""Every run of an output root placed in the study (study/run_read.py: its recorded spec,
else its folder names), its outcome, and whether it was made with the published recipe (what
a --reference compares it with, and what Table 1 marks)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from study.run import RunKey, find_run_folders
from study.run_read import read_run_folder, unpublished_setting

from .outcomes import RunOutcome, read_run

NOT_AS_PUBLISHED = "not as published"  # the column that says why, beside a --reference


@dataclass
class StudyRun:
    key: RunKey
    outcome: RunOutcome
    unpublished: tuple[str, ...] = ()  # unpublished_setting(): empty for the published recipe


def collect_study(root: Path, keyword: str,
                  test_log: bool) -> tuple[list[StudyRun], list[tuple[str, RunOutcome]]]:
    """(runs placed in the study, every outcome with its path relative to root for reporting).
    Two folders recording the same run (one key) count once: the first, with a note naming
    both."""
    runs: list[StudyRun] = []
    named_outcomes: list[tuple[str, RunOutcome]] = []
    first_of: dict[RunKey, tuple[str, RunOutcome]] = {}
    for seed_folder in find_run_folders(root):
        relative = seed_folder.relative_to(root).as_posix()
        folder = read_run_folder(root, seed_folder)
        if folder.key is None:
            outcome = RunOutcome(seed_folder, skip_reason=folder.unplaced, notes=folder.notes)
        elif folder.key in first_of:
            first_name, first = first_of[folder.key]
            outcome = RunOutcome(seed_folder, notes=folder.notes,
                                 skip_reason=f"records the same run as {first_name}; counted "
                                             "once")
            first.notes.append(f"{relative} records the same run; counted once")
        else:
            outcome = read_run(seed_folder, keyword, test_log)
            outcome.notes[:0] = folder.notes
            first_of[folder.key] = (relative, outcome)
            runs.append(StudyRun(folder.key, outcome,
                                 unpublished_setting(folder.record, folder.key)))
        named_outcomes.append((relative, outcome))
    return runs, named_outcomes
