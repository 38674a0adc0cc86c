"""Reading run folders: what each run is (spec), how far it got, and what it measured.

A run's identity is read as the parser reads it (study/run_read.py): ``result.json``'s
``spec`` when present, else the folder layout
``<dataset>/<trainer>/<init>[_vis-<v>]/<cfg>_<shots>shots[_<tag>]/seed<k>`` (principle 9).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from results.logs import crash_message, log_files_newest_first
from study.run import RunKey, dataset_display_name
from study.run_read import RunFolder, mapping_field, metric_of, read_run_folders, record_format_problem
from trainers.dapt_init.run_folder import lock_holder
from trainers.dapt_init.runstate import PROMPT_MODEL

ELAPSED = re.compile(r"^Elapsed: (\d+):(\d\d):(\d\d)\s*$", re.MULTILINE)
CPU_NOTE = re.compile(r"^Note: running on the CPU", re.MULTILINE)
GPU_LINE = re.compile(r"^GPU models and configuration: ?(.*)$", re.MULTILINE)
GPU_NEXT = re.compile(r"^GPU models and configuration:\s*\n(GPU 0: .+)$", re.MULTILINE)
TORCH_LINE = re.compile(r"^PyTorch version: (\S+)", re.MULTILINE)
USE_CUDA_FALSE = re.compile(r"^USE_CUDA: False\s*$", re.MULTILINE)
SPLIT_LINE = re.compile(r"^Reading split from (.+?)\s*$", re.MULTILINE)

# Status words of the inventory.
FINISHED = "finished"
OTHER_SETTINGS = "finished, other settings"
IN_PROGRESS = "in progress"
CRASHED = "crashed"
MISSING = "missing"
UNREADABLE = "unreadable"
EMPTY = "empty"  # a seed folder with nothing in it (not "missing": the folder is there)
DUPLICATE = "duplicate"  # a second folder recording a run already read (counted once)
CLIP_KEY = "clip.weights.sha256"  # the CLIP weights, compared with the config keys


@dataclass(frozen=True)
class Cell:
    """One table cell's setting: runs that differ only in their seed."""
    dataset: str  # display name (EuroSAT)
    init: str
    vis_init: str
    shots: int
    config: str
    tag: str


@dataclass
class Run:
    path: Path
    cell: Cell | None  # None when neither the record nor the path says what the run is
    seed: int | None
    status: str
    accuracy: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    epoch: int | None = None
    max_epoch: int | None = None
    wall_s: float | None = None
    fingerprint: str | None = None
    keys: dict[str, Any] = field(default_factory=dict)  # fingerprint_keys
    clip_weights: dict[str, Any] = field(default_factory=dict)
    detail: str = ""  # crash line, lock holder, why unreadable
    device: str = ""
    precision: str = ""
    torch_version: str = ""
    split_file: str = ""
    spec_source: str = ""  # "spec", "result.json" or "folder"
    notes: list[str] = field(default_factory=list)  # what was wrong or odd in the folder
    grid: dict[str, str] = field(default_factory=dict)  # the spec's grid values (key -> value)

    @property
    def finished(self) -> bool:
        return self.accuracy is not None


def _log_texts(run_dir: Path) -> tuple[str, str]:
    """(all logs of the run oldest first, the newest log): a resumed run's log.txt-<time>
    files come after log.txt; only the newest one says how the last attempt ended."""
    logs = log_files_newest_first(run_dir)
    texts = []
    for path in logs:
        try:
            texts.append(path.read_text(errors="replace"))
        except OSError:  # unreadable (permissions): the run is judged on what else it has
            texts.append("")
    return "\n".join(reversed(texts)), (texts[0] if texts else "")


def cell_of(key: RunKey | None) -> tuple[Cell | None, int | None]:
    """Table 1's cell of a run placed in the study (few-shot runs only) and its seed."""
    if key is None:
        return None, None
    if key.kind != "fewshot" or key.init is None:
        return None, key.seed
    return Cell(dataset_display_name(key.dataset), key.init, key.vis_init or "random",
                key.shots, key.config, key.tag), key.seed


