"""A host's study is DAPT's study: in the real codebases of ``../shared/hosts/``, the host's own
``train.py`` (after ``tools/dropin.py``) trains EuroSAT with DAPT's published LR and betas when
neither its dataset yaml nor the command sets them, takes an integer for a decimal key, and
prints no third-party warning. What the run used is read back from its checkpoint (the
optimizer's initial LR) and its result.json, not from its log alone.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import torch
import yaml

from tests.support.integration import prepared_workdir, python
from tests.end_to_end.test_hosts import HOSTS, HOSTS_SKIP_REASON
from tests.support.toolbox import requires_toolbox

pytestmark = [requires_toolbox, pytest.mark.skipif(not HOSTS, reason=HOSTS_SKIP_REASON),
              pytest.mark.hosts]

# EuroSAT's values in DAPT's configs, typed independently of trainers/dapt_init/dapt_values.py.
DAPT_EUROSAT_LR, DAPT_EUROSAT_TXT_BETA = 20.0, 10.0
COMMAND_VIS_BETA = "50"  # an integer for a decimal key, set by the command: kept, as 50.0


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return prepared_workdir(tmp_path_factory.mktemp("host_values_work"))


@pytest.mark.parametrize("host", HOSTS, ids=[h.name for h in HOSTS])
def test_a_host_run_trains_with_dapts_values_for_the_keys_the_command_left(host, work,
                                                                           tmp_path):
    with tarfile.open(host.archive) as archive:
        archive.extractall(tmp_path, filter="data")
    (root,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    dropin = subprocess.run([python(), str(Path(__file__).resolve().parents[2] / "tools/dropin.py"),
                             str(root)], capture_output=True, text=True, timeout=120)
    assert dropin.returncode == 0, dropin.stderr
    assert "data set values: runs of the 15 data sets DAPT published values for" in dropin.stdout
    data = tmp_path / "data"
    shutil.copytree(work / "data", data)
    out = tmp_path / "out"
    argv = [python(), "train.py", "--root", str(data), "--seed", "1", "--trainer", "DAPT_Init",
            "--dataset-config-file", "configs/datasets/eurosat.yaml",
            "--config-file", "configs/trainers/DAPT_Init/demo_small.yaml",
            "--output-dir", str(out), "DATASET.NUM_SHOTS", "1", "USE_CUDA", "False",
            "OPTIM.MAX_EPOCH", "1", "TRAINER.DAPT_INIT.VIS_BETA", COMMAND_VIS_BETA,
            "TRAINER.DAPT_INIT.CLIP_WEIGHTS", str(work / "small_clip.pt")]
    # The user's environment: no PYTHONWARNINGS, no OUTDATED_IGNORE (the tests' other runs set
    # them); warnings shown as Python shows them by default.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "OUTDATED_IGNORE")}
    done = subprocess.run(argv, cwd=root, env={**env, "PYTHONUNBUFFERED": "1"},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Warning" not in done.stderr and "warn(" not in done.stderr, done.stderr[-3000:]
    said = [line for line in done.stdout.splitlines() if line.startswith("DAPT_Init: EuroSAT")]
    # DAPT's own codebase's eurosat.yaml sets OPTIM.LR 20 itself (its betas are its own
    # trainer's keys): only what nothing set is applied and named.
    host_yaml = yaml.safe_load((root / "configs/datasets/eurosat.yaml").read_text())
    named = ([] if "LR" in host_yaml.get("OPTIM", {}) else ["OPTIM.LR 20"])
    named.append("TRAINER.DAPT_INIT.TXT_BETA 10")
    assert said == [f"DAPT_Init: EuroSAT trains with DAPT's published {' '.join(named)} (no "
                    "config file and no command-line value set them; give another value on "
                    "the command line or in the dataset config to train with it)"]
    checkpoint = torch.load(out / "prompt_learner" / "model.pth.tar-1", map_location="cpu",
                            weights_only=True)
    groups = checkpoint["optimizer"]["param_groups"]
    assert [group["initial_lr"] for group in groups] == [DAPT_EUROSAT_LR] * len(groups)
    keys = json.loads((out / "result.json").read_text())["fingerprint_keys"]
    assert keys["OPTIM.LR"] == DAPT_EUROSAT_LR
    assert keys["TRAINER.DAPT_INIT.VIS_BETA"] == float(COMMAND_VIS_BETA)
    assert keys["TRAINER.DAPT_INIT.TXT_BETA"] == DAPT_EUROSAT_TXT_BETA
