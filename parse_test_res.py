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

Walks the output root, finds every ``seed<k>`` run folder and prints one table per layout found:

    few-shot   <dataset>/<trainer>/<init>/<cfg>_<shots>shots[_<tag>]/seed<k>
    dg         evaluation/<target_dataset>/<trainer>/<init>/<cfg>_<shots>shots[_<tag>]/seed<k>
    base2new   base2new/{train_base,test_new}/<dataset>/shots_<K>/<trainer>/<init>/<cfg>/seed<k>

Few-shot and dg tables: rows are init x shots (grouped by init in the order random, same, diff,
then other methods; shots descending), columns are datasets, cells ``mean +- std (n seeds)``.
The base-to-new table has one row per dataset x init x shots with columns base, new and H, where
H = 2*b*n/(b+n) is computed from the MEAN base and MEAN new values (not a mean of per-seed H).
``--plot FILE.png`` draws the few-shot table: accuracy against shots, one panel per dataset, one
line per init with std (or ci95) error bars. With ``--format csv`` and several tables, each table
is preceded by a ``# <title>`` row and a blank line separates them; pick one with ``--table``.

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

Exit status: 0 when at least one complete run was found, 1 when none was, 2 for usage errors.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence, TextIO

# ---- Markers Dassl writes into log.txt (exact text) ------------------------------------------
FINISH_TRAINING = "Finish training"
RESULT_HEADER = "=> result"
TRACEBACK_START = "Traceback (most recent call last):"
# Lines only a training run prints: tells a training log from an eval-only one.
TRAINING_MARKERS = ("epoch [", "Initialize tensorboard")

LOG_NAME = "log.txt"
RESULT_JSON_NAME = "result.json"
RESULT_JSON_FORMAT = "dapt_init.result/1"
# result.json names some metrics differently from the log lines.
JSON_METRIC_FOR_KEYWORD = {"error": "error_rate"}
# Dassl prints metrics with one decimal, so a log value may differ from result.json by 0.05.
LOG_ROUNDING_TOLERANCE = 0.05 + 1e-9

SEED_DIR = re.compile(r"seed(\d+)$")
# "<cfg>_<shots>shots", or with the scripts' TAG "<cfg>_<shots>shots_<tag>": the tag joins the
# config name, so runs of different tags are never pooled.
SHOTS_DIR = re.compile(r"(.+)_(\d+)shots(?:_([A-Za-z0-9][A-Za-z0-9._-]*))?$")
BASE2NEW_SHOTS_DIR = re.compile(r"shots_(\d+)$")
BASE2NEW_SPLITS = {"train_base": "base", "test_new": "new"}
INIT_ORDER = ("random", "same", "diff")

# The 15 CoOp datasets, in column order: (folder name used by the scripts, display name).
KNOWN_DATASETS = (
    ("eurosat", "EuroSAT"),
    ("oxford_pets", "OxfordPets"),
    ("food101", "Food101"),
    ("fgvc_aircraft", "FGVCAircraft"),
    ("dtd", "DTD"),
    ("caltech101", "Caltech101"),
    ("stanford_cars", "StanfordCars"),
    ("oxford_flowers", "OxfordFlowers"),
    ("sun397", "SUN397"),
    ("ucf101", "UCF101"),
    ("imagenet", "ImageNet"),
    ("imagenetv2", "ImageNetV2"),
    ("imagenet_sketch", "ImageNetSketch"),
    ("imagenet_a", "ImageNetA"),
    ("imagenet_r", "ImageNetR"),
)
FORMATS = ("plain", "github", "csv", "latex")
TABLE_KINDS = ("fewshot", "dg", "base2new")


# ---- Numbers ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Summary:
    """Mean and population std of one metric over seeds."""

    mean: float
    std: float
    n: int

    @property
    def ci95(self) -> float:
        return 1.96 * self.std / math.sqrt(self.n)

    def spread(self, use_ci95: bool) -> float:
        return self.ci95 if use_ci95 else self.std


