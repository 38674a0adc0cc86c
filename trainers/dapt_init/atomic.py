"""Write files so that a killed process leaves either the old file or the new one."""
from __future__ import annotations

import io
import json
import os
import tempfile
from typing import Any, Callable

from .run_folder import TMP_PREFIX


def write_atomically(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it over."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp_path = tempfile.mkstemp(dir=folder, prefix=TMP_PREFIX,
                                        suffix=os.path.basename(path))
    os.close(handle)
    try:
        try:
            write(tmp_path)
        except OSError as error:
            if error.filename is None:  # a buffered write names no file: name the target
                raise OSError(error.errno, error.strerror, path) from None
            raise
        with open(tmp_path, "rb") as written:
            os.fsync(written.fileno())  # on disk before the rename makes it visible
        os.chmod(tmp_path, 0o666 & ~_current_umask())  # mkstemp makes 0600; match open()
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def unused_path(path: str) -> str:
    """``path``, or ``path-1``, ``path-2``, ... : the first name no file has, so a file kept
    aside (an earlier result or log) never replaces another kept in the same second."""
    candidate, number = path, 0
    while os.path.lexists(candidate):
        number += 1
        candidate = f"{path}-{number}"
    return candidate


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def torch_save_atomically(obj: Any, path: str) -> None:
    # Serialised in memory first, then written as plain bytes: a full disk then raises
    # OSError(ENOSPC) naming the file, where torch.save's own writer raises a RuntimeError.
    # torch is imported here, not at the top: the parser and the scripts' planner read run
    # records through this module and start in a fraction of a second without it.
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as file:
            file.write(buffer.getbuffer())

    write_atomically(path, write)


def json_dump_atomically(obj: Any, path: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w") as file:
            json.dump(obj, file, indent=2, sort_keys=True)
            file.write("\n")

    write_atomically(path, write)
