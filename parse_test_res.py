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
import csv
import io
import json
import math
import os
import re
import sys
import tempfile
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
# "<cfg>_<shots>shots" or, for runs given a TAG by the scripts, "<cfg>_<shots>shots_<TAG>".
SHOTS_DIR = re.compile(r"(.+?)_(\d+)shots(?:_(.+))?$")
# "<init>_vis-<visinit>": the scripts' init folder when the visual init is not random.
VIS_INIT_DIR = re.compile(r"(.+)_vis-([^/]+)$")
DEFAULT_VIS_INIT = "random"
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
    vis_init: str | None = None  # from "<init>_vis-<v>" or result.json; None: not recorded
    tag: str = ""  # the scripts' TAG ("<cfg>_<shots>shots_<TAG>"); "" when none


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
    init, vis_init = split_vis_init("/".join(parts[2:shots_index]) or None)
    return RunKey(kind=kind, dataset=parts[0], trainer=parts[1], init=init, config=config,
                  extra="/".join(parts[shots_index + 1:]), shots=int(shots), seed=seed,
                  vis_init=vis_init, tag=tag or "")


def split_vis_init(init: str | None) -> tuple[str | None, str | None]:
    """'diff_vis-same' -> ('diff', 'same'); an init folder without the suffix -> (init, None)."""
    match = VIS_INIT_DIR.match(init) if init else None
    return (match.group(1), match.group(2)) if match else (init, None)


def parse_base2new_path(parts: Sequence[str], split: str, seed: int) -> RunKey:
    """<dataset>/shots_<K>/<trainer>/[<init>/]<cfg>/[<extra>/]"""
    if len(parts) < 4 or not BASE2NEW_SHOTS_DIR.match(parts[1]):
        raise LayoutError("expected base2new/<split>/<dataset>/shots_<K>/<trainer>/"
                          "[<init>/]<cfg>/seed<k>")
    shots = int(BASE2NEW_SHOTS_DIR.match(parts[1]).group(1))
    after_trainer = parts[3:]
    init, vis_init = split_vis_init(after_trainer[0] if len(after_trainer) >= 2 else None)
    config = after_trainer[1] if len(after_trainer) >= 2 else after_trainer[0]
    return RunKey(kind="base2new", dataset=parts[0], trainer=parts[2], init=init, config=config,
                  extra="/".join(after_trainer[2:]), shots=shots, seed=seed, split=split,
                  vis_init=vis_init)


def recorded_vis_init(run_dir: Path) -> str | None:
    """The "vis_init_method" a DAPT_Init run recorded in result.json, if any."""
    try:
        record = json.loads((run_dir / RESULT_JSON_NAME).read_text())
    except (OSError, ValueError):
        return None
    value = record.get("vis_init_method") if isinstance(record, dict) else None
    return value if isinstance(value, str) and value else None


# The published CLIP weights: the SHA-256 that clip's download URL carries for each backbone
# (clip refuses a download that does not match; tests/test_parse_test_res.py holds this table
# to clip's own). A run that recorded a local file with another hash used other weights.
PUBLISHED_CLIP_SHA256 = {
    "ViT-B/32": "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
    "ViT-B/16": "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f",
    "ViT-L/14": "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836",
    "ViT-L/14@336px": "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02",
}
TRAINER_CONFIGS = Path(__file__).resolve().parent / "configs" / "trainers"
CONFIG_MAX_EPOCH = re.compile(r"^\s*MAX_EPOCH:\s*(\d+)", re.MULTILINE)
NOT_AS_PUBLISHED = "not as published"  # the column that says why, beside a --reference


def config_max_epoch(trainer: str, config: str) -> int | None:
    """MAX_EPOCH of configs/trainers/<trainer>/<config>.yaml, when that file is here."""
    try:
        text = (TRAINER_CONFIGS / trainer / f"{config}.yaml").read_text()
    except OSError:
        return None
    found = CONFIG_MAX_EPOCH.findall(text)
    return int(found[-1]) if found else None


