"""Helpers for the integration tests: tiny EuroSAT data, a small CLIP, real train.py runs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tools.demo import demo_command, prepare

REPO = Path(__file__).resolve().parent.parent


def prepared_workdir(path: Path) -> Path:
    """``path`` holding tiny EuroSAT-layout data and a small CLIP, as the demo makes them."""
    prepare(path)
    return path


def run_train(args: list[str], cwd: Path = REPO, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


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