def summarize(values: Sequence[float]) -> Summary:
    """Mean and population std (ddof=0, like np.std) of a non-empty sequence."""
    n = len(values)
    mean = sum(values) / n
    variance = sum((value - mean) ** 2 for value in values) / n
    return Summary(mean=mean, std=math.sqrt(variance), n=n)


def harmonic_mean(base: float, new: float) -> float:
    """H of base-to-new generalisation; 0 when both are 0."""
    return 2 * base * new / (base + new) if base + new else 0.0


def parse_metric_value(text: str) -> float | None:
    """'91.1%' or '2,700' -> float; None for anything non-numeric or non-finite (nan, inf)."""
    cleaned = text.strip().removesuffix("%").replace(",", "").strip()
    try:
        value = float(cleaned)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# ---- One log file ----------------------------------------------------------------------------
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


# ---- One run folder --------------------------------------------------------------------------
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
    path = run_dir / RESULT_JSON_NAME
    if not path.is_file():
        return None, None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        return None, f"{RESULT_JSON_NAME} unreadable ({error}); used the log"
    if not isinstance(record, dict) or record.get("format") != RESULT_JSON_FORMAT:
        return None, f"{RESULT_JSON_NAME} is not '{RESULT_JSON_FORMAT}'; used the log"
    metrics = record.get("metrics")
    metric_name = JSON_METRIC_FOR_KEYWORD.get(keyword, keyword)
    if not isinstance(metrics, dict) or metric_name not in metrics:
        return None, None
    raw_value = metrics[metric_name]
    value = parse_metric_value(str(raw_value)) if not isinstance(raw_value, bool) else None
    if value is None:
        return None, f"{RESULT_JSON_NAME} has non-numeric {metric_name} {raw_value!r}; used the log"
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
        notes.append(f"{RESULT_JSON_NAME} says {json_value:g}, {from_log.source.name} says "
                     f"{from_log.value:g}; used {RESULT_JSON_NAME}")
    if not from_log.complete:
        notes.append(f"used {RESULT_JSON_NAME}; the log has no usable result "
                     f"({from_log.skip_reason})")
    return RunOutcome(run_dir, value=json_value, source=run_dir / RESULT_JSON_NAME, notes=notes)


# ---- Directory mode (CoOp-compatible) --------------------------------------------------------
def natural_key(name: str) -> list[object]:
    """seed2 before seed10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def subfolders(directory: Path) -> list[Path]:
    """Non-hidden sub-folders in natural order."""
    children = [child for child in directory.iterdir()
                if child.is_dir() and not child.name.startswith(".")]
    return sorted(children, key=lambda child: natural_key(child.name))


def run_folders_of(directory: Path) -> list[Path]:
    """The seed folders of an experiment; the folder itself when it is a run folder."""
    if log_files_newest_first(directory) or (directory / RESULT_JSON_NAME).is_file():
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


# ---- Study mode: finding runs ----------------------------------------------------------------
class LayoutError(ValueError):
    """A run folder whose path matches none of the known layouts."""


@dataclass(frozen=True)
class RunKey:
    """Where a run sits in the study, read from its path."""

    kind: str  # "fewshot", "dg" or "base2new"
    dataset: str  # folder name
    trainer: str
    init: str | None  # None when the path has no init level (other trainers)
    config: str
    extra: str  # folders between the config folder and the seed folder, '/'-joined
    shots: int
    seed: int
    split: str | None = None  # "base" or "new" for base2new


def find_seed_folders(root: Path) -> list[Path]:
    """Every 'seed<k>' folder under root (not descending into them), in natural order."""
    found = []
    for folder, child_names, _ in os.walk(root):
        child_names[:] = sorted((name for name in child_names if not name.startswith(".")),
                                key=natural_key)
        for name in [name for name in child_names if SEED_DIR.match(name)]:
            found.append(Path(folder) / name)
            child_names.remove(name)
    return sorted(found, key=lambda path: [natural_key(part) for part in path.parts])


def parse_run_path(relative_parts: Sequence[str]) -> RunKey:
    """RunKey from a seed folder's path relative to the output root (raises LayoutError)."""
    *parents, seed_folder = relative_parts
    seed = int(SEED_DIR.match(seed_folder).group(1))
    if len(parents) >= 2 and parents[0] == "base2new" and parents[1] in BASE2NEW_SPLITS:
        return parse_base2new_path(parents[2:], BASE2NEW_SPLITS[parents[1]], seed)
    if parents and parents[0] == "evaluation":
        return parse_fewshot_path(parents[1:], "dg", seed)
    return parse_fewshot_path(parents, "fewshot", seed)


