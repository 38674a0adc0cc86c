"""Who runs in a run folder: its lock, and claiming the folder for one process.

``claim_run_folder`` is the one call ``train.py`` makes before a run writes anything: it asks
whether a live process holds the folder and whether the finished rule (``runstate.py``) skips
or refuses the command, builds the run (``prepare``), takes the lock, asks the finished rule
again under the lock and deletes what a killed process left. ``folder_verdict`` is the same
question without claiming (``train.py --check-finished``). Imports neither torch nor the
toolbox.
"""
from __future__ import annotations

import errno
import fcntl
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .errors import DaptInitError
from .runstate import (FINISHED, NOT_FINISHED, OTHER_SETTINGS, RUNNING_ELSEWHERE, RunIdentity,
                       Verdict, finished_verdict)

LOCK_FILE = ".lock"
TMP_PREFIX = ".tmp-"  # atomic.py's temporary files: a killed run leaves only these


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
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO there must not block
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


# ----------------------------------------------------------------------------------- claim

def folder_verdict(run_dir: str, identity: RunIdentity | None) -> Verdict:
    """RUNNING_ELSEWHERE (the holder named) while a live process holds ``run_dir``, else the
    finished rule for ``identity`` (NOT_FINISHED when there is none: a run that writes no
    result is never skipped)."""
    holder = lock_holder(run_dir)
    if holder is not None:
        return Verdict(RUNNING_ELSEWHERE, holder)
    return _finished(run_dir, identity)


def _finished(run_dir: str, identity: RunIdentity | None) -> Verdict:
    return finished_verdict(run_dir, identity) if identity is not None else Verdict(
        NOT_FINISHED, "")


@dataclass(frozen=True)
class Claim:
    """What ``claim_run_folder`` decided.

    ``status``: FINISHED (skip: ``message`` says so), OTHER_SETTINGS or RUNNING_ELSEWHERE
    (refused: ``message`` says why and what to do), or NOT_FINISHED (claimed: the lock is
    held and ``removed`` lists the stale temporaries deleted)."""

    status: int
    message: str
    prepared: Any = None  # what ``prepare`` returned (None when refused before it ran)
    removed: tuple[str, ...] = ()

    @property
    def claimed(self) -> bool:
        return self.status == NOT_FINISHED

    @property
    def refused(self) -> bool:
        return self.status in (OTHER_SETTINGS, RUNNING_ELSEWHERE)

    @property
    def skip(self) -> bool:
        return self.status == FINISHED


@contextmanager
def claim_run_folder(run_dir: str, identity: RunIdentity | None,
                     prepare: Callable[[], Any]) -> Iterator[Claim]:
    """Claim ``run_dir`` for this process, held until the ``with`` block ends.

    In order: refused while a live process holds the folder, skipped or refused by the
    finished rule (when ``identity`` is given); then ``prepare()`` (building the trainer reads
    data and weights and writes nothing, so a command refused there leaves no folder); then
    the lock is taken (refused if another process took it meanwhile) and the finished rule is
    asked again under it (another process may have finished the run while this one built);
    then the temporary files a killed process left are deleted. A folder whose lock cannot be
    made at all raises ``DaptInitError``.
    """
    before = folder_verdict(run_dir, identity)
    if before.status != NOT_FINISHED:
        yield Claim(before.status, before.message)
        return
    prepared = prepare()
    try:
        lock = RunLock(run_dir)
    except RunLocked as error:
        taken = str(error)  # yielded outside the handler: the body's errors stand alone
    else:
        taken = ""
    if taken:
        yield Claim(RUNNING_ELSEWHERE, taken, prepared)
        return
    try:
        again = _finished(run_dir, identity)
        if again.status != NOT_FINISHED:
            yield Claim(again.status, again.message, prepared)
        else:
            yield Claim(NOT_FINISHED, "", prepared, tuple(remove_stale_temporaries(run_dir)))
    finally:
        lock.release()
