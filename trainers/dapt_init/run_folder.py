"""Who runs in a run folder: its lock, and claiming the folder for one process.

``claim`` is the one decision about a run folder: it takes the folder's lock first, then asks
the finished rule (``runstate.py``) once, under the lock, and either holds the folder for this
process (claimed) or lets it go unchanged (finished: skip; other settings or another process:
refused). ``train.py`` claims before it builds the trainer; in a host codebase, whose train.py
knows nothing of this, the trainer claims when it starts training or loads a model to test.
``folder_verdict`` is the same question without a lock, for previews (``--dry-run``, the
sweep's counts). Imports neither torch nor the toolbox.
"""
from __future__ import annotations

import errno
import fcntl
import os
from dataclasses import dataclass, field

from .errors import DaptInitError
from .runstate import (FINISHED, NOT_FINISHED, OTHER_SETTINGS, RUNNING_ELSEWHERE, RunIdentity,
                       Verdict, finished_verdict)

LOCK_FILE = ".lock"
# A process that claimed a folder and starts the run in a child (the study's scripts) passes
# its lock down: the child holds the same lock, and the rule is not asked twice.
LOCK_FD_ENV = "DAPT_INIT_LOCK_FD"
TMP_PREFIX = ".tmp-"  # atomic.py's temporary files: a killed run leaves only these


class RunLocked(DaptInitError):
    """Another live process holds the run folder's lock."""

    running_elsewhere = True  # exit status RUNNING_ELSEWHERE, not USER_ERROR


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
        self.path = os.path.join(run_dir, LOCK_FILE)
        self.created = not os.path.lexists(self.path)
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
        self.fd = fd

    @classmethod
    def adopt(cls, run_dir: str, fd: int) -> "RunLock | None":
        """The lock a parent process took on ``run_dir`` and passed down as ``fd``; None
        when ``fd`` is not that folder's lock file."""
        lock = cls.__new__(cls)
        lock.path, lock.created, lock.fd = os.path.join(run_dir, LOCK_FILE), False, fd
        try:
            return lock if lock.still_held() else None
        except OSError:  # not an open descriptor
            return None

    def write_pid(self) -> None:
        """Name this process as the holder (only once it has claimed the folder)."""
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()}\n".encode())

    def still_held(self) -> bool:
        """False when the lock file was deleted or replaced (or its folder removed) while
        held: another process could then take a new lock on the same folder."""
        try:
            on_disk = os.stat(self.path)
        except OSError:
            return False
        held = os.fstat(self.fd)
        return (on_disk.st_ino, on_disk.st_dev) == (held.st_ino, held.st_dev)

    def release(self, remove: bool = False) -> None:
        if self.fd >= 0:
            if remove:  # a lock file this process made for a claim it did not keep
                try:
                    os.remove(self.path)
                except OSError:
                    pass
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
    """What ``claim`` decided.

    ``status``: FINISHED (skip: ``message`` says so), OTHER_SETTINGS or RUNNING_ELSEWHERE
    (refused: ``message`` says why and what to do), or NOT_FINISHED (claimed: the lock is
    held and ``removed`` lists the stale temporaries deleted)."""

    status: int
    message: str
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


@dataclass
class _Held:
    lock: RunLock
    made: list[str] = field(default_factory=list)  # folders the claim created, outermost first
    folder: tuple[int, int] = (0, 0)  # the run folder's (device, inode) when claimed


def _folder_id(run_dir: str) -> tuple[int, int]:
    try:
        found = os.stat(run_dir)
    except OSError:
        return (0, 0)
    return (found.st_dev, found.st_ino)


# The run folders this process holds (real path -> its lock): a registry, so that the trainer
# knows train.py claimed its folder already.
_HELD: dict[str, _Held] = {}


def _make_folders(run_dir: str) -> list[str]:
    made, path = [], os.path.abspath(run_dir)
    while not os.path.exists(path):
        made.append(path)
        path = os.path.dirname(path)
    os.makedirs(run_dir, exist_ok=True)
    return made[::-1]