def parse_fewshot_path(parts: Sequence[str], kind: str, seed: int) -> RunKey:
    """<dataset>/<trainer>/[<init>/]<cfg>_<shots>shots/[<extra>/]"""
    shots_index = next((index for index, part in enumerate(parts)
                        if index >= 2 and SHOTS_DIR.match(part)), None)
    if shots_index is None:
        raise LayoutError("expected <dataset>/<trainer>/[<init>/]<cfg>_<N>shots/.../seed<k>")
    config, shots, tag = SHOTS_DIR.match(parts[shots_index]).groups()
    config = f"{config}_{tag}" if tag else config
    return RunKey(kind=kind, dataset=parts[0], trainer=parts[1],
                  init="/".join(parts[2:shots_index]) or None, config=config,
                  extra="/".join(parts[shots_index + 1:]), shots=int(shots), seed=seed)


def parse_base2new_path(parts: Sequence[str], split: str, seed: int) -> RunKey:
    """<dataset>/shots_<K>/<trainer>/[<init>/]<cfg>/[<extra>/]"""
    if len(parts) < 4 or not BASE2NEW_SHOTS_DIR.match(parts[1]):
        raise LayoutError("expected base2new/<split>/<dataset>/shots_<K>/<trainer>/"
                          "[<init>/]<cfg>/seed<k>")
    shots = int(BASE2NEW_SHOTS_DIR.match(parts[1]).group(1))
    after_trainer = parts[3:]
    init = after_trainer[0] if len(after_trainer) >= 2 else None
    config = after_trainer[1] if len(after_trainer) >= 2 else after_trainer[0]
    return RunKey(kind="base2new", dataset=parts[0], trainer=parts[2], init=init, config=config,
                  extra="/".join(after_trainer[2:]), shots=shots, seed=seed, split=split)


@dataclass
class StudyRun:
    key: RunKey
    outcome: RunOutcome


def collect_study(root: Path, keyword: str,
                  test_log: bool) -> tuple[list[StudyRun], list[tuple[str, RunOutcome]]]:
    """(runs placed in the study, every outcome with its path relative to root for reporting)."""
    runs: list[StudyRun] = []
    named_outcomes: list[tuple[str, RunOutcome]] = []
    for seed_folder in find_seed_folders(root):
        relative = seed_folder.relative_to(root)
        try:
            key = parse_run_path(relative.parts)
        except LayoutError as error:
            outcome = RunOutcome(seed_folder, skip_reason=f"path matches no layout: {error}")
        else:
            outcome = read_run(seed_folder, keyword, test_log)
            runs.append(StudyRun(key, outcome))
        named_outcomes.append((relative.as_posix(), outcome))
    return runs, named_outcomes


# ---- Study mode: row labels ------------------------------------------------------------------
@dataclass(frozen=True)
class Method:
    """A table row group: its label and where it sorts (random, same, diff, then the rest)."""

    label: str
    sort_key: tuple


def init_rank(name: str | None) -> int:
    return INIT_ORDER.index(name) if name in INIT_ORDER else len(INIT_ORDER)