def unpublished_setting(run_dir: Path, key: RunKey) -> tuple[str, ...]:
    """Why a DAPT_Init run is not the published recipe its reference numbers come from: CLIP
    weights other than the backbone's published file, or other epochs than its config's.
    Read from result.json; a run without one (older runs, other trainers) says nothing."""
    try:
        record = json.loads((run_dir / RESULT_JSON_NAME).read_text())
    except (OSError, ValueError):
        return ()
    if not isinstance(record, dict):
        return ()
    reasons = []
    backbone = record.get("backbone")
    weights = (record.get("clip") or {}).get("weights") if isinstance(record.get("clip"),
                                                                      dict) else None
    if isinstance(weights, dict) and "sha256" in weights:
        if weights["sha256"] != PUBLISHED_CLIP_SHA256.get(backbone):
            reasons.append(f"not {backbone}'s published weights")
    keys = record.get("fingerprint_keys")
    epochs = keys.get("OPTIM.MAX_EPOCH") if isinstance(keys, dict) else None
    expected = config_max_epoch(key.trainer, key.config)
    if isinstance(epochs, int) and expected is not None and epochs != expected:
        reasons.append(f"{epochs} of {key.config}'s {expected} epochs")
    return tuple(reasons)


@dataclass
class StudyRun:
    key: RunKey
    outcome: RunOutcome
    unpublished: tuple[str, ...] = ()  # unpublished_setting(): empty for the published recipe


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
            recorded = recorded_vis_init(seed_folder)
            key = replace(key, vis_init=recorded or key.vis_init)
            runs.append(StudyRun(key, outcome, unpublished_setting(seed_folder, key)))
        named_outcomes.append((relative.as_posix(), outcome))
    return runs, named_outcomes


# ---- Study mode: row labels ------------------------------------------------------------------
@dataclass(frozen=True)
class Method:
    """A table row group: its label and where it sorts (random, same, diff, then the rest).

    ``init_label`` is the "init" column; ``vis`` (only when the study holds several visual
    inits) and ``tag`` are row keys of their own; ``label`` joins them (legend, lookups).
    ``init`` and ``vis_init`` are the raw values, for matching reference rows.
    """

    label: str
    sort_key: tuple
    init_label: str = ""
    vis: str | None = None
    tag: str = ""
    init: str | None = None
    vis_init: str | None = None


def init_rank(name: str | None) -> int:
    return INIT_ORDER.index(name) if name in INIT_ORDER else len(INIT_ORDER)


def effective_vis_init(key: RunKey) -> str | None:
    """A run with an init level but no recorded visual init used the default (random)."""
    return key.vis_init or (DEFAULT_VIS_INIT if key.init is not None else None)


def label_methods(keys: Iterable[RunKey]) -> dict[RunKey, Method]:
    """Row label of every run (keyed by its RunKey with seed 0); see 'Path leniency'."""
    variants = {replace(key, seed=0, split=None) for key in keys}
    trainers_with_init = {key.trainer for key in variants if key.init is not None}
    prefix_trainer = len(trainers_with_init) > 1
    show_vis = len({effective_vis_init(key) for key in variants} - {None}) > 1
    base_labels = {variant: base_method_label(variant, prefix_trainer) for variant in variants}
    configs_per_cell = defaultdict(set)
    for variant, label in base_labels.items():
        configs_per_cell[cell_of(variant, label)].add(variant.config)
    methods = {}
    for variant, label in base_labels.items():
        mixed = len(configs_per_cell[cell_of(variant, label)]) > 1
        init_label = f"{label} [{variant.config}]" if mixed else label
        vis = effective_vis_init(variant) if show_vis else None
        full_label = ", ".join([init_label] + ([f"vis {vis}"] if vis else [])
                               + ([variant.tag] if variant.tag else []))
        group = variant.trainer if (prefix_trainer or variant.init is None) else ""
        sort_key = (group, init_rank(variant.init), variant.init or "",
                    init_rank(vis), vis or "", tuple(natural_key(variant.tag)), variant.extra,
                    variant.config if mixed else "")
        methods[variant] = Method(full_label, sort_key, init_label, vis, variant.tag,
                                  variant.init, effective_vis_init(variant))
    return methods


