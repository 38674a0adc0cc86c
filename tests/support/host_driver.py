"""Run a codebase's own train.py several times from one interpreter (for the tests only).

    cd HOST && python /path/tests/support/host_driver.py PLAN.json

PLAN.json: {"runs": [{"argv": [...], "log": "FILE", "kill_after_epoch": N or null}, ...],
"report": "FILE"}. The driver imports the codebase's ``train.py`` once (not as ``__main__``:
its imports only, torch, the toolbox, its trainers and clip), then forks one child per run
that executes ``train.py`` as ``__main__`` with the run's arguments, exactly what
``python train.py ARGS`` does after the imports. ``kill_after_epoch`` ends the child with
``os._exit(9)`` (no clean-up, as a kill) right after that epoch's checkpoint is written. The
report lists each run's exit status. The codebase's files are not modified.
"""
from __future__ import annotations

import json
import os
import runpy
import sys
import traceback
from typing import Callable


def kill_after(epoch: int) -> None:
    import trainers.dapt_init.trainer as module

    original = module.DAPT_Init.after_epoch

    def after_epoch(self):
        original(self)
        if self.epoch + 1 == epoch:
            sys.stdout.flush()
            os._exit(9)

    module.DAPT_Init.after_epoch = after_epoch


def run_forked(body: Callable[[], int]) -> int:
    """``body()`` in a forked child, as a fresh process would run it after the imports; its
    exit status, or -signal when it was killed. A crash ends the child, never the caller."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = body()
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        except BaseException:  # noqa: B902
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def run_child(run: dict) -> int:
    def body() -> int:
        log = os.open(run["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(log, 1)
        os.dup2(log, 2)
        if run.get("kill_after_epoch"):
            kill_after(run["kill_after_epoch"])
        sys.argv = ["train.py", *run["argv"]]
        runpy.run_path("train.py", run_name="__main__")
        return 0

    return run_forked(body)


def main() -> int:
    with open(sys.argv[1]) as plan_file:
        plan = json.load(plan_file)
    sys.path.insert(0, os.getcwd())
    runpy.run_path("train.py", run_name="host_train")  # the imports, once
    # The toolbox's system report (every run prints it) runs ~11 subprocesses, 'pip list'
    # among them: seconds per run, the same text for every run of this interpreter. The
    # toolbox computes it once here; each run prints that text.
    import dassl.utils
    import dassl.utils.tools

    report = dassl.utils.tools.collect_env_info()
    dassl.utils.collect_env_info = dassl.utils.tools.collect_env_info = lambda: report
    statuses = [run_child(run) for run in plan["runs"]]
    with open(plan["report"], "w") as report:
        json.dump(statuses, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
