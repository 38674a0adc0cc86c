"""Run codebases' own train.py (and other scripts) several times from one interpreter (for the
tests only).

    python /path/tests/support/host_driver.py PLAN.json

PLAN.json: {"hosts": [{"root": DIR, "runs": [RUN, ...], "report": FILE}, ...]}, each RUN
{"argv": [...], "script": "train.py" (the default) or another script of the root,
"log": FILE (stdout and stderr) or "stdout": FILE and "stderr": FILE, "kill_after_epoch": N or
null}.

The driver imports once what every codebase imports and none owns (torch, torchvision, the
installed toolbox) and computes the toolbox's system report once. Then, for each host in turn,
it forks a child that does what ``cd ROOT && python train.py`` does before its main block:
``ROOT`` first on ``sys.path`` (in place of this file's folder) and the working directory,
then the codebase's ``train.py`` imported once (not as ``__main__``: its imports only, its
trainers, datasets and clip, from ``ROOT``). That child forks one grandchild per run, which
executes the run's script as ``__main__`` with the run's arguments, exactly what
``python SCRIPT ARGS`` does after the imports. ``kill_after_epoch`` ends the run with
``os._exit(9)`` (no clean-up, as a kill) right after that epoch's checkpoint is written.

Each host's report: {"statuses": [exit status of each run], "misplaced": [...]}, where
misplaced lists every module the host's process imported that is not the host's own although
the host has it (a module of a top-level name ``ROOT`` holds, loaded from elsewhere) or that
comes from another root of the plan: a host run must never use this repository's trainers or
another host's. The driver exits non-zero if a host's child does. Codebases' files are not
modified.
"""
from __future__ import annotations

import json
import os
import runpy
import sys
import traceback
from pathlib import Path
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


def compute_system_report_once() -> None:
    """The toolbox's system report (train.py prints it into every run's log) runs ~11
    subprocesses, 'pip list' among them: seconds per run, and the same text for every run of
    this interpreter. The toolbox computes it here once; each run forked after prints that."""
    import dassl.utils
    import dassl.utils.tools

    report = dassl.utils.tools.collect_env_info()
    dassl.utils.collect_env_info = dassl.utils.tools.collect_env_info = lambda: report


def _redirect(path: str, *fds: int) -> None:
    out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    for fd in fds:
        os.dup2(out, fd)
    os.close(out)


def run_child(run: dict) -> int:
    def body() -> int:
        if "log" in run:
            _redirect(run["log"], 1, 2)
        else:
            _redirect(run["stdout"], 1)
            _redirect(run["stderr"], 2)
        if run.get("kill_after_epoch"):
            kill_after(run["kill_after_epoch"])
        script = run.get("script", "train.py")
        sys.argv = [script, *run["argv"]]
        runpy.run_path(script, run_name="__main__")
        return 0

    return run_forked(body)


def _under(path: str | None, folder: Path) -> bool:
    if not path:
        return False
    return Path(os.path.realpath(path)).is_relative_to(folder)


def misplaced_modules(root: Path, other_roots: list[Path]) -> list[str]:
    """Modules of this process that a run of ``root``'s codebase must not use: a module whose
    top-level name ``root`` holds (a package or a ``.py``) loaded from elsewhere, and a module
    loaded from one of ``other_roots``. Each as 'NAME (FILE)'."""
    own = {p.stem if p.suffix == ".py" else p.name for p in root.iterdir()
           if p.suffix == ".py" or (p / "__init__.py").is_file()}
    found = []
    for name, module in list(sys.modules.items()):
        if module is sys.modules["__main__"]:  # this driver (multiprocessing's __mp_main__ too)
            continue
        where = getattr(module, "__file__", None)
        paths = [where] if where else list(getattr(module, "__path__", None) or [])
        if name.split(".")[0] in own and not all(_under(p, root) for p in paths):
            found.append(f"{name} ({', '.join(map(str, paths)) or 'no file'})")
        elif any(_under(p, other) for p in paths for other in other_roots):
            found.append(f"{name} ({', '.join(map(str, paths))})")
    return sorted(found)


def serve_host(host: dict, roots: list[Path]) -> None:
    """In the host's forked child: its imports, its runs, its report."""
    root = Path(os.path.realpath(host["root"]))
    os.chdir(root)
    sys.path[0] = str(root)  # as 'python train.py' has it: the script's folder first
    runpy.run_path("train.py", run_name="host_train")  # the codebase's imports, once
    misplaced = misplaced_modules(root, [r for r in roots if r != root])
    statuses = [run_child(run) for run in host["runs"]]
    with open(host["report"], "w") as report:
        json.dump({"statuses": statuses, "misplaced": misplaced}, report)


def main() -> int:
    with open(sys.argv[1]) as plan_file:
        plan = json.load(plan_file)
    roots = [Path(os.path.realpath(host["root"])) for host in plan["hosts"]]
    # What every codebase's train.py imports and none of them owns: the installed torch,
    # torchvision and toolbox (the toolbox's engine brings its data, modeling, optim, ...).
    import torch  # noqa: F401
    import torchvision  # noqa: F401
    import dassl.config  # noqa: F401
    import dassl.engine  # noqa: F401

    compute_system_report_once()
    failed = 0
    for host in plan["hosts"]:
        status = run_forked(lambda: serve_host(host, roots) or 0)
        if status != 0:
            print(f"host_driver: {host['root']}: its process ended with {status}",
                  file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