def cell_of(variant: RunKey, label: str) -> tuple:
    return (variant.kind, variant.dataset, label, variant.shots, variant.vis_init, variant.tag)


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
    # (method label, shots) -> why some of the row's runs are not the published recipe
    unpublished: dict[tuple[str, int], set[str]] = field(default_factory=dict)

    def summary(self, method: Method, shots: int, dataset: str) -> Summary | None:
        values = self.values.get((method.label, shots, dataset))
        return summarize(values) if values else None


def build_grid_table(runs: Sequence[StudyRun], kind: str, title: str,
                     methods: dict[RunKey, Method]) -> GridTable:
    values: dict[tuple[str, int, str], list[float]] = defaultdict(list)
    unpublished: dict[tuple[str, int], set[str]] = defaultdict(set)
    rows: set[tuple[Method, int]] = set()
    datasets: set[str] = set()
    for run in runs:
        if run.key.kind != kind or not run.outcome.complete:
            continue
        method = method_of(run.key, methods)
        values[(method.label, run.key.shots, run.key.dataset)].append(run.outcome.value)
        unpublished[(method.label, run.key.shots)].update(run.unpublished)
        rows.add((method, run.key.shots))
        datasets.add(run.key.dataset)
    # Shots ascending (1, 2, 4, 8, 16) within each method.
    ordered_rows = sorted(rows, key=lambda row: (row[0].sort_key, row[0].label, row[1]))
    return GridTable(title, ordered_rows, sorted(datasets, key=dataset_sort_key), dict(values),
                     {row: reasons for row, reasons in unpublished.items() if reasons})


# ---- Study mode: reference accuracies --------------------------------------------------------
REFERENCE_COLUMNS = ("dataset", "init", "shots")  # plus the value column: the --keyword


@dataclass(frozen=True)
class Reference:
    """Published (or other) numbers to compare with: (dataset, init, vis init, tag, shots) ->
    value, dataset normalised ('Oxford Pets', 'OxfordPets' and 'oxford_pets' are one)."""

    name: str
    path: Path
    values: dict[tuple[str, str, str, str, int], float]

    def value(self, method: Method, shots: int, dataset: str) -> float | None:
        if method.init is None:
            return None
        key = (normalized_dataset(dataset), method.init, method.vis_init or DEFAULT_VIS_INIT,
               method.tag, shots)
        return self.values.get(key)


class ReferenceError(ValueError):
    """A --reference file that cannot be used (one line: what is wrong and the fix)."""


def load_reference(spec: str, keyword: str) -> Reference:
    """``FILE.csv`` or ``NAME=FILE.csv``; columns dataset, init, shots and the metric (the
    --keyword, e.g. accuracy); optional vis_init (default random) and tag (default none).
    Lines starting with '#' are comments; other columns are ignored."""
    name, separator, file_name = spec.partition("=")
    path = Path(file_name if separator else spec)
    name = name if separator else path.stem
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise ReferenceError(f"--reference {spec}: cannot read {path} ({error.strerror}).")
    reader = csv.DictReader(line for line in lines if line.strip() and not line.startswith("#"))
    missing = [column for column in REFERENCE_COLUMNS + (keyword,)
               if column not in (reader.fieldnames or [])]
    if missing:
        raise ReferenceError(f"--reference {path}: missing column(s) {', '.join(missing)}; a "
                             f"reference CSV has columns {', '.join(REFERENCE_COLUMNS)}, "
                             f"{keyword} (optional: vis_init, tag).")
    values: dict[tuple[str, str, str, str, int], float] = {}
    for number, row in enumerate(reader, start=2):
        shots_text, value_text = (row.get("shots") or "").strip(), row.get(keyword) or ""
        value = parse_metric_value(value_text)
        if not shots_text.isdigit() or value is None:
            raise ReferenceError(f"--reference {path}: row {number} needs whole shots and a "
                                 f"numeric {keyword} (got {shots_text!r}, {value_text!r}).")
        key = (normalized_dataset(row["dataset"]), row["init"].strip(),
               (row.get("vis_init") or "").strip() or DEFAULT_VIS_INIT,
               (row.get("tag") or "").strip(), int(shots_text))
        if key in values:
            raise ReferenceError(f"--reference {path}: row {number} repeats {key[0]} "
                                 f"{key[1]} {key[4]} shots; give each setting once.")
        values[key] = value
    return Reference(name, path, values)


