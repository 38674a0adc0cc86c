"""Is a run folder finished, for which settings, and who is running in it.

One rule, used by ``train.py`` and (through ``train.py --check-finished``) by the scripts:
a run is finished for a command when its ``result.json`` records the same fingerprint (every
resolved config key that can change the result) and the same CLIP weights. This module
imports neither torch nor the toolbox, so the check costs a config resolution only.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import DaptInitError

RESULT_FILE = "result.json"
LOCK_FILE = ".lock"
TMP_PREFIX = ".tmp-"  # atomic.py's temporary files

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

# Exit statuses of ``train.py --check-finished`` (the scripts branch on them).
FINISHED, OTHER_SETTINGS, NOT_FINISHED, RUNNING_ELSEWHERE = 0, 2, 3, 4


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
    keys = {k: v for k, v in flatten_config(cfg).items() if k not in NOT_RESULT_KEYS}
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
    """What a result (or a checkpoint) is a result of."""

    keys: dict[str, Any]
    weights: dict[str, Any]

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
    return RunIdentity(fingerprint_keys(cfg, extra), weights)


def differences(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """'KEY old -> new' for each key whose value differs (or exists on one side only)."""
    missing = object()
    out = []
    for key in sorted(set(stored) | set(current)):
        old, new = stored.get(key, missing), current.get(key, missing)
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


def read_result(run_dir: str) -> dict[str, Any] | None:
    path = os.path.join(run_dir, RESULT_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as file:
            record = json.load(file)
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def finished_verdict(run_dir: str, current: RunIdentity) -> Verdict:
    """THE rule: finished for ``current`` iff result.json holds the same fingerprint and
    weights; a result of other settings is an error naming the keys and the ways out."""
    record = read_result(run_dir)
    if record is None:
        return Verdict(NOT_FINISHED, "")
    if record.get("fingerprint") == current.fingerprint and same_weights(
            stored_weights(record), current.weights):
        return Verdict(FINISHED, f"skip (finished): {run_dir}")
    if "fingerprint" not in record:
        what = "no fingerprint (written by an older version), so its settings are unknown"
    else:
        what = "other settings: " + "; ".join(identity_differences(record, current))
    return Verdict(OTHER_SETTINGS, (
        f"{run_dir} holds a finished run with {what}. It is not reused: give this run its own "
        "folder (another OUTPUT_ROOT or TAG with the scripts, another --output-dir with "
        "train.py), or remove that folder to run it again."
    ))


# ------------------------------------------------------------------------------------ lock

class RunLocked(DaptInitError):
    """Another live process holds the run folder's lock."""


def _holder(lock_path: str) -> str:
    try:
        with open(lock_path) as file:
            pid = file.read().strip()
    except OSError:
        pid = ""
    return f"PID {pid}" if pid else "another process"


def _locked_message(run_dir: str, lock_path: str) -> str:
    return (f"{run_dir} is in use by {_holder(lock_path)} (lock {lock_path}): a run folder "
            "takes one process at a time; wait for it, or stop that process and run again.")


class RunLock:
    """An exclusive ``flock`` on ``<run_dir>/.lock``, held for the process's life.

    The OS releases it when the process exits, however it dies (kill -9 included), so a lock
    is never stale. The file holds the holder's PID, written only once the lock is held.
    """

    def __init__(self, run_dir: str) -> None:
        os.makedirs(run_dir, exist_ok=True)
        self.path = os.path.join(run_dir, LOCK_FILE)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:  # a folder or an unwritable file where the lock goes
            raise DaptInitError(
                f"cannot take the run folder's lock {self.path} ({error.strerror or error}); it "
                "must be a plain file this process can write: remove it (rmdir if it is a "
                "folder) and run the same command again."
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise RunLocked(_locked_message(run_dir, self.path)) from None
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = -1


def lock_holder(run_dir: str) -> str | None:
    """The locked-folder message when a live process holds ``run_dir``, else None.

    Probes with a shared, non-blocking lock on an existing file; creates nothing."""
    path = os.path.join(run_dir, LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _locked_message(run_dir, path)
    finally:
        os.close(fd)
    return None


def remove_stale_temporaries(run_dir: str) -> list[str]:
    """Delete ``.tmp-*`` files a killed process left in the run folder or its subfolders one
    level down (result.json, prompt_learner/); call under the lock: no one else writes there."""
    folders = [run_dir] + [entry.path for entry in os.scandir(run_dir) if entry.is_dir()]
    removed = []
    for folder in folders:
        for entry in os.scandir(folder):
            if entry.name.startswith(TMP_PREFIX) and entry.is_file():
                os.remove(entry.path)
                removed.append(entry.path)
    return removed
