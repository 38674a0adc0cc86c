"""One run folder: its value (``result.json`` when it holds the metric, else the newest log
with a final result) or why it has none; and the Skipped / Notes report on stderr."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from study.run_read import (RESULT_FILE, accuracy_problem, metric_of, read_record,
                            record_format_problem)

from .logs import LOG_NAME, LogScan, log_files_newest_first, scan_log, subfolders
from .numbers import parse_metric_value

# result.json names some metrics differently from the log lines.
JSON_METRIC_FOR_KEYWORD = {"error": "error_rate"}
# Dassl prints metrics with one decimal, so a log value may differ from result.json by 0.05.
LOG_ROUNDING_TOLERANCE = 0.05 + 1e-9


@dataclass
class RunOutcome:
    """The result of one run folder, or why it has none."""

    run_dir: Path
    value: float | None = None
    source: Path | None = None  # the file the value was read from
    skip_reason: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.value is not None


def outcome_from_logs(run_dir: Path, keyword: str, test_log: bool) -> RunOutcome:
    """Value of the newest log holding a final result, or why there is none."""
    logs = log_files_newest_first(run_dir)
    if not logs:
        return RunOutcome(run_dir, skip_reason=f"missing {LOG_NAME}{multi_exp_hint(run_dir)}")
    scans = [scan_log(path, keyword, test_log) for path in logs]
    with_result = next((scan for scan in scans if scan.final_values), None)
    if with_result is None:
        return RunOutcome(run_dir, skip_reason=reason_without_result(scans[0], keyword))
    return outcome_from_scan(run_dir, with_result, keyword)


def outcome_from_scan(run_dir: Path, scan: LogScan, keyword: str) -> RunOutcome:
    raw_value = scan.final_values[-1]
    notes = []
    if len(scan.final_values) > 1:
        notes.append(f"{len(scan.final_values)} final '{keyword}' results in {scan.path.name}; "
                     f"used the last ({raw_value})")
    value = parse_metric_value(raw_value)
    if value is None:
        return RunOutcome(run_dir, source=scan.path, notes=notes,
                          skip_reason=f"non-numeric {keyword} {raw_value!r} in {scan.path.name}")
    problem = accuracy_problem(value, keyword)
    if problem:  # every metric the parser reads is a percentage ('* K: VALUE%')
        return RunOutcome(run_dir, source=scan.path, notes=notes,
                          skip_reason=f"{problem} in {scan.path.name}")
    return RunOutcome(run_dir, value=value, source=scan.path, notes=notes)


def reason_without_result(newest: LogScan, keyword: str) -> str:
    name = newest.path.name
    if newest.read_error is not None:
        return f"cannot read {name} ({newest.read_error})"
    if newest.crash is not None:
        return f"crashed ({newest.crash}) in {name}"
    if newest.finished_training:
        return f"training finished but no test '{keyword}' result followed in {name}"
    if newest.is_training_log:
        return f"in progress: training not finished in {name}"
    return f"in progress or empty: no '{keyword}' result in {name}"


def multi_exp_hint(run_dir: Path) -> str:
    """A hint when a folder without logs holds run folders itself."""
    if run_dir.is_dir() and any(log_files_newest_first(child) for child in subfolders(run_dir)):
        return " (it holds run folders: did you mean --multi-exp or --study?)"
    return ""


def value_from_result_json(run_dir: Path, keyword: str) -> tuple[float | None, str | None]:
    """(value, None), (None, None) when there is no usable file or metric, or (None, note)."""
    record, problem = read_record(run_dir)
    if record is None:
        return None, f"{problem}; used the log" if problem else None
    if record_format_problem(record):
        return None, f"{record_format_problem(record)}; used the log"
    metric_name = JSON_METRIC_FOR_KEYWORD.get(keyword, keyword)
    value, problem = metric_of(record, metric_name)
    if problem.startswith("no metrics."):  # nothing recorded: the log is the source
        return None, None
    if value is None:
        return None, f"{RESULT_FILE} has {problem}; used the log"
    return value, None


def read_run(run_dir: Path, keyword: str = "accuracy", test_log: bool = False) -> RunOutcome:
    """The result of one run folder: result.json when it holds the metric, else its logs."""
    from_log = outcome_from_logs(run_dir, keyword, test_log)
    json_value, json_note = value_from_result_json(run_dir, keyword)
    if json_note:
        from_log.notes.append(json_note)
    if json_value is None:
        return from_log
    notes = list(from_log.notes)
    if from_log.complete and abs(from_log.value - json_value) > LOG_ROUNDING_TOLERANCE:
        notes.append(f"{RESULT_FILE} says {json_value:g}, {from_log.source.name} says "
                     f"{from_log.value:g}; used {RESULT_FILE}")
    if not from_log.complete:
        notes.append(f"used {RESULT_FILE}; the log has no usable result "
                     f"({from_log.skip_reason})")
    return RunOutcome(run_dir, value=json_value, source=run_dir / RESULT_FILE, notes=notes)


def report_problems(named_outcomes: Sequence[tuple[str, RunOutcome]]) -> None:
    """The 'Skipped' and 'Notes' sections, on stderr so that stdout holds only results."""
    skipped = [(name, outcome.skip_reason) for name, outcome in named_outcomes
               if outcome.skip_reason]
    notes = [(name, note) for name, outcome in named_outcomes for note in outcome.notes]
    sys.stdout.flush()
    for title, entries in (("Skipped", skipped), ("Notes", notes)):
        if entries:
            print(f"{title} ({len(entries)}):", file=sys.stderr)
            for name, text in entries:
                print(f"  {name}: {text}", file=sys.stderr)


def exit_status(outcomes: Iterable[RunOutcome]) -> int:
    if any(outcome.complete for outcome in outcomes):
        return 0
    print("Nothing complete found.", file=sys.stderr)
    return 1
