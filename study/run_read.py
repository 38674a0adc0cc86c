"""Reading a run folder back: its record (``result.json``), where it sits in the study, and
every problem of it as a note on the run, never an exception and never a hang.

``study/run.py`` owns the folder names both ways; this module owns the record. The parser
(results/), the report (report/) and the analyses read run folders only through here:

- ``read_json``: a JSON object from a file, refusing without blocking what is not a regular
  file (a FIFO named result.json or .lock would hang a plain ``open``).
- ``key_from_spec``: the RunKey of the "spec" train.py recorded (a renamed or moved tree still
  lands in the right cell); the folder names place only runs without one.
- ``place_run``: the spec first, then the folder names, with a note where they disagree.
- ``unpublished_setting``: why a run is not the published recipe (other CLIP weights, other
  epochs): the mark (dagger) of Table 1 and the --study rows.
"""
from __future__ import annotations

import errno
import json
import math
import os
import re
import stat
from dataclasses import dataclass, field, fields, replace
from pathlib import Path, PurePath
from typing import Any, Mapping

from trainers.dapt_init.config import INIT_METHODS
from trainers.dapt_init.result_record import RESULT_FORMAT
from trainers.dapt_init.runstate import RESULT_FILE

from .run import (KEY_KINDS, TRAINER, LayoutError, RunKey, canonical_dataset,
                  find_run_folders, normalized_dataset, spec_from_path)

SPEC_KEY = "spec"
SPEC_KINDS = KEY_KINDS  # spec "kind" -> (RunKey kind, base2new split)
# RunKey fields a spec decides; a folder saying otherwise is noted (the spec is used).
COMPARED_FIELDS = ("kind", "dataset", "init", "vis_init", "config", "shots", "seed", "split",
                   "tag")
# No few-shot run has more shots than this; a larger number is a damaged record (10**30 would
# be placed in a column of its own and printed as a 31-digit header).
MAX_SHOTS = 10**6
MAX_SEED = 2**32 - 1  # numpy's seeds end here; Dassl seeds numpy with the run's seed
MAX_JSON_BYTES = 64 * 2**20  # a result.json is a few kB: a larger file is not one


class SpecError(ValueError):
    """A "spec" in result.json that cannot place the run (then the folder names do)."""


# --------------------------------------------------------------------------- the record
def read_json(path: Path) -> tuple[dict[str, Any] | None, str]:
    """(the JSON object in ``path``, "") or (None, why not); (None, "") when there is none.

    Opened with O_NONBLOCK and checked on the open descriptor (no race with a swap): a FIFO,
    socket or device is refused at once instead of waiting for a writer that never comes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        if os.path.islink(path):  # a link to a file that is gone (a purged scratch copy)
            return None, f"{path.name} is a link to {os.readlink(path)}, which is missing"
        return None, ""
    except OSError as error:
        if error.errno == errno.ENOTDIR:
            return None, ""
        return None, f"{path.name} unreadable ({error.strerror})"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, f"{path.name} is not a regular file"
        if info.st_size > MAX_JSON_BYTES:
            return None, f"{path.name} is {info.st_size} bytes, not a run record"
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(MAX_JSON_BYTES + 1)
    except OSError as error:
        return None, f"{path.name} unreadable ({error.strerror})"
    finally:
        os.close(fd)
    try:
        # NaN and Infinity load as floats: the reader of each value says what is wrong with it.
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        return None, f"{path.name} unreadable ({error})"
    if not isinstance(record, dict):
        return None, f"{path.name} is not a JSON object"
    return record, ""


def read_record(run_dir: Path) -> tuple[dict[str, Any] | None, str]:
    """``read_json`` of the run's ``result.json``."""
    return read_json(Path(run_dir) / RESULT_FILE)


def record_format_problem(record: Mapping[str, Any]) -> str:
    """Why a record is not a finished DAPT_Init result ("" when it is)."""
    if record.get("format") != RESULT_FORMAT:
        return f"{RESULT_FILE} is not '{RESULT_FORMAT}'"
    return ""


def mapping_field(record: Mapping[str, Any], name: str, notes: list[str]) -> dict[str, Any]:
    """record[name] when it is an object; {} with a note when it is something else."""
    value = record.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        notes.append(f"{RESULT_FILE}'s {name} is a {type(value).__name__}, not an object; "
                     "ignored")
        return {}
    return value