def environment_from_log(run: Run, text: str) -> None:
    """Device, precision and torch version as the run's log states them."""
    torch_match = TORCH_LINE.search(text)
    run.torch_version = torch_match.group(1) if torch_match else ""
    requested = run.keys.get("TRAINER.DAPT_INIT.PREC", "")
    if CPU_NOTE.search(text) or USE_CUDA_FALSE.search(text):
        run.device = "CPU"
        run.precision = "fp32" if CPU_NOTE.search(text) else str(requested)
    else:
        gpu = GPU_NEXT.search(text) or GPU_LINE.search(text)
        name = gpu.group(1).strip() if gpu else ""
        run.device = name if name and name != "Could not collect" else "GPU (model not logged)"
        run.precision = str(requested)
    split = SPLIT_LINE.search(text)
    run.split_file = split.group(1) if split else ""


def read_run(folder: RunFolder) -> Run:
    """One seed folder, whatever state it is in; never raises for a broken run: every
    problem of its record becomes a note (``notes``) or its status (unreadable)."""
    run_dir = folder.path
    record, notes = folder.record, list(folder.notes)
    cell, seed = cell_of(folder.key)
    run = Run(run_dir, cell, seed, MISSING, spec_source=folder.source, notes=notes)
    text, newest = _log_texts(run_dir)
    if record is not None:
        run.keys = mapping_field(record, "fingerprint_keys", notes)
        fingerprint = record.get("fingerprint")
        run.fingerprint = fingerprint if isinstance(fingerprint, str) else None
        run.epoch = record.get("epoch") if _whole(record.get("epoch")) else None
        run.metrics = mapping_field(record, "metrics", notes)
        clip = mapping_field(record, "clip", notes)
        weights = clip.get("weights")
        run.clip_weights = weights if isinstance(weights, dict) else {}
        wrong = [name for name, kind in (("sha256", str), ("path", str), ("size", int))
                 if not isinstance(run.clip_weights.get(name, kind()), kind)]
        if wrong:  # the report slices, opens and compares these: a damaged one is dropped
            notes.append(f"result.json's clip.weights.{'/'.join(wrong)} of the wrong type; "
                         "ignored")
            run.clip_weights = {k: v for k, v in run.clip_weights.items() if k not in wrong}
        if run.clip_weights.get("sha256") is not None:
            # Other CLIP weights are another model: compared like a setting, so that a cell
            # pooling them is marked and its runs are not paired.
            run.keys = {**run.keys, CLIP_KEY: run.clip_weights.get("sha256")}
        spec = record.get("spec") if isinstance(record.get("spec"), dict) else {}
        grid = spec.get("grid") if isinstance(spec.get("grid"), dict) else {}
        run.grid = {str(k): str(v) for k, v in grid.items()}
        max_epoch = run.keys.get("OPTIM.MAX_EPOCH")
        run.max_epoch = max_epoch if _whole(max_epoch) else None
    environment_from_log(run, text)
    elapsed = ELAPSED.findall(text)
    if elapsed:
        h, m, s = map(int, elapsed[-1])
        run.wall_s = float(h * 3600 + m * 60 + s)
    run.status, run.detail = classify(run_dir, record, folder.problem, newest)
    if folder.duplicate_of is not None:
        run.status, run.detail = DUPLICATE, f"records the same run as {folder.duplicate_of}"
    if run.status == FINISHED:
        run.accuracy, problem = metric_of({"metrics": run.metrics}, "accuracy")
        if problem:
            run.status, run.detail = UNREADABLE, f"result.json has {problem}"
    return run


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def classify(run_dir: Path, record: dict[str, Any] | None, problem: str,
             text: str) -> tuple[str, str]:
    """(status, detail): a held lock wins (someone is writing), then a result, then a crash."""
    holder = lock_holder(str(run_dir))
    if holder:
        return IN_PROGRESS, "lock held: " + holder.split(":")[0]
    if record is not None:
        problem = record_format_problem(record)
        return (UNREADABLE, problem) if problem else (FINISHED, "")
    if problem:
        return UNREADABLE, problem
    crash = crash_message(text.splitlines()) if text else None
    if crash:
        return CRASHED, crash
    last = next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "")
    if last.startswith("error:"):
        return CRASHED, last
    checkpoints = list((run_dir / PROMPT_MODEL).glob("model.pth.tar-*"))
    if checkpoints:
        return IN_PROGRESS, f"{len(checkpoints)} checkpoint(s), no result.json (stopped or running)"
    if text:
        return IN_PROGRESS, "log.txt without a checkpoint or result yet"
    return EMPTY, "empty folder"


def read_tree(root: Path) -> list[Run]:
    """Every seed folder under root (a second folder recording one run: "duplicate")."""
    return [read_run(folder) for folder in read_run_folders(root)]