def reference_cells(summary: Summary | None, reference: float | None) -> list[str]:
    """Reference value, measured - reference in points and in seed standard deviations."""
    if reference is None:
        return ["-", "-", "-"]
    if summary is None:
        return [f"{reference:.2f}", "-", "-"]
    difference = summary.mean - reference
    in_std = f"{difference / summary.std:+.2f}" if summary.std > 0 else "-"
    return [f"{reference:.2f}", f"{difference:+.2f}", in_std]


def matched_cells(reference: Reference, tables: Sequence[GridTable]) -> int:
    """How many measured cells have a value of the reference beside them."""
    return sum(reference.value(method, shots, dataset) is not None
               and table.summary(method, shots, dataset) is not None
               for table in tables for method, shots in table.rows for dataset in table.datasets)


# ---- Study mode: text tables -----------------------------------------------------------------
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


def row_key_headers(methods: Iterable[Method]) -> list[str]:
    """'init', then 'vis init' and 'tag' where the rows differ in them."""
    methods = list(methods)
    return (["init"] + (["vis init"] if any(method.vis for method in methods) else [])
            + (["tag"] if any(method.tag for method in methods) else []))


def row_key_cells(method: Method, headers: Sequence[str]) -> list[str]:
    cells = {"init": method.init_label, "vis init": method.vis or "-",
             "tag": method.tag or "-"}
    return [cells[header] for header in headers]


def grid_text_table(table: GridTable, use_ci95: bool, table_format: str,
                    references: Sequence[Reference] = ()) -> TextTable:
    keys = row_key_headers(method for method, _ in table.rows)
    headers = keys + ["shots"]
    for dataset in table.datasets:
        name = dataset_display_name(dataset)
        headers.append(name)
        for reference in references:
            headers += [f"{name} {reference.name}", f"{name} - {reference.name} (pt)",
                        f"{name} - {reference.name} (std)"]
    rows = []
    for method, shots in table.rows:
        row = row_key_cells(method, keys) + [str(shots)]
        for dataset in table.datasets:
            summary = table.summary(method, shots, dataset)
            row.append(format_cell(summary, use_ci95, table_format))
            for reference in references:
                row += reference_cells(summary, reference.value(method, shots, dataset))
        rows.append(row)
    if references and table.unpublished:
        # Beside published numbers, a trial (small CLIP, fewer epochs) must say it is one.
        headers.append(NOT_AS_PUBLISHED)
        for row, (method, shots) in zip(rows, table.rows):
            row.append("; ".join(sorted(table.unpublished.get((method.label, shots), ()))) or "-")
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
                                              row[1].label, row[2]))
    keys = row_key_headers(method for _, method, _ in ordered)
    rows = []
    for dataset, method, shots in ordered:
        by_split = values[(dataset, method, shots)]
        base, new = (summarize(by_split[split]) if by_split[split] else None
                     for split in ("base", "new"))
        harmonic = (f"{harmonic_mean(base.mean, new.mean):.2f}"
                    if base is not None and new is not None else "-")
        rows.append([dataset_display_name(dataset)] + row_key_cells(method, keys)
                    + [str(shots), format_cell(base, use_ci95, table_format),
                       format_cell(new, use_ci95, table_format), harmonic])
    return TextTable(title, ["dataset"] + keys + ["shots", "base", "new", "H"], rows)


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
        rows = [[latex_escaped(cell) if "$" not in cell else cell for cell in row]
                for row in rows]
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
DODGE_OCTAVES = 0.1  # horizontal offset between neighbouring methods, in log2(shots) units
CAPSIZE = 3  # error bar caps, points
REFERENCE_MARKERS = ("o", "s", "^", "D", "v", "P")
METRIC_RANGE = (0.0, 100.0)  # percentages: error bars are clipped to it


