"""Where the report goes: a folder that is empty, new, or a previous report of ours, and every
file written whole or not at all (issue 25, family 4).

A report folder carries MARKER, listing the files it wrote. A non-empty folder without it is a
user's folder: refused, nothing touched. Each file is written to a temporary name beside its
target, flushed to disk and renamed over it, so a full disk or a kill leaves the previous file,
never a truncated one; the marker is written before the first file (the folder is claimed) and
again after the last (the list of what this report wrote).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

MARKER = ".dapt_init_report"
MARKER_FORMAT = "dapt_init.report/1"
TMP_PREFIX = ".tmp-report-"


class OutputError(Exception):
    """The folder cannot take the report; the message names the problem and the fix."""


def _is_ours(folder: Path) -> tuple[bool, list[str]]:
    """(the folder is a report of ours, the files it lists)."""
    try:
        record = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return False, []
    if not isinstance(record, dict) or record.get("format") != MARKER_FORMAT:
        return False, []
    files = record.get("files")
    names = [f for f in files if isinstance(f, str) and "/" not in f and f not in ("", ".", "..")]\
        if isinstance(files, list) else []
    return True, names


def write_atomically(path: Path, data: bytes) -> None:
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=TMP_PREFIX)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())  # on disk before the rename makes it visible
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)  # a symlink at ``path`` is replaced, never written through
    except BaseException:
        if os.path.lexists(tmp):
            os.remove(tmp)
        raise


class ReportFolder:
    """Claim ``folder`` (refusing a user's), then ``write`` each file, then ``finish``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.previous: list[str] = []
        self.written: list[str] = []

    def check(self) -> None:
        """Refuse before any work: a file, a non-folder, or a non-empty folder not ours."""
        folder = self.folder
        if folder.is_symlink() and not folder.exists():
            raise OutputError(f"--out {folder} is a symbolic link to nothing (dangling, or a "
                              "loop); remove it or give another folder.")
        ancestor = folder.parent
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise OutputError(f"--out {folder}: {ancestor} is not a folder; give a folder "
                              "whose parents are folders.")
        if folder.exists() and not folder.is_dir():
            raise OutputError(f"--out {folder} exists and is not a folder; give a new or "
                              "empty folder.")
        if not folder.is_dir():
            return
        try:
            entries = sorted(p.name for p in folder.iterdir())
        except OSError as error:
            raise OutputError(f"--out {folder}: cannot list it ({error.strerror}).") from None
        ours, self.previous = _is_ours(folder)
        if entries and not ours:
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            raise OutputError(f"--out {folder} is not empty and holds no earlier report "
                              f"({shown}); nothing was written: give a new or empty folder.")

    def claim(self) -> None:
        self.check()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write_marker(sorted(set(self.previous)))

    def write(self, name: str, data: bytes | str) -> Path:
        path = self.folder / name
        write_atomically(path, data.encode() if isinstance(data, str) else data)
        self.written.append(name)
        return path

    def finish(self) -> None:
        """Record what this report wrote; files an earlier report of ours wrote and this one
        did not (a figure it could not make now) are removed, so no stale figure remains."""
        for name in set(self.previous) - set(self.written):
            stale = self.folder / name
            if stale.is_file() or stale.is_symlink():
                stale.unlink()
        self._write_marker(self.written)

    def _write_marker(self, files: list[str]) -> None:
        write_atomically(self.folder / MARKER,
                         (json.dumps({"format": MARKER_FORMAT, "files": files}, indent=1)
                          + "\n").encode())
