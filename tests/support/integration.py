"""Helpers for the integration tests: tiny EuroSAT data, a small CLIP, real train.py runs."""
from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support import warm_runner
from tools.demo import demo_command, prepare

REPO = Path(__file__).resolve().parents[2]

# The environment of train.py runs, fixed when the tests start: runs with exactly this
# environment are forked from a warm runner (tests/support/warm_runner.py), others start cold.
RUN_ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore"}


_SMALL_CLIP: list[Path] = []  # this process's first small CLIP, copied into later workdirs


def prepared_workdir(path: Path) -> Path:
    """``path`` holding tiny EuroSAT-layout data and a small CLIP, as the demo makes them.
    The CLIP is drawn once per test process and copied after that (the same bytes: same
    seed, same file name)."""
    path.mkdir(parents=True, exist_ok=True)
    if _SMALL_CLIP and not (path / "small_clip.pt").exists():
        shutil.copyfile(_SMALL_CLIP[0], path / "small_clip.pt")
    prepare(path)
    if not _SMALL_CLIP:  # a private copy: a test may damage its workdir's CLIP on purpose
        folder = tempfile.mkdtemp(prefix="small_clip_")
        atexit.register(shutil.rmtree, folder, True)
        private = Path(folder) / "small_clip.pt"
        shutil.copyfile(path / "small_clip.pt", private)
        _SMALL_CLIP.append(private)
    return path


def run_train(args: list[str], cwd: Path = REPO, timeout: int = 240,
              cold: bool = False) -> subprocess.CompletedProcess:
    """``args`` run as ``subprocess.run`` runs them (output captured as text). A repository
    script started by this interpreter is forked from the warm runner unless ``cold``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore"}
    return warm_runner.run(args, cwd, env, timeout, warm_env=None if cold else RUN_ENV)


def warm_python() -> str:
    """An interpreter for the scripts' PYTHON=: ``python ARGS`` forked from the warm runner
    (tests/support/warm_python.py), or this interpreter itself under DAPT_TEST_COLD=1."""
    if os.environ.get(warm_runner.COLD_VARIABLE) == "1":
        return sys.executable
    return warm_runner.runner_for(RUN_ENV).python_wrapper


def train_command(workdir: Path, init: str, *opts: str, flags: tuple[str, ...] = (),
                  seed: int = 1, shots: int = 2, output_dir: Path | None = None) -> list[str]:
    """The demo's train.py command plus ``flags`` (before) and ``KEY VALUE`` ``opts`` (after)."""
    command = demo_command(workdir, init, seed, shots)
    first_opt = command.index("TRAINER.DAPT_INIT.INIT_METHOD")
    command = command[:first_opt] + list(flags) + command[first_opt:] + list(opts)
    if output_dir is not None:
        command[command.index("--output-dir") + 1] = str(output_dir)
    return command


def output_dir_of(command: list[str]) -> Path:
    return Path(command[command.index("--output-dir") + 1])


def read_result(run_dir: Path) -> dict:
    return json.loads((run_dir / "result.json").read_text())


def python() -> str:
    return sys.executable


# Runs train.py and kills the process (os._exit: no clean-up, as a kill would) right after
# the given epoch's after_epoch (its checkpoint saved).
_KILL_AFTER_EPOCH = (
    "import os, runpy, sys; stop = int(sys.argv[1]); sys.argv = sys.argv[2:]; "
    "sys.path.insert(0, os.getcwd()); "
    "import trainers.dapt_init.trainer as t; original = t.DAPT_Init.after_epoch\n"
    "def after_epoch(self):\n"
    "    original(self)\n"
    "    if self.epoch + 1 == stop: os._exit(9)\n"
    "t.DAPT_Init.after_epoch = after_epoch; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def run_killed_after_epoch(command: list[str], epoch: int) -> subprocess.CompletedProcess:
    """``command`` (a train.py command) killed once ``epoch`` is done; exit status 9."""
    return run_train([command[0], "-c", _KILL_AFTER_EPOCH, str(epoch)] + command[1:])
