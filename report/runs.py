"""Reading run folders: what each run is (spec), how far it got, and what it measured.

A run's identity comes from ``result.json``'s ``spec`` when present, then its top-level fields
(dataset, init_method, ...), and only then from the folder layout
``<dataset>/<trainer>/<init>[_vis-<v>]/<cfg>_<shots>shots[_<tag>]/seed<k>`` (principle 9).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import sources

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
    grid: dict[str, str] = field(default_factory=dict)  # the spec's grid values (key -> value)

    @property
    def finished(self) -> bool:
        return self.accuracy is not None


def _read_json(path: Path) -> tuple[dict[str, Any] | None, str]:
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None, ""
    except (OSError, ValueError) as error:
        return None, f"{path.name} unreadable ({error})"
    if not isinstance(record, dict):
        return None, f"{path.name} is not a JSON object"
    return record, ""


def _log_texts(run_dir: Path) -> tuple[str, str]:
    """(all logs of the run oldest first, the newest log): a resumed run's log.txt-<time>
    files come after log.txt; only the newest one says how the last attempt ended."""
    logs = sources.log_files_newest_first(run_dir)
    texts = [p.read_text(errors="replace") for p in logs]
    return "\n".join(reversed(texts)), (texts[0] if texts else "")


def cell_from_path(root: Path, run_dir: Path) -> tuple[Cell | None, int | None]:
    try:
        key = sources.parse_run_path(run_dir.relative_to(root).parts)
    except (sources.LayoutError, ValueError, AttributeError):
        return None, None
    if key.kind != "fewshot" or key.init is None:
        return None, key.seed
    return Cell(sources.dataset_display_name(key.dataset), key.init, key.vis_init or "random",
                key.shots, key.config, key.tag), key.seed


def cell_from_record(record: dict[str, Any], fallback: Cell | None
                     ) -> tuple[Cell | None, int | None, str]:
    """The spec first, then result.json's own fields, each field falling back to the path."""
    spec = record.get("spec") if isinstance(record.get("spec"), dict) else None
    if spec:
        get, source = spec.get, "spec"
        names = {"init": "init", "vis_init": "vis_init"}
    else:
        get, source = record.get, "result.json"
        names = {"init": "init_method", "vis_init": "vis_init_method"}
    dataset, init, shots = get("dataset"), get(names["init"]), get("shots")
    if not (isinstance(dataset, str) and isinstance(init, str) and isinstance(shots, int)):
        return fallback, None, "folder"
    seed = get("seed") if isinstance(get("seed"), int) else None
    cell = Cell(sources.dataset_display_name(dataset), init,
                get(names["vis_init"]) or "random", shots,
                (spec or {}).get("config") or (fallback.config if fallback else ""),
                (spec or {}).get("tag") or (fallback.tag if fallback else ""))
    return cell, seed, source


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


def read_run(root: Path, run_dir: Path) -> Run:
    """One seed folder, whatever state it is in; never raises for a broken run."""
    path_cell, path_seed = cell_from_path(root, run_dir)
    record, problem = _read_json(run_dir / sources.RESULT_JSON_NAME)
    cell, seed, source = path_cell, path_seed, "folder"
    if record is not None:
        record_cell, record_seed, source = cell_from_record(record, path_cell)
        cell, seed = record_cell, record_seed if record_seed is not None else path_seed
    run = Run(run_dir, cell, seed, MISSING, spec_source=source)
    text, newest = _log_texts(run_dir)
    if record is not None:
        run.keys = record.get("fingerprint_keys") or {}
        run.fingerprint = record.get("fingerprint")
        run.epoch = record.get("epoch") if isinstance(record.get("epoch"), int) else None
        run.metrics = record.get("metrics") or {}
        clip = record.get("clip") if isinstance(record.get("clip"), dict) else {}
        run.clip_weights = clip.get("weights") if isinstance(clip.get("weights"), dict) else {}
        spec = record.get("spec") if isinstance(record.get("spec"), dict) else {}
        grid = spec.get("grid") if isinstance(spec.get("grid"), dict) else {}
        run.grid = {str(k): str(v) for k, v in grid.items()}
        max_epoch = run.keys.get("OPTIM.MAX_EPOCH")
        run.max_epoch = max_epoch if isinstance(max_epoch, int) else None
    environment_from_log(run, text)
    elapsed = ELAPSED.findall(text)
    if elapsed:
        h, m, s = map(int, elapsed[-1])
        run.wall_s = float(h * 3600 + m * 60 + s)
    run.status, run.detail = classify(run_dir, record, problem, newest)
    accuracy = run.metrics.get("accuracy") if run.status == FINISHED else None
    if isinstance(accuracy, (int, float)) and not isinstance(accuracy, bool):
        run.accuracy = float(accuracy)
    elif run.status == FINISHED:
        run.status, run.detail = UNREADABLE, "result.json has no numeric metrics.accuracy"
    return run


def classify(run_dir: Path, record: dict[str, Any] | None, problem: str,
             text: str) -> tuple[str, str]:
    """(status, detail): a held lock wins (someone is writing), then a result, then a crash."""
    holder = sources.lock_holder(str(run_dir))
    if holder:
        return IN_PROGRESS, "lock held: " + holder.split(":")[0]
    if record is not None:
        if record.get("format") != sources.RESULT_JSON_FORMAT:
            return UNREADABLE, f"result.json is not '{sources.RESULT_JSON_FORMAT}'"
        return FINISHED, ""
    if problem:
        return UNREADABLE, problem
    crash = sources.crash_message(text.splitlines()) if text else None
    if crash:
        return CRASHED, crash
    last = next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "")
    if last.startswith("error:"):
        return CRASHED, last
    checkpoints = list((run_dir / sources.PROMPT_MODEL).glob("model.pth.tar-*"))
    if checkpoints:
        return IN_PROGRESS, f"{len(checkpoints)} checkpoint(s), no result.json (stopped or running)"
    if text:
        return IN_PROGRESS, "log.txt without a checkpoint or result yet"
    return MISSING, "empty folder"


def read_tree(root: Path) -> list[Run]:
    return [read_run(root, folder) for folder in sources.find_seed_folders(root)]