def _remove_made(made: list[str]) -> None:
    """Remove the folders a claim made, innermost first, where they are still empty."""
    for path in reversed(made):
        try:
            os.rmdir(path)
        except OSError:
            return


def holds(run_dir: str) -> bool:
    return os.path.realpath(run_dir) in _HELD


def claim(run_dir: str, identity: RunIdentity | None) -> Claim:
    """Claim ``run_dir`` for this process (held until ``release`` or the process ends).

    The lock first, then the finished rule once, under it (``identity`` None: a command that
    writes no result is never skipped). Skipped or refused, the folder is left as it was: a
    lock file or folders made for the claim are removed again. A folder whose lock cannot be
    made at all raises ``DaptInitError``. Claiming a folder this process holds is a no-op.
    """
    if holds(run_dir):
        return Claim(NOT_FINISHED, "")
    passed = os.environ.pop(LOCK_FD_ENV, "")
    if passed.isdigit():
        lock = RunLock.adopt(run_dir, int(passed))
        if lock is not None:  # the parent claimed this folder for this run
            lock.write_pid()
            _HELD[os.path.realpath(run_dir)] = _Held(lock, folder=_folder_id(run_dir))
            return Claim(NOT_FINISHED, "")
    made = _make_folders(run_dir)
    try:
        lock = RunLock(run_dir)
    except RunLocked as error:
        _remove_made(made)
        return Claim(RUNNING_ELSEWHERE, str(error))
    except BaseException:
        _remove_made(made)
        raise
    try:
        verdict = _finished(run_dir, identity)
    except BaseException:  # a damaged result.json: refused, and the folder left as it was
        lock.release(remove=lock.created)
        _remove_made(made)
        raise
    if verdict.status != NOT_FINISHED:
        lock.release(remove=lock.created)
        _remove_made(made)
        return Claim(verdict.status, verdict.message)
    lock.write_pid()
    _HELD[os.path.realpath(run_dir)] = _Held(lock, made, _folder_id(run_dir))
    return Claim(NOT_FINISHED, "", tuple(remove_stale_temporaries(run_dir)))


def lock_fd(run_dir: str) -> int | None:
    """The descriptor of the lock this process holds on ``run_dir`` (to pass to a child)."""
    held = _HELD.get(os.path.realpath(run_dir))
    return held.lock.fd if held is not None else None


def check_held(run_dir: str) -> None:
    """Raise when this process's lock on ``run_dir`` was lost (its lock file or the folder
    deleted): a second process could run there, so this one stops before writing more."""
    held = _HELD.get(os.path.realpath(run_dir))
    if held is None or held.lock.still_held():
        return
    if _folder_id(run_dir) != held.folder:  # gone, or made again by a later write
        raise DaptInitError(
            f"the run folder {run_dir} was deleted while the run went on (before its next "
            "checkpoint or result); the run stopped. Run the same command again: it trains "
            "from the start."
        )
    raise DaptInitError(
        f"the lock {held.lock.path} of this run folder was deleted or replaced while the run "
        "held it (or the folder itself was removed), so another process may be running there "
        "now; this run stopped without writing more. Check that no other process uses "
        f"{run_dir}, then run the same command again: it resumes from its last checkpoint."
    )


def release(run_dir: str, abandon: bool = False) -> None:
    """Let the folder go. ``abandon``: the run never started (building it failed), so the
    folders the claim made are removed again where nothing else was written into them."""
    held = _HELD.pop(os.path.realpath(run_dir), None)
    if held is None:
        return
    if abandon:
        only_lock = sorted(os.listdir(run_dir)) == [LOCK_FILE] if os.path.isdir(run_dir) else False
        held.lock.release(remove=held.lock.created and only_lock)
        _remove_made(held.made)
    else:
        held.lock.release()
