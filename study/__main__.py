"""python -m study COMMAND ...: the scripts of scripts/dapt_init/ (each is one line calling it).

  main DATASET INIT SHOTS [GPU] [--dry-run] [-- KEY VALUE ...]       main.sh
  eval INIT SHOTS [GPU] [--dry-run] [-- KEY VALUE ...]               eval.sh
  base2new_train | base2new_test DATASET INIT [GPU] [--dry-run] ...  base2new_*.sh
  sweep [--dry-run | --slurm] [--grid KEY=V1,V2 ...] [-- KEY VALUE ...]   sweep.sh
  job WORD...             one sweep job (a SLURM task): runs main.sh for it
Each says more with --help.
"""
from __future__ import annotations

import os
import signal
import sys

from .plan import UsageError
from .scripts import SCRIPTS, script_main
from .run import StudyError


class Stopped(KeyboardInterrupt):
    """SIGHUP or SIGTERM while the sweep plans (args: the signal's number)."""


def _stop(number: int, _frame) -> None:
    raise Stopped(number)


def main(argv: list[str]) -> int:
    caller = os.environ.get("DAPT_CALLER_DIR") or os.getcwd()
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    from .help import USAGE

    usage = USAGE.get("sweep" if command == "job" else command, "")
    try:
        if command in SCRIPTS:
            return script_main(command, rest, os.environ, caller)
        if command in ("sweep", "job"):
            from .sweep import job_main, sweep_main

            # Before the pool runs (it has its own handlers): a closed terminal (SIGHUP) or a
            # SIGTERM stops the planning as Ctrl-C does, with one line and 128 + the signal.
            for number in (signal.SIGHUP, signal.SIGTERM):
                if signal.getsignal(number) != signal.SIG_IGN:  # nohup's stays ignored
                    signal.signal(number, _stop)
            try:
                return (sweep_main if command == "sweep" else job_main)(rest, os.environ, caller)
            except KeyboardInterrupt as stop:
                number = stop.args[0] if isinstance(stop, Stopped) else signal.SIGINT
                print(f"error: interrupted ({signal.Signals(number).name}); no job was running",
                      file=sys.stderr)
                return 128 + number
        asked = command in ("", "-h", "--help")
        print(__doc__, file=sys.stdout if asked else sys.stderr)
        return 0 if asked else 2
    except StudyError as error:
        if isinstance(error, UsageError) and usage:
            print(f"usage: {usage}", file=sys.stderr)
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    from .entry import run_main

    sys.exit(run_main(lambda: main(sys.argv[1:])))
