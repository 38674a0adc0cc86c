"""What the drop-in unit does for a host codebase's own train.py, which knows nothing of it.

A refused run ends with one ``error:`` line and exit status 2 (4 when another process holds
the run folder), as this repository's train.py ends, not with a traceback. A skipped or
refused run leaves its folder as it was: the log file the host's logger opened for this
process is closed and removed. This repository's train.py catches its errors itself and opens
its log only after the claim, so neither applies there.
"""
from __future__ import annotations

import os
import sys
from types import TracebackType

from .errors import DaptInitError

USER_ERROR, RUNNING_ELSEWHERE = 2, 4  # runstate's statuses (not imported: no cycle)


def install_excepthook() -> None:
    """Chain a hook for uncaught ``DaptInitError``s (other exceptions: the previous hook)."""
    previous = sys.excepthook
    if getattr(previous, "dapt_init", False):
        return

    def hook(kind: type[BaseException], error: BaseException,
             trace: TracebackType | None) -> None:
        if not issubclass(kind, DaptInitError):
            previous(kind, error, trace)
            return
        print("error: " + " ".join(str(error).split()), file=sys.stderr)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        # The interpreter would exit with 1 after a hook; the statuses are the scripts' contract.
        os._exit(RUNNING_ELSEWHERE if getattr(error, "running_elsewhere", False) else USER_ERROR)

    hook.dapt_init = True  # type: ignore[attr-defined]
    sys.excepthook = hook


def drop_fresh_log(run_dir: str) -> None:
    """Close and remove the log file this process's toolbox logger opened in ``run_dir``."""
    logger = sys.stdout
    log_file = getattr(logger, "file", None)
    name = getattr(log_file, "name", None)
    if not isinstance(name, str):
        return
    if os.path.dirname(os.path.abspath(name)) != os.path.abspath(run_dir):
        return
    sys.stdout = getattr(logger, "console", sys.__stdout__)
    logger.file = None
    log_file.close()
    os.remove(name)