def accuracy_problem(value: float, name: str = "accuracy") -> str:
    """Why a recorded percentage is not one ("" when it is a finite number in [0, 100])."""
    if not math.isfinite(value):
        return f"non-numeric {name} {value!r}"
    if not 0.0 <= value <= 100.0:
        return f"{name} {value:g} outside 0-100 %"
    return ""


def metric_of(record: Mapping[str, Any], name: str) -> tuple[float | None, str]:
    """(value, "") of ``metrics[name]`` as the parser and the report both read it: a number,
    or a number written as text ('91.1', '91.1%'), finite and within 0-100 (every metric
    Dassl reports is a percentage); else (None, why not)."""
    metrics = record.get("metrics")
    if not isinstance(metrics, dict) or name not in metrics:
        return None, f"no metrics.{name}"
    raw = metrics[name]
    value = None
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw.strip().removesuffix("%").replace(",", "").strip())
        except ValueError:
            value = None
    if value is None:
        return None, f"non-numeric {name} {raw!r}"
    problem = accuracy_problem(value, name)
    return (None, problem) if problem else (value, "")


# ------------------------------------------------------------------------------ the spec
def grid_items(grid: Any) -> tuple[tuple[str, str], ...]:
    """{"OPTIM.MAX_EPOCH": 50} -> (("OPTIM.MAX_EPOCH", "50"),): hashable, in key order."""
    if grid is None:
        return ()
    if not isinstance(grid, Mapping):
        raise SpecError(f"grid is {type(grid).__name__}, not an object")
    # Strings as they are, other values as JSON text (lists, numbers, booleans).
    return tuple(sorted((str(key), value if isinstance(value, str) else json.dumps(value))
                        for key, value in grid.items()))


