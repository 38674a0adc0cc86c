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
import sys

from .plan import UsageError
from .scripts import SCRIPTS, script_main
from .run import StudyError


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

            try:
                return (sweep_main if command == "sweep" else job_main)(rest, os.environ, caller)
            except KeyboardInterrupt:  # Ctrl-C before the pool runs (it has its own handler)
                print("error: interrupted (SIGINT); no job was running", file=sys.stderr)
                return 130
        print(__doc__, file=sys.stderr if command else sys.stdout)
        return 2 if command else 0
    except StudyError as error:
        if isinstance(error, UsageError) and usage:
            print(f"usage: {usage}", file=sys.stderr)
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
