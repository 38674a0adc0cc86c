"""Run train.py and SIGKILL it at exact points (for the tests only).

    python tests/support/killer.py --report OUT.json --step "OPTIONS" [--step "OPTIONS" ...] \
        -- TRAIN.PY ARGS...

Each step is one train.py process: this driver imports train.py and the toolbox once, then
forks a child per step that runs ``train.run(ARGS)`` with the step's OPTIONS installed, waits
for it and records its exit (-9 when killed), then the run folder's checkpoint files, resume
pointer and result, in OUT.json. Children are separate processes that share nothing but what
is on disk, like the same command re-run after ``kill -9`` (the fork only saves re-importing
torch in every step). OPTIONS:

  --kill POINT         SIGKILL the process at POINT (no clean-up, no ``finally``)
  --spawn POINT FILE   at POINT run the same train.py command as a new interpreter, while this
                       one holds the run folder; record its exit status, output and the run
                       folder's files before and after it in FILE

POINT is ``replace:<name>`` (the first ``os.replace`` onto a file called <name>, before it
renames: the temporary file is written, the target not yet replaced) or
``call:<Class.method>:<n>`` (the n-th call of a ``DAPT_Init`` method, on entry). Product code
is not modified.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def snapshot(folder: str) -> dict[str, int]:
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            out[os.path.relpath(path, folder)] = os.stat(path).st_mtime_ns
    return out


def at_call(spec: str, action) -> None:
    """Patch ``DAPT_Init.<method>`` to call ``action(args)`` on its n-th call."""
    import trainers.dapt_init.trainer as trainer_module

    _, method, nth = spec.split(":")
    owner = trainer_module.DAPT_Init
    name = method.split(".")[-1]
    original = getattr(owner, name)
    calls = {"n": 0}

    def patched(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == int(nth):
            action(self)
        return original(self, *args, **kwargs)

    setattr(owner, name, patched)


def at_replace(spec: str, action) -> None:
    target = spec.split(":", 1)[1]
    original = os.replace

    def patched(src, dst, *args, **kwargs):
        if os.path.basename(os.fspath(dst)) == target:
            action(None)
        return original(src, dst, *args, **kwargs)

    os.replace = patched


def install(spec: str, action) -> None:
    (at_replace if spec.startswith("replace:") else at_call)(spec, action)


def install_options(options: list[str], train_args: list[str], output_dir: str) -> None:
    options = list(options)
    while options:
        flag = options.pop(0)
        if flag == "--kill":
            install(options.pop(0), lambda _: die())
        elif flag == "--spawn":
            spec, out_json = options.pop(0), options.pop(0)

            def spawn(_, out_json=out_json):
                before = snapshot(output_dir)
                done = subprocess.run([sys.executable, str(REPO / "train.py"), *train_args],
                                      capture_output=True, text=True, cwd=REPO)
                Path(out_json).write_text(json.dumps({
                    "returncode": done.returncode, "stdout": done.stdout,
                    "stderr": done.stderr, "holder_pid": os.getpid(),
                    "before": before, "after": snapshot(output_dir)}))

            install(spec, spawn)
        else:
            raise SystemExit(f"unknown option {flag}")


def run_step(options: list[str], train_args: list[str], output_dir: str) -> int:
    """One train.py process (forked); its exit status, or -signal when killed."""
    from tests.support.host_driver import run_forked

    def body() -> int:
        install_options(options, train_args, output_dir)
        import train

        return train.run(train_args)

    return run_forked(body)


def folder_state(output_dir: str) -> dict:
    folder = os.path.join(output_dir, "prompt_learner")
    pointer = os.path.join(folder, "checkpoint")
    return {
        "files": sorted(os.listdir(folder)) if os.path.isdir(folder) else [],
        "pointer": Path(pointer).read_text().strip() if os.path.isfile(pointer) else None,
        "result": os.path.isfile(os.path.join(output_dir, "result.json")),
    }


def main() -> int:
    argv = sys.argv[1:]
    split = argv.index("--")
    options, train_args = argv[:split], argv[split + 1:]
    if train_args and train_args[0].endswith("train.py"):
        train_args = train_args[1:]
    output_dir = train_args[train_args.index("--output-dir") + 1]
    report, steps = None, []
    while options:
        flag = options.pop(0)
        if flag == "--report":
            report = options.pop(0)
        elif flag == "--step":
            steps.append(shlex.split(options.pop(0)))
        else:
            raise SystemExit(f"unknown option {flag}")
    # Imported once here; every step's process starts from this state, as a fresh train.py.
    import datasets.classes  # noqa: F401
    import train  # noqa: F401
    import trainers.dapt_init.trainer  # noqa: F401
    from dassl.engine import build_trainer  # noqa: F401

    records = []
    for step in steps:
        records.append({"step": step, "status": run_step(step, train_args, output_dir),
                        **folder_state(output_dir)})
    Path(report).write_text(json.dumps(records, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