def label_methods(keys: Iterable[RunKey]) -> dict[RunKey, Method]:
    """Row label of every run (keyed by its RunKey with seed 0); see 'Path leniency'."""
    variants = {replace(key, seed=0, split=None) for key in keys}
    trainers_with_init = {key.trainer for key in variants if key.init is not None}
    prefix_trainer = len(trainers_with_init) > 1
    base_labels = {variant: base_method_label(variant, prefix_trainer) for variant in variants}
    configs_per_cell = defaultdict(set)
    for variant, label in base_labels.items():
        configs_per_cell[(variant.kind, variant.dataset, label, variant.shots)].add(variant.config)
    methods = {}
    for variant, label in base_labels.items():
        mixed = len(configs_per_cell[(variant.kind, variant.dataset, label, variant.shots)]) > 1
        full_label = f"{label} [{variant.config}]" if mixed else label
        group = variant.trainer if (prefix_trainer or variant.init is None) else ""
        sort_key = (group, init_rank(variant.init), variant.init or "", variant.extra,
                    variant.config if mixed else "")
        methods[variant] = Method(full_label, sort_key)
    return methods


def base_method_label(key: RunKey, prefix_trainer: bool) -> str:
    parts = [key.trainer] if (key.init is None or prefix_trainer) else []
    parts += [part for part in (key.init, key.extra) if part]
    return "/".join(parts)


def method_of(key: RunKey, methods: dict[RunKey, Method]) -> Method:
    return methods[replace(key, seed=0, split=None)]


# ---- Study mode: tables ----------------------------------------------------------------------
def normalized_dataset(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


DISPLAY_NAME_BY_NORMALIZED = {normalized_dataset(folder): display
                              for folder, display in KNOWN_DATASETS}
DATASET_RANK = {normalized_dataset(folder): rank
                for rank, (folder, _) in enumerate(KNOWN_DATASETS)}


def dataset_display_name(folder: str) -> str:
    """'oxford_pets' -> 'OxfordPets'; unknown folders keep their name."""
    return DISPLAY_NAME_BY_NORMALIZED.get(normalized_dataset(folder), folder)


def dataset_sort_key(folder: str) -> tuple[int, str]:
    return DATASET_RANK.get(normalized_dataset(folder), len(KNOWN_DATASETS)), folder


@dataclass
class GridTable:
    """Rows method x shots, columns datasets, cells the values of the seeds."""

    title: str
    rows: list[tuple[Method, int]]
    datasets: list[str]
    values: dict[tuple[str, int, str], list[float]]  # (method label, shots, dataset) -> values

    def summary(self, method: Method, shots: int, dataset: str) -> Summary | None:
        values = self.values.get((method.label, shots, dataset))
        return summarize(values) if values else None


def build_grid_table(runs: Sequence[StudyRun], kind: str, title: str,
                     methods: dict[RunKey, Method]) -> GridTable:
    values: dict[tuple[str, int, str], list[float]] = defaultdict(list)
    rows: set[tuple[Method, int]] = set()
    datasets: set[str] = set()
    for run in runs:
        if run.key.kind != kind or not run.outcome.complete:
            continue
        method = method_of(run.key, methods)
        values[(method.label, run.key.shots, run.key.dataset)].append(run.outcome.value)
        rows.add((method, run.key.shots))
        datasets.add(run.key.dataset)
    ordered_rows = sorted(rows, key=lambda row: (row[0].sort_key, row[0].label, -row[1]))
    return GridTable(title, ordered_rows, sorted(datasets, key=dataset_sort_key), dict(values))


@dataclass
class TextTable:
    """A table ready to render: headers and rows of strings."""

    title: str
    headers: list[str]
    rows: list[list[str]]


def format_cell(summary: Summary | None, use_ci95: bool, table_format: str) -> str:
    """'mean +- spread (n)'; '-' for an empty cell."""
    if summary is None:
        return "-"
    plus_minus = r"$\pm$" if table_format == "latex" else "+-"
    return f"{summary.mean:.2f} {plus_minus} {summary.spread(use_ci95):.2f} ({summary.n})"


def grid_text_table(table: GridTable, use_ci95: bool, table_format: str) -> TextTable:
    headers = ["init", "shots"] + [dataset_display_name(name) for name in table.datasets]
    rows = [[method.label, str(shots)]
            + [format_cell(table.summary(method, shots, dataset), use_ci95, table_format)
               for dataset in table.datasets]
            for method, shots in table.rows]
    return TextTable(table.title, headers, rows)


def base2new_text_table(runs: Sequence[StudyRun], methods: dict[RunKey, Method], title: str,
                        use_ci95: bool, table_format: str) -> TextTable:
    """One row per dataset x method x shots: base, new, H (H from the mean base and new)."""
    values: dict[tuple[str, Method, int], dict[str, list[float]]] = defaultdict(
        lambda: {"base": [], "new": []})
    for run in runs:
        if run.key.kind == "base2new" and run.outcome.complete:
            row = (run.key.dataset, method_of(run.key, methods), run.key.shots)
            values[row][run.key.split].append(run.outcome.value)
    ordered = sorted(values, key=lambda row: (dataset_sort_key(row[0]), row[1].sort_key,
                                              row[1].label, -row[2]))
    rows = []
    for dataset, method, shots in ordered:
        by_split = values[(dataset, method, shots)]
        base, new = (summarize(by_split[split]) if by_split[split] else None
                     for split in ("base", "new"))
        harmonic = (f"{harmonic_mean(base.mean, new.mean):.2f}"
                    if base is not None and new is not None else "-")
        rows.append([dataset_display_name(dataset), method.label, str(shots),
                     format_cell(base, use_ci95, table_format),
                     format_cell(new, use_ci95, table_format), harmonic])
    return TextTable(title, ["dataset", "init", "shots", "base", "new", "H"], rows)


# ---- Study mode: rendering -------------------------------------------------------------------
LATEX_SPECIALS = re.compile(r"([_%&#{}])")


def latex_escaped(text: str) -> str:
    return LATEX_SPECIALS.sub(r"\\\1", text)


def render_table(table: TextTable, table_format: str) -> str:
    if table_format == "csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([table.headers] + table.rows)
        return buffer.getvalue().rstrip("\n")
    from tabulate import tabulate

    headers, rows = table.headers, table.rows
    if table_format == "latex":
        # Cells carry $\pm$, so render raw and escape the names ourselves.
        headers = [latex_escaped(header) for header in headers]
        rows = [[latex_escaped(row[0])] + row[1:] for row in rows]
    tablefmt = {"plain": "simple", "github": "github", "latex": "latex_raw"}[table_format]
    return tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True)


