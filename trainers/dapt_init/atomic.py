"""Write files so that a killed process leaves either the old file or the new one."""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Callable

import torch


def write_atomically(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it over."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp_path = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    os.close(handle)
    try:
        write(tmp_path)
        with open(tmp_path, "rb") as written:
            os.fsync(written.fileno())  # on disk before the rename makes it visible
        os.chmod(tmp_path, 0o666 & ~_current_umask())  # mkstemp makes 0600; match open()
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def torch_save_atomically(obj: Any, path: str) -> None:
    write_atomically(path, lambda tmp: torch.save(obj, tmp))


def json_dump_atomically(obj: Any, path: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w") as file:
            json.dump(obj, file, indent=2, sort_keys=True)
            file.write("\n")

    write_atomically(path, write)