def dodge_factor(index: int, count: int) -> float:
    """Multiplier of the shots for method ``index`` of ``count`` (a log2 x axis): the methods
    sit side by side, centred on the shots, so their error bars never overlap."""
    step = min(DODGE_OCTAVES, 0.8 / count)  # all of them stay within 0.4 octave of the shots
    return 2.0 ** ((index - (count - 1) / 2) * step)


def clipped_error(mean: float, spread: float) -> tuple[float, float]:
    """(down, up) error bar lengths, cut at the metric's range (0 % and 100 %)."""
    low, high = METRIC_RANGE
    return max(min(spread, mean - low), 0.0), max(min(spread, high - mean), 0.0)


def draw_grid_figure(table: GridTable, use_ci95: bool, keyword: str,
                     references: Sequence[Reference] = ()) -> tuple:
    """The figure, and {(dataset, method label): [(x, mean, down, up)]} as plotted."""
    import matplotlib

    matplotlib.use("Agg")  # a file, no display needed
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    columns = min(len(table.datasets), 3)
    panel_rows = math.ceil(len(table.datasets) / columns)
    figure, axes = plt.subplots(panel_rows, columns, figsize=(4.5 * columns, 3.5 * panel_rows),
                                squeeze=False)
    methods = list(dict.fromkeys(method for method, _ in table.rows))
    # One colour per method in every panel, even where a method has no points.
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    plotted: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
    all_shots = sorted({shots for _, shots in table.rows})
    for axis, dataset in zip(axes.flat, table.datasets):
        for index, method in enumerate(methods):
            color = palette[index % len(palette)]
            factor = dodge_factor(index, len(methods))
            points = [(shots * factor, mean, *clipped_error(mean, spread))
                      for shots, mean, spread in plot_points(table, method, dataset, use_ci95)]
            if points:
                xs, means, downs, ups = zip(*points)
                unpublished = references and any(
                    (method.label, shots) in table.unpublished for method_, shots in table.rows
                    if method_ == method)
                label = f"{method.label} ({NOT_AS_PUBLISHED})" if unpublished else method.label
                axis.errorbar(xs, means, yerr=[downs, ups], marker="o", capsize=CAPSIZE,
                              label=label, color=color)
                plotted[(dataset, method.label)] = points
            for marker, reference in zip(REFERENCE_MARKERS, references):
                marks = [(shots * factor, value) for shots in all_shots
                         if (method, shots) in table.rows
                         and (value := reference.value(method, shots, dataset)) is not None]
                if marks:
                    axis.plot(*zip(*marks), linestyle="none", marker=marker, markersize=7,
                              markerfacecolor="none", markeredgecolor=color)
        axis.set_xscale("log", base=2)
        axis.set_xticks(all_shots, [str(shots) for shots in all_shots])
        axis.set_xticks([], minor=True)
        axis.set_title(dataset_display_name(dataset))
        axis.set_xlabel("shots per class")
        axis.set_ylabel(f"{keyword} (%)")
        axis.grid(alpha=0.3)
        handles, _ = axis.get_legend_handles_labels()
        handles += [Line2D([], [], linestyle="none", marker=marker, markerfacecolor="none",
                           markeredgecolor="gray", label=reference.name)
                    for marker, reference in zip(REFERENCE_MARKERS, references)]
        axis.legend(handles=handles, fontsize="small")
    for axis in list(axes.flat)[len(table.datasets):]:
        axis.set_visible(False)
    figure.tight_layout()
    return figure, plotted