def print_tables(tables: Sequence[TextTable], table_format: str) -> None:
    """Titles as plain lines, or as '# title' rows in CSV when there are several tables."""
    for index, table in enumerate(tables):
        if index:
            print()
        if table_format != "csv":
            print(table.title)
        elif len(tables) > 1:
            print(f"# {table.title}")
        print(render_table(table, table_format))


# ---- Study mode: plot ------------------------------------------------------------------------
def plot_grid_table(table: GridTable, path: Path, use_ci95: bool, keyword: str) -> None:
    """Accuracy against shots, one panel per dataset, one line per method with error bars."""
    import matplotlib

    matplotlib.use("Agg")  # a file, no display needed
    import matplotlib.pyplot as plt

    columns = min(len(table.datasets), 3)
    panel_rows = math.ceil(len(table.datasets) / columns)
    figure, axes = plt.subplots(panel_rows, columns, figsize=(4.5 * columns, 3.5 * panel_rows),
                                squeeze=False)
    methods = list(dict.fromkeys(method for method, _ in table.rows))
    # One colour per method in every panel, even where a method has no points.
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, dataset in zip(axes.flat, table.datasets):
        for index, method in enumerate(methods):
            points = plot_points(table, method, dataset, use_ci95)
            if points:
                shots, means, spreads = zip(*points)
                axis.errorbar(shots, means, yerr=spreads, marker="o", capsize=3,
                              label=method.label, color=palette[index % len(palette)])
        axis.set_xscale("log", base=2)
        all_shots = sorted({shots for _, shots in table.rows})
        axis.set_xticks(all_shots, [str(shots) for shots in all_shots])
        axis.set_title(dataset_display_name(dataset))
        axis.set_xlabel("shots per class")
        axis.set_ylabel(f"{keyword} (%)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    for axis in list(axes.flat)[len(table.datasets):]:
        axis.set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def plot_points(table: GridTable, method: Method, dataset: str,
                use_ci95: bool) -> list[tuple[int, float, float]]:
    """(shots, mean, spread) in increasing shots for one line of the plot."""
    points = []
    for shots in sorted({shots for row_method, shots in table.rows if row_method == method}):
        summary = table.summary(method, shots, dataset)
        if summary is not None:
            points.append((shots, summary.mean, summary.spread(use_ci95)))
    return points


# ---- Study mode: driver ----------------------------------------------------------------------
def table_titles(keyword: str, use_ci95: bool) -> dict[str, str]:
    cell = f"mean +- {'ci95' if use_ci95 else 'std'} (n seeds)"
    return {
        "fewshot": f"Few-shot: test {keyword} (%), {cell}",
        "dg": f"Domain generalisation (target datasets): test {keyword} (%), {cell}",
        "base2new": f"Base-to-new: {keyword} (%), {cell}; H = harmonic mean of mean base "
                    f"and mean new",
    }


def run_study_mode(options: argparse.Namespace) -> int:
    root: Path = options.directory
    runs, named_outcomes = collect_study(root, options.keyword, options.test_log)
    methods = label_methods(run.key for run in runs)
    titles = table_titles(options.keyword, options.ci95)
    table_format = options.format or "plain"
    grids = {kind: build_grid_table(runs, kind, titles[kind], methods)
             for kind in ("fewshot", "dg")}
    tables = {kind: grid_text_table(grid, options.ci95, table_format)
              for kind, grid in grids.items()}
    tables["base2new"] = base2new_text_table(runs, methods, titles["base2new"], options.ci95,
                                             table_format)
    wanted = [options.table] if options.table else list(TABLE_KINDS)
    print_tables([tables[kind] for kind in wanted if tables[kind].rows], table_format)
    if options.plot:
        plot_if_possible(grids["fewshot"], options)
    report_problems(named_outcomes)
    complete = sum(outcome.complete for _, outcome in named_outcomes)
    print(f"{complete} complete runs, {len(named_outcomes) - complete} skipped, under {root}",
          file=sys.stderr)
    return exit_status(outcome for _, outcome in named_outcomes)


def plot_if_possible(fewshot: GridTable, options: argparse.Namespace) -> None:
    if not fewshot.rows:
        print(f"No few-shot results: {options.plot} not written.", file=sys.stderr)
        return
    try:
        plot_grid_table(fewshot, options.plot, options.ci95, options.keyword)
    except (ImportError, OSError, ValueError) as error:
        # The tables are printed already; a failed plot does not change the exit status.
        print(f"Cannot write the plot {options.plot}: {error}", file=sys.stderr)
        return
    print(f"Plot written to {options.plot}", file=sys.stderr)


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
    return parser


def check_options(parser: argparse.ArgumentParser, options: argparse.Namespace) -> None:
    """Usage errors exit with status 2 before anything is read."""
    if options.format == "markdown":
        options.format = "github"
    if not options.study:
        for name in ("format", "table", "plot"):
            if getattr(options, name) is not None:
                parser.error(f"--{name} needs --study")
    elif options.multi_exp:
        parser.error("--multi-exp and --study do not go together: --study finds every "
                     "experiment itself")
    if not options.directory.is_dir():
        parser.error(f"not a folder: {options.directory}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    options = parser.parse_args(argv)
    check_options(parser, options)
    return run_study_mode(options) if options.study else run_directory_mode(options)


if __name__ == "__main__":
    sys.exit(main())
