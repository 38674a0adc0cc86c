"""Is a run folder finished, and for which settings (who runs in it: ``run_folder.py``).

One rule, asked once per run under the run folder's lock (``run_folder.claim``):
a run is finished for a command when its ``result.json`` records the same fingerprint (every
resolved config key that can change the result) and the same CLIP weights. This module
imports neither torch nor the toolbox, so the check costs a config resolution only.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import DaptInitError

RESULT_FILE = "result.json"
# The trainer's model name, so the folder of its checkpoints inside a run.
PROMPT_MODEL = "prompt_learner"

# Keys left out of the fingerprint while at their default, so that runs fingerprinted before
# the key existed stay valid (CPU_FP32 True: the CPU runs fp32, as it always did).
DEFAULT_OMITTED_KEYS = {"TRAINER.DAPT_INIT.CPU_FP32": True}

# Keys that cannot change a run's numbers: where files go, how often it prints or keeps
# checkpoints, where the prototype cache lives. Every other key, including keys added later,
# is part of the fingerprint. CLIP_WEIGHTS is replaced by the weights' identity (a moved file
# with the same bytes is the same model).
NOT_RESULT_KEYS = frozenset({
    "OUTPUT_DIR",
    "RESUME",
    "VERBOSE",
    "DATASET.ROOT",
    "TRAIN.PRINT_FREQ",
    "TRAIN.CHECKPOINT_FREQ",
    "TRAINER.DAPT_INIT.PROTOTYPE_CACHE_DIR",
    "TRAINER.DAPT_INIT.CLIP_WEIGHTS",
    # What is logged or kept, not what is computed: gradient norms come from extra backward
    # passes that update nothing; kept prompt files are copies.
    "TRAINER.DAPT_INIT.LOG_GRAD_NORMS",
    "TRAINER.DAPT_INIT.KEEP_EPOCHS",
})

# The finished rule's verdicts on a run folder. FINISHED, OTHER_SETTINGS and RUNNING_ELSEWHERE
# are also train.py's exit statuses for them (skipped: 0; refused: 2; another process holds
# the folder: 4); NOT_FINISHED is never an exit status (the run then runs).
FINISHED, OTHER_SETTINGS, NOT_FINISHED, RUNNING_ELSEWHERE = 0, 2, 3, 4
# Exit statuses of a train.py run: done, refused with one line on stderr, stopped by Ctrl-C.
SUCCESS, USER_ERROR = 0, 2
INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process ended by Ctrl-C
HANGUP = 129  # 128 + SIGHUP: the terminal or ssh session closed; stopped as by Ctrl-C


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def flatten_config(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"A.B.C": value} for every leaf of a (yacs) config; tuples become lists (JSON)."""
    flat: dict[str, Any] = {}
    for key, value in cfg.items():
        if isinstance(value, Mapping):
            flat.update(flatten_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = _plain(value)
    return flat


def fingerprint_keys(cfg: Mapping[str, Any], extra: Mapping[str, Any] | None = None
                     ) -> dict[str, Any]:
    """The flattened key -> value map a run's fingerprint hashes (``extra``: non-config
    inputs such as an evaluation's model folder and epoch)."""
    keys = {k: v for k, v in flatten_config(cfg).items() if k not in NOT_RESULT_KEYS
            and not (k in DEFAULT_OMITTED_KEYS and v == DEFAULT_OMITTED_KEYS[k])}
    keys.update(extra or {})
    return dict(sorted(keys.items()))


def fingerprint(keys: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(keys, sort_keys=True, default=str).encode()).hexdigest()


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def clip_weights_identity(backbone: str, weights_file: str,
                          known: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Which CLIP weights a run uses: the backbone name (clip's downloader checks its hash),
    or a local file's path, size and SHA-256. ``known`` (an earlier record of the same file,
    unchanged in path, size and mtime) saves hashing it again."""
    if not weights_file:
        return {"name": backbone}
    stat = os.stat(weights_file)
    path = os.path.abspath(weights_file)
    identity = {"path": path, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if known and all(known.get(k) == identity[k] for k in identity) and known.get("sha256"):
        identity["sha256"] = known["sha256"]
    else:
        identity["sha256"] = _sha256_file(weights_file)
    return identity


def same_weights(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Same bytes (hash), or the same backbone name."""
    if not a or not b:
        return False
    if "sha256" in a or "sha256" in b:
        return a.get("sha256") == b.get("sha256")
    return a.get("name") == b.get("name")


@dataclass(frozen=True)
class RunIdentity:
    """What a result (or a checkpoint) is a result of.

    ``data_root`` is where this command reads its data: not part of the fingerprint (a moved
    data root is the same data), but the finished rule checks the data files a result
    recorded (``data_record``) under it."""

    keys: dict[str, Any]
    weights: dict[str, Any]
    data_root: str | None = ""

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.keys)

    def record(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "fingerprint_keys": self.keys,
                "clip_weights": self.weights}


def run_identity(cfg: Any, extra: Mapping[str, Any] | None = None,
                 known_weights: Mapping[str, Any] | None = None) -> RunIdentity:
    node = cfg.TRAINER.DAPT_INIT
    weights = clip_weights_identity(cfg.MODEL.BACKBONE.NAME, node.CLIP_WEIGHTS, known_weights)
    return RunIdentity(fingerprint_keys(cfg, extra), weights, cfg.DATASET.ROOT)


def command_identity(cfg: Any, model_dir: str = "", load_epoch: int | None = None
                     ) -> RunIdentity:
    """What a command's result is a function of: the resolved config (less the keys that
    cannot change it), the CLIP weights, and for an evaluation (``model_dir``) the model it
    tests. Weights recorded in the folder's own result are reused rather than hashed again
    when the file is unchanged."""
    extra: dict[str, Any] = {}
    if model_dir:
        model = read_result(model_dir) or {}
        extra = {"EVAL.MODEL_DIR": os.path.abspath(model_dir),
                 "EVAL.MODEL_FINGERPRINT": model.get("fingerprint"),
                 "EVAL.LOAD_EPOCH": load_epoch}
    stored = read_result(cfg.OUTPUT_DIR) or {}
    return run_identity(cfg, extra, stored_weights(stored))


# ------------------------------------------------------------------------------------ data

def _relative(path: str, root: str) -> str:
    return os.path.relpath(os.path.abspath(path), os.path.abspath(root or "."))


def data_record(root: str, dataset: Any) -> dict[str, Any]:
    """What data a run read, without its absolute location (a moved root still matches).

    ``images``: SHA-256 over (split, image path relative to ``root``, label, class name) of
    every train / val / test item, in order; ``counts`` per split; ``files``: the split file
    the data set class read (its ``split_file`` under ``dataset_dir``, where it has one),
    relative to ``root``, with its SHA-256. The finished rule re-hashes ``files`` under the
    command's root: cheap (one JSON file), and it needs neither the toolbox nor the images.
    """
    digest, counts = hashlib.sha256(), {}
    for split, items in (("train", dataset.train_x), ("val", dataset.val),
                         ("test", dataset.test)):
        counts[split] = len(items or [])
        for item in items or []:
            line = f"{split}\t{_relative(item.impath, root)}\t{item.label}\t{item.classname}\n"
            digest.update(line.encode())
    files = {}
    split_file, folder = getattr(dataset, "split_file", None), getattr(dataset, "dataset_dir", None)
    if isinstance(split_file, str) and folder and os.path.isfile(os.path.join(folder, split_file)):
        path = os.path.join(folder, split_file)
        files[_relative(path, root)] = _sha256_file(path)
    return {"images": digest.hexdigest(), "counts": counts, "files": files}


def data_differences(record: Mapping[str, Any], root: str | None) -> list[str]:
    """The recorded data files that are missing or other bytes under ``root`` (a result
    written before data was recorded has none to compare; ``root`` None: a preview that names
    no data root, which compares none)."""
    if root is None:
        return []
    data = record.get("data")
    files = data.get("files") if isinstance(data, Mapping) else None
    if not isinstance(files, Mapping):
        return []
    changed = []
    for relative, sha256 in sorted(files.items()):
        path = os.path.join(root or ".", relative)
        if not os.path.isfile(path):
            changed.append(f"{relative} (missing under DATASET.ROOT {root!r})")
        elif _sha256_file(path) != sha256:
            changed.append(f"{relative} (other contents under DATASET.ROOT {root!r})")
    return changed


def non_finite_metrics(record: Mapping[str, Any]) -> str | None:
    """Why a result's metrics are not usable numbers (missing, nan, inf), or None."""
    metrics = record.get("metrics")
    if not isinstance(metrics, Mapping) or not metrics:
        return "no metrics"
    bad = [f"{name} {value!r}" for name, value in metrics.items()
           if isinstance(value, bool) or not isinstance(value, (int, float))
           or not math.isfinite(value)]
    return ", ".join(bad) or None


def differences(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """'KEY old -> new' for each key whose value differs (or exists on one side only)."""
    missing = object()
    out = []
    for key in sorted(set(stored) | set(current)):
        # A key left out at its default (DEFAULT_OMITTED_KEYS) reads as that default.
        default = DEFAULT_OMITTED_KEYS.get(key, missing)
        old, new = stored.get(key, default), current.get(key, default)
        if old != new:
            show = lambda v: "(absent)" if v is missing else repr(v)  # noqa: E731
            out.append(f"{key} {show(old)} -> {show(new)}")
    return out


def stored_weights(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The CLIP weights identity of a result.json ("clip": {"weights"}) or checkpoint record."""
    clip = record.get("clip")
    if isinstance(clip, Mapping) and clip.get("weights"):
        return dict(clip["weights"])
    return record.get("clip_weights")


def identity_differences(stored: Mapping[str, Any], current: RunIdentity) -> list[str]:
    """Differences between a stored record (result.json / checkpoint) and ``current``."""
    changed = differences(stored.get("fingerprint_keys") or {}, current.keys)
    weights = stored_weights(stored)
    if not same_weights(weights, current.weights):
        changed.append(f"CLIP weights {_weights_text(weights)} -> "
                       f"{_weights_text(current.weights)}")
    return changed


def check_run_weights(run_dir: str, backbone: str, weights_file: str) -> None:
    """Refuse to read a run's prompts with other CLIP weights than it was trained with.

    Prompts live in one CLIP's embedding space: under other weights nearest words, text
    features and t-SNE mean something else. A run without a result.json (not finished, or
    written elsewhere) records no weights and is not checked.
    """
    path = os.path.join(run_dir, RESULT_FILE)
    if not os.path.isfile(path):  # none yet, or not a file (a FIFO would block the open)
        return
    try:
        with open(path) as file:
            recorded = stored_weights(json.load(file))
    except (OSError, ValueError, AttributeError):
        return
    if not recorded:
        return
    given = clip_weights_identity(backbone, weights_file, recorded) if (
        not weights_file or os.path.isfile(weights_file)) else {"path": weights_file}
    refuse_other_weights(run_dir, recorded, given)


def refuse_other_weights(run_dir: str, recorded: Mapping[str, Any] | None,
                         given: Mapping[str, Any] | None) -> None:
    """Raise when ``recorded`` (a run's result.json or checkpoint) names other CLIP weights
    than ``given``; a run that recorded none is not checked."""
    if not recorded or same_weights(recorded, given):
        return
    use = (f"the weights file {recorded['path']} (--clip-weights or "
           "TRAINER.DAPT_INIT.CLIP_WEIGHTS)" if "path" in recorded
           else f"the backbone {recorded.get('name')!r} and no weights file")
    raise DaptInitError(
        f"{run_dir} was trained with CLIP weights {_weights_text(recorded)}, but "
        f"{_weights_text(given)} were given: its prompts mean something else under other "
        f"weights; use {use}."
    )


def _weights_text(weights: Mapping[str, Any] | None) -> str:
    if not weights:
        return "(not recorded)"
    if "name" in weights:
        return repr(weights["name"])
    return f"{weights.get('path')!r} (sha256 {str(weights.get('sha256'))[:12]})"


# --------------------------------------------------------------------------------- verdict

@dataclass(frozen=True)
class Verdict:
    status: int  # FINISHED, OTHER_SETTINGS, NOT_FINISHED or RUNNING_ELSEWHERE
    message: str


def load_result(run_dir: str) -> tuple[dict[str, Any] | None, str | None]:
    """(record, None); (None, None) when there is no result.json; (None, problem) when it
    is not a JSON object (damaged: a full disk, a hand edit, a copy cut short)."""
    path = os.path.join(run_dir, RESULT_FILE)
    if not os.path.isfile(path):
        return None, None
    try:
        with open(path, encoding="utf-8") as file:
            record = json.load(file)
    except (OSError, ValueError) as error:  # UnicodeDecodeError is a ValueError
        return None, " ".join(str(error).split()) or type(error).__name__
    if not isinstance(record, dict):
        return None, f"it holds a JSON {type(record).__name__}, not an object"
    return record, None


def read_result(run_dir: str) -> dict[str, Any] | None:
    """The result record; {} for a damaged file, None when there is none."""
    record, problem = load_result(run_dir)
    return {} if problem else record


_SHA256 = re.compile(r"[0-9a-f]{64}")


def finished_verdict(run_dir: str, current: RunIdentity) -> Verdict:
    """THE rule: finished for ``current`` iff result.json holds the same fingerprint,
    weights and data files, and finite metrics; a result of other settings is an error
    naming the keys and the ways out."""
    record, problem = load_result(run_dir)
    path = os.path.join(run_dir, RESULT_FILE)
    if problem:
        return Verdict(OTHER_SETTINGS, (
            f"{path} is corrupt ({problem}), so whether {run_dir} holds a finished run, and of "
            f"which settings, is unknown. Move the file away (e.g. 'mv {path} {path}.corrupt') "
            "to resume the run from its last checkpoint, or remove the folder to run it again."
        ))
    if record is None:
        return Verdict(NOT_FINISHED, "")
    fingerprint_ = record.get("fingerprint")
    if fingerprint_ == current.fingerprint and same_weights(
            stored_weights(record), current.weights):
        data_changes = data_differences(record, current.data_root)
        if not data_changes:
            bad = non_finite_metrics(record)
            if bad is None:
                return Verdict(FINISHED, f"skip (finished): {run_dir}")
            # Not a result: the run is redone (resumed from its checkpoint, the file kept
            # as result.json-<time>), never skipped.
            return Verdict(NOT_FINISHED, f"not finished: {path} holds no finite metrics "
                                         f"({bad}); the run is tested again")
        what = ("other data: the data files it recorded differ here: "
                + "; ".join(data_changes))
    elif "fingerprint" not in record:
        what = "no fingerprint (written by an older version), so its settings are unknown"
    elif not isinstance(fingerprint_, str) or not _SHA256.fullmatch(fingerprint_):
        what = (f"a fingerprint that this trainer never writes ({fingerprint_!r}: the file "
                "was edited or damaged), so its settings are unknown")
    else:
        changes = identity_differences(record, current)
        what = ("other settings: " + "; ".join(changes) if changes else
                "a fingerprint that does not match its own recorded keys (the file was edited "
                "or damaged), so its settings are unknown")
    return Verdict(OTHER_SETTINGS, (
        f"{run_dir} holds a finished run with {what}. It is not reused: give this run its own "
        "folder (another OUTPUT_ROOT or TAG with the scripts, another --output-dir with "
        "train.py), or remove that folder to run it again."
    ))