def plot_grid_table(table: GridTable, path: Path, use_ci95: bool, keyword: str,
                    references: Sequence[Reference] = ()) -> None:
    """Accuracy against shots, one panel per dataset, one line per method with error bars
    (methods dodged along x, bars clipped to 0-100), references as hollow markers."""
    import matplotlib.pyplot as plt

    figure, _ = draw_grid_figure(table, use_ci95, keyword, references)
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


# ---- Study mode: is DIR an output root? ------------------------------------------------------
KNOWN_DATASET_FOLDERS = {normalized_dataset(folder) for folder, _ in KNOWN_DATASETS}
LAYOUT_TOPS = ("evaluation", "base2new")


def is_layout_top(name: str) -> bool:
    return name in LAYOUT_TOPS or normalized_dataset(name) in KNOWN_DATASET_FOLDERS


def output_root_problem(root: Path, seed_folders: Sequence[Path]) -> str | None:
    """Why DIR is not one output root, naming the folder(s) to give, or None.

    An output root holds <dataset>/, evaluation/ and base2new/ folders. When runs sit below a
    known dataset folder one or more levels down (DIR holds several output roots, or another
    tree), the table would take folder names for datasets: say which folder to give instead.
    """
    roots: list[Path] = []
    for folder in seed_folders:
        parts = folder.relative_to(root).parts[:-1]
        if not parts or is_layout_top(parts[0]):
            continue
        depth = next((index for index, part in enumerate(parts) if is_layout_top(part)), None)
        if depth is not None and root.joinpath(*parts[:depth]) not in roots:
            roots.append(root.joinpath(*parts[:depth]))
    if roots:
        if len(roots) == 1:
            return (f"{root} is not an output root: its runs are under {roots[0]}; give that "
                    f"folder to --study.")
        return (f"{root} holds {len(roots)} output roots ({', '.join(map(str, roots))}); give "
                "one of them to --study.")
    if is_layout_top(root.name) and root.name not in LAYOUT_TOPS and seed_folders:
        return (f"{root} is a dataset folder, not an output root; give its parent "
                f"{root.parent} to --study.")
    return None


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
    problem = output_root_problem(root, find_seed_folders(root))
    try:
        if problem:
            raise ReferenceError(problem)
        references = [load_reference(spec, options.keyword) for spec in options.reference]
    except ReferenceError as error:  # before any output: one line, as for usage errors
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


def plot_if_possible(fewshot: GridTable, options: argparse.Namespace,
                     references: Sequence[Reference] = ()) -> bool:
    """Draw the plot; False (one ``error:`` line printed) when it was asked for but failed."""
    if not fewshot.rows:
        print(f"No few-shot results: {options.plot} not written.", file=sys.stderr)
        return True
    try:
        plot_grid_table(fewshot, options.plot, options.ci95, options.keyword, references)
    except (ImportError, OSError, ValueError) as error:
        # The tables are printed already; the exit status still says the plot is missing.
        print(f"error: cannot write the plot {options.plot} ({error}).", file=sys.stderr)
        return False
    print(f"Plot written to {options.plot}", file=sys.stderr)
    return True


def plot_path_problem(path: Path) -> str | None:
    """Why ``--plot`` could not be written, checked before any run is read; None if it can."""
    folder = path.resolve().parent
    fix = "give --plot a path in a folder you can write to"
    if path.is_dir():
        return f"--plot {path} is a folder; {fix}, e.g. {path / 'curves.png'}"
    if not folder.is_dir():
        return f"--plot {path}: the folder {folder} does not exist or is not a folder; {fix}"
    try:  # a real write: permission bits, a read-only mount, a full disk all show here
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        return f"--plot {path}: cannot write in {folder} ({error.strerror or error}); {fix}"
    return None


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
    sys.exit(main())
