"""train.py end to end on tiny EuroSAT-layout data with a small random CLIP (needs Dassl).

One 3-epoch run per init method (the demo's command) is trained once per test session
(tests/support/shared_runs.py, shared with other modules); the evaluation, refusal and
prototype tests read those runs instead of training again, and copy one where they write.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import torch

import train
from tests.support.integration import (read_result, run_killed_after_epoch, run_train,
                                       train_command)
from tests.support.shared_runs import INITS
from tests.support.toolbox import requires_toolbox

pytestmark = requires_toolbox


@pytest.fixture(scope="module")
def workdir(shared_runs) -> Path:
    return shared_runs.workdir


@pytest.fixture(scope="module")
def init_runs(shared_runs) -> dict[str, Path]:
    """The demo's command for each init (2 shots, 3 epochs); the first computes prototypes
    into the data root's cache, the others load them."""
    return {init: shared_runs[f"demo/{init}"] for init in INITS}


def prompts_of(run_dir: Path, name: str = "model.pth.tar-3") -> dict[str, torch.Tensor]:
    state = torch.load(run_dir / "prompt_learner" / name, weights_only=True)
    return state.get("state_dict", state)


@pytest.mark.parametrize("init", INITS)
def test_train_py_runs_each_init_method_end_to_end(init_runs, init):
    run_dir = init_runs[init]
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
    # Beside it, the small kept prompts of epochs 0 (initial) and 1.
    assert sorted(os.listdir(run_dir / "prompt_learner")) == [
        "checkpoint", "model.pth.tar-3", "prompts-epoch0.pt", "prompts-epoch1.pt"]
    assert sorted(prompts_of(run_dir)) == ["txt_ctx", "vis_ctx"]


def test_text_init_reaches_the_trained_model_as_configured(init_runs):
    # The prompts a run starts from: "same" has identical tokens, the others do not.
    for init in INITS:
        text = prompts_of(init_runs[init], "prompts-epoch0.pt")["txt_ctx"]
        assert torch.equal(text, text[0].expand_as(text)) == (init == "same"), init


def test_a_killed_run_is_resumed_by_the_same_command(workdir, init_runs, tmp_path):
    command = train_command(workdir, "diff", output_dir=tmp_path / "run")
    killed = run_killed_after_epoch(command, 1)
    assert killed.returncode == 9
    run_dir = tmp_path / "run"
    assert "=> result" not in (run_dir / "log.txt").read_text()
    assert not (run_dir / "result.json").exists()

    resumed = run_train(command)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    logs = sorted(p.name for p in run_dir.iterdir() if p.name.startswith("log.txt"))
    assert len(logs) == 2  # the killed run's log is kept; the toolbox starts a new one
    new_log = (run_dir / logs[1]).read_text()
    assert "epoch [1/3]" not in new_log and "epoch [2/3]" in new_log
    assert read_result(run_dir)["epoch"] == 3
    # Killed or not, the same command ends with the same prompts and accuracy.
    final, uninterrupted = prompts_of(run_dir), prompts_of(init_runs["diff"])
    assert all(torch.equal(final[k], uninterrupted[k]) for k in final)
    assert read_result(run_dir)["metrics"] == read_result(init_runs["diff"])["metrics"]


def evaluate(workdir: Path, model_dir: Path, out: Path, epoch: str, *opts: str):
    command = train_command(workdir, "random", *opts, output_dir=out,
                            flags=("--eval-only", "--model-dir", str(model_dir),
                                   "--load-epoch", epoch))
    return run_train(command)


def test_eval_only_reproduces_the_final_test(workdir, init_runs, tmp_path):
    done = evaluate(workdir, init_runs["random"], tmp_path / "eval", "3")
    assert done.returncode == 0, done.stderr[-2000:]
    trained, evaluated = read_result(init_runs["random"]), read_result(tmp_path / "eval")
    assert evaluated["metrics"] == trained["metrics"] and evaluated["epoch"] == 3


def test_eval_only_with_a_missing_epoch_names_what_exists(workdir, init_runs, tmp_path):
    done = evaluate(workdir, init_runs["random"], tmp_path / "e", "7")
    assert done.returncode == 2
    assert "model.pth.tar-7" in done.stderr and "Found: model.pth.tar-3." in done.stderr
    assert "Traceback" not in done.stderr


def test_a_checkpoint_of_another_shape_is_named(workdir, init_runs, tmp_path):
    done = evaluate(workdir, init_runs["random"], tmp_path / "e", "3",
                    "TRAINER.DAPT_INIT.TXT_NUM_TOKENS", "8")
    assert done.returncode == 2
    assert "txt_ctx: checkpoint (16, 64), model (8, 64)" in done.stderr


def test_prototype_cache_is_reused_and_training_is_unchanged_by_it(workdir, init_runs,
                                                                   tmp_path):
    # The module's "diff" run loaded the prototypes the "random" run computed; this one
    # computes them again into its own cache. Computing them in-process must not move the
    # random streams training draws from: both end with the same prompts.
    assert "Loaded class prototypes" in (init_runs["diff"] / "log.txt").read_text()
    cache = tmp_path / "cache"
    command = train_command(workdir, "diff", "TRAINER.DAPT_INIT.PROTOTYPE_CACHE_DIR",
                            str(cache), output_dir=tmp_path / "a")
    assert run_train(command).returncode == 0
    assert "Computing class prototypes" in (tmp_path / "a/log.txt").read_text()
    computed, loaded = prompts_of(tmp_path / "a"), prompts_of(init_runs["diff"])
    assert torch.equal(computed["txt_ctx"], loaded["txt_ctx"])
    assert torch.equal(computed["vis_ctx"], loaded["vis_ctx"])
    assert len(list(cache.iterdir())) == 1


def test_resuming_with_other_settings_is_refused_and_loses_nothing(workdir, init_runs,
                                                                   tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(init_runs["random"], run_dir)
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    other = train_command(workdir, "diff", "OPTIM.MAX_EPOCH", "5", output_dir=run_dir)
    done = run_train(other)
    assert done.returncode == 2
    assert ("holds a finished run with other settings: OPTIM.MAX_EPOCH 3 -> 5; "
            "TRAINER.DAPT_INIT.INIT_METHOD 'random' -> 'diff'") in done.stderr
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


# Argument checks stop before the toolbox builds anything: run train.py's entry in-process.
def test_bad_config_fails_before_creating_anything(workdir, tmp_path, capsys):
    command = train_command(workdir, "sideways", output_dir=tmp_path / "run")
    assert train.run(command[2:]) == 2
    err = capsys.readouterr().err
    assert "INIT_METHOD is 'sideways'; valid values are random, same, diff" in err
    assert "Traceback" not in err and not (tmp_path / "run").exists()


@pytest.mark.parametrize("flags, message", [
    (("--eval-only",), "--eval-only needs --model-dir"),
    (("--eval-only", "--model-dir", "SAME"), "Give the evaluation its own --output-dir"),
])
def test_eval_only_cannot_replace_a_training_result(workdir, tmp_path, capsys, flags, message):
    run_dir = tmp_path / "run"
    flags = tuple(str(run_dir) if flag == "SAME" else flag for flag in flags)
    command = train_command(workdir, "random", output_dir=run_dir, flags=flags)
    assert train.run(command[2:]) == 2
    assert message in capsys.readouterr().err and not run_dir.exists()


def test_the_shared_runs_are_unchanged(shared_runs, init_runs):
    # Last in the module: its tests read the session's shared runs, none may write into them.
    assert shared_runs.changed() == []
