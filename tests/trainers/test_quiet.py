"""Quiet until it matters: a command refused while the trainer is built prints its one error
line, not the ~190-line config dump, and no third-party warning (in the user's environment:
no PYTHONWARNINGS, no OUTDATED_IGNORE, which the other tests set)."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.support.integration import REPO
from tests.support.toolbox import requires_toolbox


@requires_toolbox
def test_a_run_refused_while_building_prints_its_line_without_the_config(tmp_path):
    (tmp_path / "empty").mkdir()
    weights = tmp_path / "clip.pt"
    weights.write_bytes(b"")  # never read: the data is found missing first
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "OUTDATED_IGNORE")}
    done = subprocess.run(
        [sys.executable, "train.py", "--root", str(tmp_path / "empty"), "--seed", "1",
         "--trainer", "DAPT_Init", "--dataset-config-file", "configs/datasets/eurosat.yaml",
         "--config-file", "configs/trainers/DAPT_Init/demo_small.yaml",
         "--output-dir", str(tmp_path / "out"), "DATASET.NUM_SHOTS", "1", "USE_CUDA", "False",
         "TRAINER.DAPT_INIT.CLIP_WEIGHTS", str(weights)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "** Config **" not in done.stdout and "** Arguments **" not in done.stdout
    assert len(done.stdout.splitlines()) <= 5, done.stdout  # the toolbox's progress lines
    [line] = done.stderr.splitlines()
    assert line.startswith("error: EuroSAT: data not found") and "Fix:" in line
    assert not (tmp_path / "out").exists()
