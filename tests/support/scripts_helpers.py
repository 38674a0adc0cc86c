"""Shared by the script tests: running a script, and the stand-in for python (``Fake``) that
records each train.py command and leaves a finished run behind."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts" / "dapt_init"

# Environment the scripts read; cleared so the caller's shell cannot leak into a test.
SCRIPT_ENV = ("DATA_ROOT", "OUTPUT_ROOT", "SEEDS", "CFG", "LOAD_EPOCH", "PYTHON", "TARGETS",
              "DATASETS", "INITS", "SHOTS", "GPUS", "SWEEP_LOG_DIR", "SWEEP_JOB_NAME",
              "SWEEP_TIME", "SWEEP_CPUS", "SWEEP_MAX_PARALLEL", "SWEEP_SBATCH",
              "CUDA_VISIBLE_DEVICES", "SLURM_ARRAY_TASK_ID", "VIS_INIT", "VIS_INITS", "TAG",
              "EPOCHS", "TRIAL", "DEMO_DIR", "CODEBASE")

FAKE_PYTHON = r"""#!/usr/bin/env bash
# Stands in for python: tests/support/fake_train.py claims the run folder by the real rule (skips a
# finished run, refuses other settings), records the call (CUDA_VISIBLE_DEVICES|arguments) and
# leaves the result.json a finished run of the command would have; or fails with status 7 when
# FAKE_FAIL is in that folder.
# With FAKE_LOCKS it also holds a per-GPU lock while it runs and waits (up to 20 s) until
# FAKE_BARRIER calls have started, so a pool that ran jobs one after another would time out.
set -u
lock=""
if [[ -n "${FAKE_LOCKS:-}" ]]; then
    lock="$FAKE_LOCKS/gpu_${CUDA_VISIBLE_DEVICES-none}"
    if ! mkdir "$lock" 2>/dev/null; then
        echo "two jobs at once on GPU $CUDA_VISIBLE_DEVICES" >&2
        exit 3
    fi
    : >"$FAKE_LOCKS/started_$$"
    for ((n = 0; ; n++)); do
        started=("$FAKE_LOCKS"/started_*)
        ((${#started[@]} >= FAKE_BARRIER)) && break
        ((n < 400)) || { echo "no other job started alongside" >&2; rmdir "$lock"; exit 4; }
        sleep 0.05
    done
fi
shift  # train.py
status=0
"$REAL_PYTHON" "$FAKE_TRAIN" "$@" || status=$?
[[ -n "$lock" ]] && rmdir "$lock"
exit "$status"
"""


def run_script(name: str, *args: str, env: dict[str, str], cwd: Path,
               timeout: int = 60) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENV}
    full_env.update(PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore")
    full_env.update(env)
    return subprocess.run(["bash", str(SCRIPTS / name), *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def error_lines(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("error:")]


class Fake:
    """A temporary working area: data root, output root and the recording python."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.data.mkdir()
        self.out = root / "out"
        self.calls_file = root / "calls.log"
        self.python = root / "fake_python"
        self.python.write_text(FAKE_PYTHON)
        self.python.chmod(0o755)
        self.env = {"DATA_ROOT": str(self.data), "OUTPUT_ROOT": str(self.out),
                    "PYTHON": str(self.python), "FAKE_LOG": str(self.calls_file),
                    "REAL_PYTHON": sys.executable,
                    "FAKE_TRAIN": str(REPO / "tests" / "support" / "fake_train.py")}

    def run(self, name: str, *args: str, **env: str) -> subprocess.CompletedProcess:
        return run_script(name, *args, env={**self.env, **env}, cwd=self.root)

    def calls(self) -> list[tuple[str, list[str]]]:
        """(CUDA_VISIBLE_DEVICES, train.py arguments) of each recorded call."""
        if not self.calls_file.exists():
            return []
        rows = [line.split("|", 1) for line in self.calls_file.read_text().splitlines()]
        return [(gpu, args.split(" ")) for gpu, args in rows]

    def finish(self, script: str, *args: str, **env: str) -> None:
        """Finished runs, as the script leaves them (the calls are not kept)."""
        done = self.run(script, *args, **env)
        assert done.returncode == 0, done.stderr
        self.calls_file.unlink()


def arg(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


@pytest.fixture()
def fake(tmp_path) -> Fake:
    return Fake(tmp_path)


# ------------------------------------------------------------------------------ bad input


def wait_for(path: Path, process: subprocess.Popen, seconds: float = 120) -> None:
    """Until ``path`` exists, waiting on ``process`` meanwhile (fails at once if it ends)."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear within {seconds} s"
        try:
            process.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            continue
        out, err = process.communicate()
        pytest.fail(f"exited with status {process.returncode} before {path} appeared:\n"
                    f"{out}\n{err}")
