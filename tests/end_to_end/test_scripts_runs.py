"""The scripts with the real train.py on tiny generated data and a small random CLIP:
kill / resume, skip, the recorded spec, a grid sweep, base-to-new and cross-dataset eval."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.support.integration import warm_python
from tests.support.scripts_helpers import run_script
from tests.support.toolbox import requires_toolbox

# ------------------------------------------------------------- real train.py (needs Dassl)

KILLER = r"""
import os, runpy, sys
# Run train.py, but die (os._exit, no clean-up) right after epoch 1 is checkpointed.
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))
import trainers.dapt_init.trainer as t
original = t.DAPT_Init.after_epoch
def after_epoch(self):
    original(self)
    if self.epoch == 0:
        os._exit(9)
t.DAPT_Init.after_epoch = after_epoch
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """Tiny EuroSAT / ImageNet / ImageNetV2 data, a small CLIP, and the run environment."""
    from tools.small_clip import save_small_clip
    from tools.tiny_data import make_tiny_eurosat, make_tiny_imagenet, make_tiny_imagenetv2

    root = tmp_path_factory.mktemp("scripts")
    for make in (make_tiny_eurosat, make_tiny_imagenet, make_tiny_imagenetv2):
        make(root / "data")
    clip = save_small_clip(str(root / "small_clip.pt"))
    killer = root / "killer.py"
    killer.write_text(KILLER)
    wrapper = root / "killing_python"
    # The warm interpreter runs the killer as -c code (a file outside the repository is cold).
    wrapper.write_text(f'#!/usr/bin/env bash\nexec "{warm_python()}" -c "$(cat "{killer}")" "$@"\n')
    wrapper.chmod(0o755)
    return {
        "root": root,
        "env": {"DATA_ROOT": str(root / "data"), "OUTPUT_ROOT": str(root / "out"),
                "PYTHON": warm_python()},
        "killing_python": str(wrapper),
        # The small model on a CPU, for 2 epochs, with the trainer config main.sh chooses.
        "small": ["--", "TRAINER.DAPT_INIT.CLIP_WEIGHTS", clip, "INPUT.SIZE", "(32, 32)",
                  "DATALOADER.NUM_WORKERS", "0", "USE_CUDA", "False", "OPTIM.MAX_EPOCH", "2"],
    }


def log_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("log.txt*"))


@pytest.fixture(scope="module")
def main_runs(tiny) -> dict:
    """main.sh eurosat diff 1: seed 1 killed after epoch 1, then all three seeds by main.sh."""
    runs = tiny["root"] / "out/eurosat/DAPT_Init/diff/vit_b16_ep50_1shots"
    killed = run_script("main.sh", "eurosat", "diff", "1", *tiny["small"], cwd=tiny["root"],
                        env={**tiny["env"], "SEEDS": "1 2", "PYTHON": tiny["killing_python"]},
                        timeout=240)
    seed2_after_kill = (runs / "seed2").exists()
    finished = run_script("main.sh", "eurosat", "diff", "1", *tiny["small"], cwd=tiny["root"],
                          env=tiny["env"], timeout=240)
    return {"runs": runs, "killed": killed, "finished": finished,
            "seed2_after_kill": seed2_after_kill}


@requires_toolbox
def test_main_stops_at_a_killed_run_and_a_rerun_resumes_it(main_runs):
    runs, killed, finished = main_runs["runs"], main_runs["killed"], main_runs["finished"]
    # The killed run stopped main.sh with its status, before seed 2 started.
    assert killed.returncode == 9, killed.stderr[-2000:]
    assert "error: exit status 9 from the run in" in killed.stderr
    assert not main_runs["seed2_after_kill"]

    assert finished.returncode == 0, finished.stderr[-2000:]
    assert f"unfinished run in {runs}/seed1: running it again" in finished.stdout
    for seed in "123":
        assert (runs / f"seed{seed}/result.json").exists(), seed
    logs = sorted(p.name for p in (runs / "seed1").iterdir() if p.name.startswith("log.txt"))
    assert logs[0] == "log.txt" and len(logs) == 2
    assert "Finish training" not in (runs / "seed1/log.txt").read_text()
    resumed = (runs / "seed1" / logs[1]).read_text()
    assert "Resuming from" in resumed and "(epoch 1 done)" in resumed
    assert "epoch [1/2]" not in resumed and "epoch [2/2]" in resumed
    assert "Finish training" in resumed and "* accuracy:" in resumed


@requires_toolbox
def test_main_skips_finished_runs_on_a_second_invocation(tiny, main_runs):
    runs = main_runs["runs"]
    before = log_files(runs)
    again = run_script("main.sh", "eurosat", "diff", "1", *tiny["small"], cwd=tiny["root"],
                       env=tiny["env"], timeout=240)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.splitlines() == [f"skip (finished): {runs}/seed{s}" for s in "123"]
    assert log_files(runs) == before


