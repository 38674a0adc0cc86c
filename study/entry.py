"""How every command-line entry point ends (train.py, parse_test_res.py, python -m study, the
scripts' sweep, tools/*.py): ``sys.exit(run_main(main))``.

A reader that stops early (``... | head``) closes the pipe; the next write raises
BrokenPipeError, and Python would print a traceback and, at exit, an "Exception ignored"
flushing stdout. Here that ends the command quietly with 141 (128 + SIGPIPE, what a shell
reports for a command killed by a closed pipe): what was wanted was read.
"""
from __future__ import annotations

import os
import sys
from typing import Callable

BROKEN_PIPE = 141  # 128 + SIGPIPE


def run_main(main: Callable[[], int | None]) -> int | str | None:
    """``main()``'s exit status, or BROKEN_PIPE when its reader went away."""
    try:
        try:
            status = main()
        except SystemExit as done:  # argparse's --help and usage errors: flushed below too
            status = done.code
        sys.stdout.flush()  # inside the try: the last buffered lines may meet the closed pipe
        return status
    except BrokenPipeError:
        # Nothing more can reach the reader; stdout is pointed at /dev/null so that Python's
        # own flush at exit does not raise (and print) a second time.
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):  # stdout is no file (replaced): nothing to flush
            pass
        return BROKEN_PIPE
