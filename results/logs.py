"""One log file: its final results, whether it trained, finished or crashed; and which log
files a run folder holds (``log.txt`` and Dassl's ``log.txt-<time>`` of resumed runs)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from study.run import natural_key

# ---- Markers Dassl writes into log.txt (exact text) ------------------------------------------
FINISH_TRAINING = "Finish training"
RESULT_HEADER = "=> result"
TRACEBACK_START = "Traceback (most recent call last):"
# Lines only a training run prints: tells a training log from an eval-only one.
TRAINING_MARKERS = ("epoch [", "Initialize tensorboard")

LOG_NAME = "log.txt"


@dataclass
class LogScan:
    """What one log file says about its run."""

    path: Path
    final_values: list[str]  # raw text of every final '* <keyword>:' value, in order
    is_training_log: bool
    finished_training: bool
    crash: str | None  # the exception line of the last traceback, if any
    read_error: str | None = None


def metric_line_pattern(keyword: str) -> re.Pattern[str]:
    return re.compile(rf"^\*\s*{re.escape(keyword)}:\s*(.*?)\s*$")


def scan_log(path: Path, keyword: str, test_log: bool) -> LogScan:
    """Collect the final results of one log (see the module docstring for 'final')."""
    try:
        # splitlines() also splits on the carriage returns of tqdm bars.
        raw_lines = path.read_text(errors="replace").splitlines()
    except OSError as error:
        return LogScan(path, [], is_training_log=False, finished_training=False, crash=None,
                       read_error=str(error))
    lines = [line.strip() for line in raw_lines]
    is_training_log = any(line.startswith(TRAINING_MARKERS) or line == FINISH_TRAINING
                          for line in lines)
    end_signal = RESULT_HEADER if (test_log or not is_training_log) else FINISH_TRAINING
    metric_line = metric_line_pattern(keyword)
    final_values: list[str] = []
    after_end_signal = False
    for line in lines:
        after_end_signal = after_end_signal or line == end_signal
        match = metric_line.match(line)
        if match and after_end_signal:
            final_values.append(match.group(1))
    return LogScan(path=path, final_values=final_values, is_training_log=is_training_log,
                   finished_training=FINISH_TRAINING in lines, crash=crash_message(raw_lines))


def crash_message(raw_lines: Sequence[str]) -> str | None:
    """The exception line ('RuntimeError: ...') of the last traceback in a log, if any."""
    starts = [index for index, line in enumerate(raw_lines) if line.strip() == TRACEBACK_START]
    if not starts:
        return None
    # Frames, source lines and carets are indented; the exception line is not.
    exception_line = next((line.strip() for line in raw_lines[starts[-1] + 1:]
                           if line.strip() and not line[0].isspace()), None)
    return exception_line or "traceback without an exception line"


def log_files_newest_first(run_dir: Path) -> list[Path]:
    """log.txt and log.txt-YYYY-MM-DD-HH-MM-SS; the time stamps sort chronologically as text
    and log.txt itself is always the first one Dassl wrote."""
    logs = [path for path in run_dir.glob(LOG_NAME + "*") if path.is_file()]
    return sorted(logs, key=lambda path: path.name, reverse=True)


def subfolders(directory: Path) -> list[Path]:
    """Non-hidden sub-folders in natural order."""
    children = [child for child in directory.iterdir()
                if child.is_dir() and not child.name.startswith(".")]
    return sorted(children, key=lambda child: natural_key(child.name))