def grid_text(grid: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{key}={value}" for key, value in grid)


def _whole(spec: Mapping[str, Any], name: str, largest: int | None = None) -> int:
    value = spec.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{name} is {value!r}, not a whole number")
    if value < 0 or (largest is not None and value > largest):
        raise SpecError(f"{name} is {value}, not between 0 and {largest or 'any'}")
    return value


def _text(spec: Mapping[str, Any], name: str, choices: tuple[str, ...] | None = None,
          optional: bool = False) -> str | None:
    value = spec.get(name)
    if value is None or value == "":
        if optional:
            return None
        raise SpecError(f"{name} is missing")
    if not isinstance(value, str) or (choices is not None and value not in choices):
        wanted = f"one of {', '.join(choices)}" if choices else "a string"
        raise SpecError(f"{name} is {value!r}, not {wanted}")
    return value


def key_from_spec(spec: Any, trainer: str | None = None,
                  folder_key: RunKey | None = None) -> RunKey:
    """RunKey of a recorded spec (raises SpecError). ``trainer`` is the record's; the folder
    key, when the path has one, gives only what a spec does not record (the trainer when the
    record names none, the folders between config and seed)."""
    if not isinstance(spec, Mapping):
        raise SpecError(f"it is {type(spec).__name__}, not an object")
    kind, split = SPEC_KINDS[_text(spec, "kind", tuple(SPEC_KINDS))]
    dataset = _text(spec, "dataset")
    # One dataset spelt two ways ('OxfordPets' recorded, 'oxford_pets' folder) is one column,
    # named as the folders of runs without a spec name it.
    same_dataset = (folder_key is not None
                    and normalized_dataset(folder_key.dataset) == normalized_dataset(dataset))
    dataset = folder_key.dataset if same_dataset else canonical_dataset(dataset)
    # A config given as a file ('configs/trainers/DAPT_Init/vit_b16_ep50.yaml') is its name.
    config = PurePath(_text(spec, "config")).name.removesuffix(".yaml")
    return RunKey(
        kind=kind, split=split,
        dataset=dataset,
        trainer=trainer or (folder_key.trainer if folder_key else TRAINER),
        init=_text(spec, "init", INIT_METHODS),
        vis_init=_text(spec, "vis_init", INIT_METHODS, optional=True),
        config=config,
        extra=folder_key.extra if folder_key else "",
        shots=_whole(spec, "shots", MAX_SHOTS), seed=_whole(spec, "seed", MAX_SEED),
        tag=_text(spec, "tag", optional=True) or "",
        grid=grid_items(spec.get("grid")))


def disagreements(spec_key: RunKey, folder_key: RunKey) -> list[str]:
    """'init diff (folders: same)' for each field where the folder names say otherwise.
    A folder without a visual init says nothing about it (the scripts omit random)."""
    found = []
    for name in (f.name for f in fields(RunKey) if f.name in COMPARED_FIELDS):
        recorded, named = getattr(spec_key, name), getattr(folder_key, name)
        if name == "vis_init" and named is None:
            continue
        if recorded != named:
            found.append(f"{name} {recorded} (folders: {named})")
    return found


def vis_init_of_record(record: Mapping[str, Any] | None) -> str | None:
    """The "vis_init_method" a DAPT_Init run recorded in result.json, if any."""
    value = record.get("vis_init_method") if record is not None else None
    return value if isinstance(value, str) and value in INIT_METHODS else None


# Where a record without a spec (older DAPT_Init runs) names what the run is: spec field ->
# result.json's own top-level field.
RECORD_FIELDS = {"dataset": "dataset", "init": "init_method", "vis_init": "vis_init_method",
                 "shots": "shots", "seed": "seed"}
SPEC_OF_KIND = {value: name for name, value in SPEC_KINDS.items()}


def spec_of_record_fields(record: Mapping[str, Any], folder_key: RunKey) -> dict[str, Any]:
    """A spec from a record's top-level fields, the folder names giving what they lack."""
    spec = {"kind": SPEC_OF_KIND[(folder_key.kind, folder_key.split)],
            "dataset": folder_key.dataset, "init": folder_key.init,
            "vis_init": folder_key.vis_init, "config": folder_key.config,
            "shots": folder_key.shots, "seed": folder_key.seed, "tag": folder_key.tag}
    spec.update({name: record[field_name] for name, field_name in RECORD_FIELDS.items()
                 if record.get(field_name) not in (None, "")})
    return spec


def place_run(record: Mapping[str, Any] | None, relative_parts: tuple[str, ...]
              ) -> tuple[RunKey | None, list[str], str | None, str]:
    """(key, notes, why it has no place, what placed it: "spec", "result.json" or "folder").

    The recorded spec first, then the folder names. A record without a spec (older DAPT_Init
    runs) does not place its run: its own fields (dataset, init_method, shots, seed) only
    confirm the folder names ("result.json") or earn a note where they disagree."""
    try:
        folder_key, layout_problem = spec_from_path(relative_parts), None
    except LayoutError as error:
        folder_key, layout_problem = None, f"path matches no layout: {error}"
    spec = record.get(SPEC_KEY) if record is not None else None
    notes: list[str] = []
    recorded_vis = vis_init_of_record(record)
    if spec is not None:
        trainer = record.get("trainer")
        try:
            key = key_from_spec(spec, trainer if isinstance(trainer, str) and trainer else None,
                                folder_key)
        except SpecError as error:
            notes.append(f"{RESULT_FILE}'s spec is unusable ({error}); placed by its "
                         "folder names")
        else:
            # A spec without a visual init: the record's field, then the folder's, as before.
            vis_init = key.vis_init or recorded_vis or (folder_key and folder_key.vis_init)
            key = replace(key, vis_init=vis_init or None)
            found = disagreements(key, folder_key) if folder_key is not None else []
            if found:
                notes.append(f"{RESULT_FILE}'s spec and the folder names disagree "
                             f"({'; '.join(found)}); used the spec")
            return key, notes, None, "spec"
    if folder_key is None:
        return None, notes, layout_problem, "folder"
    key = replace(folder_key, vis_init=recorded_vis or folder_key.vis_init)
    source = "folder"
    if spec is None and record is not None and key.init is not None:
        try:
            fields_key = key_from_spec(spec_of_record_fields(record, key), None, key)
        except SpecError as error:
            notes.append(f"{RESULT_FILE}'s own fields are unusable ({error}); placed by its "
                         "folder names")
        else:
            found = disagreements(fields_key, key)
            if found:
                notes.append(f"{RESULT_FILE}'s own fields and the folder names disagree "
                             f"({'; '.join(found)}); placed by the folder names")
            else:
                source = RESULT_FILE
    return key, notes, None, source


# ------------------------------------------------------------ the recipe it was made with
# The published CLIP weights: the SHA-256 that clip's download URL carries for each backbone
# (clip refuses a download that does not match; tests/test_parse_study_polish.py holds this table
# to clip's own). A run that recorded a local file with another hash used other weights.
PUBLISHED_CLIP_SHA256 = {
    "ViT-B/32": "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
    "ViT-B/16": "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f",
    "ViT-L/14": "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836",
    "ViT-L/14@336px": "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02",
}
TRAINER_CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "trainers"
CONFIG_MAX_EPOCH = re.compile(r"^\s*MAX_EPOCH:\s*(\d+)", re.MULTILINE)


def config_max_epoch(trainer: str, config: str) -> int | None:
    """MAX_EPOCH of configs/trainers/<trainer>/<config>.yaml, when that file is here."""
    try:
        text = (TRAINER_CONFIGS / trainer / f"{config}.yaml").read_text()
    except (OSError, ValueError):
        return None
    found = CONFIG_MAX_EPOCH.findall(text)
    return int(found[-1]) if found else None


def clip_sha256(record: Mapping[str, Any] | None) -> str | None:
    """The SHA-256 of the CLIP weights a run recorded, when it recorded one."""
    clip = record.get("clip") if record is not None else None
    weights = clip.get("weights") if isinstance(clip, dict) else None
    value = weights.get("sha256") if isinstance(weights, dict) else None
    return value if isinstance(value, str) else None


def unpublished_setting(record: Mapping[str, Any] | None, key: RunKey) -> tuple[str, ...]:
    """Why a DAPT_Init run is not the published recipe its reference numbers come from: CLIP
    weights other than the backbone's published file, or other epochs than its config's.
    Read from result.json; a run without one (older runs, other trainers) says nothing."""
    if record is None:
        return ()
    reasons = []
    backbone = record.get("backbone")
    backbone = backbone if isinstance(backbone, str) else repr(backbone)
    sha = clip_sha256(record)
    if sha is not None and sha != PUBLISHED_CLIP_SHA256.get(backbone):
        reasons.append(f"not {backbone}'s published weights")
    keys = record.get("fingerprint_keys")
    epochs = keys.get("OPTIM.MAX_EPOCH") if isinstance(keys, dict) else None
    expected = config_max_epoch(key.trainer, key.config)
    if isinstance(epochs, int) and expected is not None and epochs != expected:
        reasons.append(f"{epochs} of {key.config}'s {expected} epochs")
    return tuple(reasons)


# ---------------------------------------------------------------------- one run folder
@dataclass
class RunFolder:
    """One seed folder read back: its record (None without a readable one), its place in the
    study (None when neither record nor folder names place it) and what was wrong."""

    path: Path
    record: dict[str, Any] | None
    key: RunKey | None
    problem: str = ""  # why the record could not be read ("" when read or absent)
    unplaced: str | None = None  # why the run has no place (key None)
    notes: list[str] = field(default_factory=list)
    source: str = "folder"  # what placed it: "spec", "result.json" or "folder"
    duplicate_of: Path | None = None  # an earlier folder recording the same run (same key)


def read_run_folder(root: Path, folder: Path) -> RunFolder:
    """Read one seed folder below ``root``; never raises for anything inside the folder."""
    record, problem = read_record(folder)
    try:
        relative = folder.relative_to(root).parts
    except ValueError:
        relative = folder.parts
    key, notes, unplaced, source = place_run(record, tuple(relative))
    return RunFolder(folder, record, key, problem, unplaced, notes, source)


def read_run_folders(root: Path) -> list[RunFolder]:
    """Every seed folder under ``root``, read. Two folders recording the same run (one key:
    a copied or renamed tree beside the original) count once: the first in natural order,
    with a note naming the other; the other carries ``duplicate_of``."""
    folders = [read_run_folder(root, path) for path in find_run_folders(root)]
    first: dict[RunKey, RunFolder] = {}
    for folder in folders:
        if folder.key is None:
            continue
        if folder.key in first:
            folder.duplicate_of = first[folder.key].path
            first[folder.key].notes.append(f"{_relative(folder.path, root)} records the same "
                                           "run; counted once")
        else:
            first[folder.key] = folder
    return folders


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
