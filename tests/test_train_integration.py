"""train.py end to end on tiny EuroSAT-layout data with a small random CLIP (needs Dassl)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch

from tests.integration import (output_dir_of, prepared_workdir, read_result, run_train,
                               train_command)
from tests.toolbox import requires_toolbox

pytestmark = requires_toolbox


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return prepared_workdir(tmp_path_factory.mktemp("dapt_init"))


@pytest.mark.parametrize("init", ["random", "same", "diff"])
def test_train_py_runs_each_init_method_end_to_end(workdir, init):
    command = train_command(workdir, init)
    done = run_train(command)
    assert done.returncode == 0, done.stderr[-2000:]
    run_dir = output_dir_of(command)
    log = (run_dir / "log.txt").read_text()
    for marker in ("Finish training", "=> result", "* accuracy:", "loss_ce", "loss_intra",
                   "loss_inter", f"text prompt init: {init}"):
        assert marker in log, marker
    # The LR printed for each epoch is the one it ran with: warm-up, base, then cosine.
    assert re.search(r"epoch \[1/3\] batch \[2/2\].* lr 1\.0000e-05", log)
    assert re.search(r"epoch \[2/3\] batch \[2/2\].* lr 2\.0000e\+01", log)
    assert re.search(r"epoch \[3/3\] batch \[2/2\].* lr 1\.5000e\+01", log)  # 20 cos-annealed
    result = read_result(run_dir)
    accuracy = float(re.search(r"\* accuracy: ([\d.]+)%", log).group(1))
    assert result["init_method"] == init and result["shots"] == 2 and result["epoch"] == 3
    assert result["metrics"]["accuracy"] == pytest.approx(accuracy, abs=0.05)
    # Only the last epoch's checkpoint is kept (as the toolbox keeps it); it holds prompts only.
    assert sorted(os.listdir(run_dir / "prompt_learner")) == ["checkpoint", "model.pth.tar-3"]
    state = torch.load(run_dir / "prompt_learner/model.pth.tar-3", weights_only=True)
    assert sorted(state["state_dict"]) == ["txt_ctx", "vis_ctx"]


def test_text_init_reaches_the_trained_model_as_configured(workdir, tmp_path):
    # With no training the saved prompts are the initial ones: "same" has identical tokens.
    command = train_command(workdir, "same", "OPTIM.MAX_EPOCH", "1", "OPTIM.LR", "0.0",
                            "OPTIM.WARMUP_CONS_LR", "0.0", output_dir=tmp_path / "run")
    assert run_train(command).returncode == 0
    state = torch.load(tmp_path / "run/prompt_learner/model.pth.tar-1", weights_only=True)
    text = state["state_dict"]["txt_ctx"]
    assert torch.equal(text, text[0].expand_as(text))


# Runs train.py and kills the process (os._exit: no clean-up) right after epoch 1 is saved.
KILL_AFTER_EPOCH_1 = (
    "import os, runpy, sys; sys.argv = sys.argv[1:]; sys.path.insert(0, os.getcwd()); "
    "import trainers.dapt_init.trainer as t; original = t.DAPT_Init.after_epoch\n"
    "def after_epoch(self):\n"
    "    original(self)\n"
    "    if self.epoch == 0: os._exit(9)\n"
    "t.DAPT_Init.after_epoch = after_epoch; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def run_killed_after_epoch_1(command: list[str]):
    return run_train([command[0], "-c", KILL_AFTER_EPOCH_1] + command[1:])


def test_a_killed_run_is_resumed_by_the_same_command(workdir, tmp_path):
    command = train_command(workdir, "diff", output_dir=tmp_path / "run")
    killed = run_killed_after_epoch_1(command)
    assert killed.returncode == 9
    run_dir = tmp_path / "run"
    assert "=> result" not in (run_dir / "log.txt").read_text()
    assert not (run_dir / "result.json").exists()

    resumed = run_train(command)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    logs = sorted(p.name for p in run_dir.iterdir() if p.name.startswith("log.txt"))
    assert len(logs) == 2  # the killed run's log is kept; the toolbox starts a new one
    new_log = (run_dir / logs[1]).read_text()
    assert "Resuming from" in new_log and "(epoch 1 done)" in new_log
    assert "epoch [1/3]" not in new_log and "epoch [2/3]" in new_log
    assert read_result(run_dir)["epoch"] == 3


def test_eval_only_reproduces_the_final_test(workdir, tmp_path):
    train = train_command(workdir, "random", output_dir=tmp_path / "train")
    assert run_train(train).returncode == 0
    evaluate = train_command(workdir, "random", output_dir=tmp_path / "eval",
                             flags=("--eval-only", "--model-dir", str(tmp_path / "train"),
                                    "--load-epoch", "3"))
    done = run_train(evaluate)
    assert done.returncode == 0, done.stderr[-2000:]
    trained, evaluated = read_result(tmp_path / "train"), read_result(tmp_path / "eval")
    assert evaluated["metrics"] == trained["metrics"] and evaluated["epoch"] == 3


def test_eval_only_with_a_missing_epoch_names_what_exists(workdir, tmp_path):
    train = train_command(workdir, "random", "OPTIM.MAX_EPOCH", "1", output_dir=tmp_path / "t")
    assert run_train(train).returncode == 0
    evaluate = train_command(workdir, "random", output_dir=tmp_path / "e",
                             flags=("--eval-only", "--model-dir", str(tmp_path / "t"),
                                    "--load-epoch", "7"))
    done = run_train(evaluate)
    assert done.returncode == 2
    assert "model.pth.tar-7" in done.stderr and "Found: model.pth.tar-1." in done.stderr
    assert "Traceback" not in done.stderr


def test_best_val_model_is_deployed(workdir, tmp_path):
    command = train_command(workdir, "same", "TEST.FINAL_MODEL", "best_val",
                            output_dir=tmp_path / "run")
    done = run_train(command)
    assert done.returncode == 0, done.stderr[-2000:]
    log = (tmp_path / "run/log.txt").read_text()
    assert "Deploy the model with the best val performance" in log
    assert "model-best.pth.tar (epoch" in log and "=> result" in log


def test_a_checkpoint_of_another_shape_is_named(workdir, tmp_path):
    train = train_command(workdir, "random", "OPTIM.MAX_EPOCH", "1", output_dir=tmp_path / "t")
    assert run_train(train).returncode == 0
    evaluate = train_command(workdir, "random", "TRAINER.DAPT_INIT.TXT_NUM_TOKENS", "8",
                             output_dir=tmp_path / "e",
                             flags=("--eval-only", "--model-dir", str(tmp_path / "t"),
                                    "--load-epoch", "1"))
    done = run_train(evaluate)
    assert done.returncode == 2
    assert "txt_ctx: checkpoint (16, 64), model (8, 64)" in done.stderr


def test_bad_config_fails_before_creating_anything(workdir, tmp_path):
    command = train_command(workdir, "sideways", output_dir=tmp_path / "run")
    done = run_train(command)
    assert done.returncode == 2
    assert "INIT_METHOD is 'sideways'; valid values are random, same, diff" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "run").exists()


def test_prototype_cache_is_reused_and_training_is_unchanged_by_it(workdir, tmp_path):
    cache = tmp_path / "cache"
    first = train_command(workdir, "diff", "TRAINER.DAPT_INIT.PROTOTYPE_CACHE_DIR", str(cache),
                          output_dir=tmp_path / "a")
    second = train_command(workdir, "diff", "TRAINER.DAPT_INIT.PROTOTYPE_CACHE_DIR", str(cache),
                           output_dir=tmp_path / "b")
    assert run_train(first).returncode == 0 and run_train(second).returncode == 0
    assert "Computing class prototypes" in (tmp_path / "a/log.txt").read_text()
    assert "Loaded class prototypes" in (tmp_path / "b/log.txt").read_text()
    # Computing them in-process must not move the random streams training draws from.
    a = torch.load(tmp_path / "a/prompt_learner/model.pth.tar-3", weights_only=True)
    b = torch.load(tmp_path / "b/prompt_learner/model.pth.tar-3", weights_only=True)
    assert torch.equal(a["state_dict"]["txt_ctx"], b["state_dict"]["txt_ctx"])
    assert len(list(cache.iterdir())) == 1


def test_resuming_with_other_settings_is_refused_and_loses_nothing(workdir, tmp_path):
    finished = train_command(workdir, "random", output_dir=tmp_path / "run")
    assert run_train(finished).returncode == 0
    other = train_command(workdir, "diff", "OPTIM.MAX_EPOCH", "5", output_dir=tmp_path / "run")
    done = run_train(other)
    assert done.returncode == 2
    assert ("holds a finished run with other settings: OPTIM.MAX_EPOCH 3 -> 5; "
            "TRAINER.DAPT_INIT.INIT_METHOD 'random' -> 'diff'") in done.stderr
    assert (tmp_path / "run/prompt_learner/model.pth.tar-3").exists()
    assert read_result(tmp_path / "run")["init_method"] == "random"


def test_best_val_record_survives_a_resume(workdir, tmp_path):
    command = train_command(workdir, "same", "TEST.FINAL_MODEL", "best_val",
                            output_dir=tmp_path / "run")
    assert run_killed_after_epoch_1(command).returncode == 9
    done = run_train(command)
    assert done.returncode == 0, done.stderr[-2000:]
    resumed_log = next(p for p in (tmp_path / "run").iterdir() if p.name.startswith("log.txt-"))
    assert "Best validation result so far:" in resumed_log.read_text()


@pytest.mark.parametrize("flags, message", [
    (("--eval-only",), "--eval-only needs --model-dir"),
    (("--eval-only", "--model-dir", "SAME"), "Give the evaluation its own --output-dir"),
])
def test_eval_only_cannot_replace_a_training_result(workdir, tmp_path, flags, message):
    run_dir = tmp_path / "run"
    flags = tuple(str(run_dir) if flag == "SAME" else flag for flag in flags)
    done = run_train(train_command(workdir, "random", output_dir=run_dir, flags=flags))
    assert done.returncode == 2 and message in done.stderr and not run_dir.exists()
