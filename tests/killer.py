"""Run train.py in this process and SIGKILL it at an exact point (for the tests only).

    python tests/killer.py [--kill POINT] [--spawn POINT OUT_JSON] -- TRAIN.PY ARGS...

POINT is ``replace:<name>`` (the first ``os.replace`` onto a file called <name>, killed before
it renames: the temporary file is written, the target not yet replaced) or
``call:<Class.method>:<n>`` (the n-th call of a ``DAPT_Init`` method, killed on entry). The
kill is a real ``SIGKILL`` of this process: no clean-up, no ``finally``, as ``kill -9`` or a
pre-empted node. ``--spawn`` runs the same train.py command in a second process at POINT
(while this one holds the run folder), records its exit status, output and the run folder's
files before and after it in OUT_JSON, then carries on. Product code is not modified.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
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


def main() -> int:
    argv = sys.argv[1:]
    split = argv.index("--")
    options, train_args = argv[:split], argv[split + 1:]
    if train_args and train_args[0].endswith("train.py"):
        train_args = train_args[1:]
    output_dir = train_args[train_args.index("--output-dir") + 1]
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
    import train

    return train.run(train_args)


if __name__ == "__main__":
    sys.exit(main())
