"""python -m study COMMAND ...: what the bash scripts ask, and the sweep.

  plan SCRIPT ARG...      (main, eval, base2new_train, base2new_test) checks a script's
                          arguments and environment and prints its runs as shell assignments
  folder KIND DATASET INIT VIS_INIT CONFIG SHOTS SEED [TAG]   a run's folder under OUTPUT_ROOT
  config DATASET SHOTS    the trainer config DAPT uses (CFG wins)
  sweep [--dry-run | --slurm] [--grid KEY=V1,V2 ...] [-- KEY VALUE ...]   the study
  job WORD...             one sweep job (a SLURM task): runs main.sh for it
"""
from __future__ import annotations

import os
import signal
import sys

from .plan import UsageError, bash_quote
from .spec import RunSpec, StudyError, choose_config


def shell_assign(name: str, value: str | list[str]) -> str:
    if isinstance(value, list):
        return f"{name}=(" + " ".join(bash_quote(w) for w in value) + ")"
    return f"{name}={bash_quote(value)}"


class Stopped(KeyboardInterrupt):
    """SIGHUP or SIGTERM while the sweep plans (args: the signal's number)."""


def _stop(number: int, _frame) -> None:
    raise Stopped(number)


def main(argv: list[str]) -> int:
    caller = os.environ.get("DAPT_CALLER_DIR") or os.getcwd()
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    usage = ""
    try:
        if command == "plan":
            from .scripts import plan_script
            from .help import USAGE

            usage = USAGE.get(rest[0], "") if rest else ""
            print(plan_script(rest[0], rest[1:], os.environ, caller))
        elif command == "folder":
            kind, dataset, init, vis, config, shots, seed, *tag = rest
            spec = RunSpec(kind, dataset, init, vis, config, int(shots), int(seed),
                           tag[0] if tag else "")
            spec.check()
            print(spec.folder(os.environ.get("OUTPUT_ROOT") or "output"))
        elif command == "config":
            print(choose_config(rest[0], int(rest[1]), os.environ.get("CFG", "")))
        elif command in ("sweep", "job"):
            from .sweep import job_main, sweep_main
            from .help import USAGE

            usage = USAGE["sweep"]
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
        else:
            asked = command in ("", "-h", "--help")
            print(__doc__, file=sys.stdout if asked else sys.stderr)
            return 0 if asked else 2
    except StudyError as error:
        if isinstance(error, UsageError) and usage:
            print(f"usage: {usage}", file=sys.stderr)
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (ValueError, IndexError) as error:  # a wrong word count or number to a subcommand
        print(f"error: {command}: bad arguments ({error}); see python -m study --help",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    from .entry import run_main

    sys.exit(run_main(lambda: main(sys.argv[1:])))