@requires_toolbox
def test_each_finished_run_records_its_study_spec(main_runs):
    # Seed 1 was killed and resumed; each result.json names its run by the study's terms.
    for seed in (1, 2, 3):
        result = json.loads((main_runs["runs"] / f"seed{seed}/result.json").read_text())
        assert result["spec"] == {"kind": "train", "dataset": "eurosat", "init": "diff",
                                  "vis_init": "random", "config": "vit_b16_ep50", "shots": 1,
                                  "seed": seed, "tag": "", "grid": {}}
        assert "spec" not in result["fingerprint_keys"]  # not part of what the run is
        assert result["epoch"] == 2


@requires_toolbox
def test_trial_sweep_over_an_epoch_grid_trains_one_folder_per_value(tiny):
    # TRIAL=1 with the module's tiny data and small CLIP as its demo folder (the same layout).
    out = tiny["root"] / "grid_out"
    env = {"DEMO_DIR": str(tiny["root"]), "TRIAL": "1", "OUTPUT_ROOT": str(out),
           "DATASETS": "eurosat", "INITS": "random", "SHOTS": "1", "SEEDS": "1", "GPUS": "cpu",
           "PYTHON": warm_python()}
    done = run_script("sweep.sh", "--grid", "OPTIM.MAX_EPOCH=1,2", cwd=tiny["root"], env=env,
                      timeout=480)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sweep: 2 jobs, 2 to run on the CPU, one at a time" in done.stdout
    for n, epochs in enumerate((1, 2)):
        assert (f"[done] cpu: job {n}: eurosat init=random shots=1 seed=1 epochs={epochs}"
                in done.stdout)
    assert "sweep: all 2 jobs finished (2 run now)" in done.stdout
    runs = out / "eurosat/DAPT_Init/random"
    assert sorted(p.name for p in runs.iterdir()) == ["demo_small_1shots_trial_ep1",
                                                      "demo_small_1shots_trial_ep2"]
    for epochs in (1, 2):
        result = json.loads((runs / f"demo_small_1shots_trial_ep{epochs}/seed1/result.json")
                            .read_text())
        assert result["epoch"] == epochs  # the grid value reached the trainer
        assert result["spec"] == {"kind": "train", "dataset": "eurosat", "init": "random",
                                  "vis_init": "random", "config": "demo_small", "shots": 1,
                                  "seed": 1, "tag": f"trial_ep{epochs}",
                                  "grid": {"OPTIM.MAX_EPOCH": str(epochs)}}
        saved = [int(p.name.rsplit("-", 1)[1]) for p in
                 (runs / f"demo_small_1shots_trial_ep{epochs}/seed1").rglob("model.pth.tar-*")]
        assert saved and max(saved) == epochs
    again = run_script("sweep.sh", "--dry-run", "--grid", "OPTIM.MAX_EPOCH=1,2",
                       cwd=tiny["root"], env=env)
    assert "2 jobs (1 datasets x 1 inits x 1 shots x 1 seeds x 2 epochs): 2 finished, 0 to run" \
        in again.stdout


@requires_toolbox
def test_base2new_train_then_test_on_tiny_eurosat(tiny):
    env = {**tiny["env"], "SEEDS": "1", "CFG": "demo_small"}
    trained = run_script("base2new_train.sh", "eurosat", "same", *tiny["small"],
                         cwd=tiny["root"], env=env, timeout=240)
    assert trained.returncode == 0, trained.stderr[-2000:]
    tested = run_script("base2new_test.sh", "eurosat", "same", *tiny["small"], cwd=tiny["root"],
                        env=env, timeout=240)
    assert tested.returncode == 0, tested.stderr[-2000:]
    tail = "eurosat/shots_16/DAPT_Init/same/demo_small/seed1"
    base = json.loads((tiny["root"] / "out/base2new/train_base" / tail / "result.json").read_text())
    new = json.loads((tiny["root"] / "out/base2new/test_new" / tail / "result.json").read_text())
    assert base["subsample_classes"] == "base" and new["subsample_classes"] == "new"
    assert new["epoch"] == 2 and new["init_method"] == "same"
    assert "--load-epoch 2" in tested.stdout


@requires_toolbox
def test_eval_tests_imagenet_prompts_on_a_target_set(tiny):
    env = {**tiny["env"], "SEEDS": "1"}
    missing = run_script("eval.sh", "random", "1", *tiny["small"], cwd=tiny["root"], env=env)
    assert missing.returncode == 2 and "main.sh imagenet random 1" in missing.stderr
    trained = run_script("main.sh", "imagenet", "random", "1", *tiny["small"], cwd=tiny["root"],
                         env=env, timeout=240)
    assert trained.returncode == 0, trained.stderr[-2000:]
    evaluated = run_script("eval.sh", "random", "1", *tiny["small"], cwd=tiny["root"],
                           env={**env, "TARGETS": "imagenetv2"}, timeout=240)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    run_dir = tiny["root"] / "out/evaluation/imagenetv2/DAPT_Init/random/vit_b16_ep50_1shots/seed1"
    log = (run_dir / "log.txt").read_text()
    assert "=> result" in log and "Finish training" not in log and "(epoch 2)" in log
    assert (run_dir / "result.json").exists()
