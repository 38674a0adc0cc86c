"""Every run of an output root placed in the study (study/run_read.py: its recorded spec,
else its folder names), its outcome, and whether it was made with the published recipe (what
a --reference compares it with, and what Table 1 marks)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from study.run import RunKey
from study.run_read import clip_sha256, read_run_folders, unpublished_setting

from .outcomes import RunOutcome, read_run

NOT_AS_PUBLISHED = "not as published"  # the column that says why, beside a --reference


@dataclass
class StudyRun:
    key: RunKey
    outcome: RunOutcome
    unpublished: tuple[str, ...] = ()  # unpublished_setting(): empty for the published recipe
    clip_sha256: str | None = None  # the CLIP weights it recorded (None: not recorded)


def collect_study(root: Path, keyword: str,
                  test_log: bool) -> tuple[list[StudyRun], list[tuple[str, RunOutcome]]]:
    """(runs placed in the study, every outcome with its path relative to root for reporting).
    Two folders recording the same run count once (study/run_read.py)."""
    runs: list[StudyRun] = []
    named_outcomes: list[tuple[str, RunOutcome]] = []
    for folder in read_run_folders(root):
        relative = folder.path.relative_to(root).as_posix()
        if folder.key is None:
            outcome = RunOutcome(folder.path, skip_reason=folder.unplaced, notes=folder.notes)
        elif folder.duplicate_of is not None:
            outcome = RunOutcome(folder.path, notes=folder.notes,
                                 skip_reason="records the same run as "
                                             f"{folder.duplicate_of.relative_to(root).as_posix()}"
                                             "; counted once")
        else:
            outcome = read_run(folder.path, keyword, test_log)
            outcome.notes[:0] = folder.notes
            runs.append(StudyRun(folder.key, outcome,
                                 unpublished_setting(folder.record, folder.key),
                                 clip_sha256(folder.record)))
        named_outcomes.append((relative, outcome))
    return runs, named_outcomes
