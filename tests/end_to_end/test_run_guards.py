"""What a resumed run must keep (LR schedule, best-val record), which epoch best_val deploys,
and prototypes keyed by the CLIP weights. Each test asserts on checkpoint and result file
contents of real train.py runs (tiny EuroSAT, small random CLIP; needs Dassl)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.support.integration import read_result, run_train, train_command
from tests.support.shared_runs import GUARD_OPTS
from tests.support.toolbox import requires_toolbox
from tools.small_clip import save_small_clip

pytestmark = requires_toolbox

# Every epoch's checkpoint kept, validation every epoch with the best one deployed.
OPTS = GUARD_OPTS


@pytest.fixture(scope="module")
def runs(shared_runs) -> dict[str, Path]:
    """One uninterrupted 3-epoch run and the same command killed after epoch 1 (its best-val
    record then made unbeatable) and re-run; trained once per session
    (tests/support/shared_runs.py, guards/*), read-only."""
    return {"workdir": shared_runs.workdir, "reference": shared_runs["guards/reference"],
            "resumed": shared_runs["guards/resumed"], "cache": shared_runs.guards_cache}


def checkpoint(run_dir: Path, name: str) -> dict:
    return torch.load(run_dir / "prompt_learner" / name, weights_only=True)


@pytest.mark.parametrize("epoch", [1, 2, 3])
def test_resumed_epochs_run_at_the_uninterrupted_runs_learning_rates(runs, epoch):
    # Checkpoint N holds the optimizer and scheduler as they stand after epoch N.
    reference = checkpoint(runs["reference"], f"model.pth.tar-{epoch}")
    resumed = checkpoint(runs["resumed"], f"model.pth.tar-{epoch}")
    assert resumed["scheduler"]["last_epoch"] == reference["scheduler"]["last_epoch"] == epoch
    lrs = [[group["lr"] for group in c["optimizer"]["param_groups"]]
           for c in (reference, resumed)]
    assert lrs[0] == lrs[1]
    # The optimizer's momentum and the prompts continue exactly where the killed run stopped.
    for name, state in reference["optimizer"]["state"].items():
        assert torch.equal(resumed["optimizer"]["state"][name]["momentum_buffer"],
                           state["momentum_buffer"])
    for name, tensor in reference["state_dict"].items():
        assert torch.equal(resumed["state_dict"][name], tensor)


def test_the_lr_of_each_resumed_epoch_follows_warm_up_then_cosine(runs):
    lrs = [checkpoint(runs["resumed"], f"model.pth.tar-{e}")["optimizer"]["param_groups"][0]["lr"]
           for e in (1, 2, 3)]
    # demo config: LR 20, 3 epochs, one warm-up epoch; the LR stored is the next epoch's.
    assert lrs == pytest.approx([20.0, 20.0 * (1 + 0.5) / 2, 20.0 * (1 - 0.5) / 2], rel=1e-12)


def test_a_resume_keeps_the_earlier_best_validation_record(runs):
    best = checkpoint(runs["resumed"], "model-best.pth.tar")
    assert best["val_result"] == 100.0 and best["epoch"] == 1


def test_the_best_validation_epoch_is_deployed_and_tested(runs, tmp_path):
    # TEST.FINAL_MODEL best_val: the final test uses model-best's prompts; testing that file
    # again with --eval-only gives the same metrics.
    best = checkpoint(runs["reference"], "model-best.pth.tar")
    result = read_result(runs["reference"])
    assert result["epoch"] == best["epoch"]
    out = tmp_path / "evaluation"
    command = train_command(runs["workdir"], "random", *OPTS, output_dir=out,
                            flags=("--eval-only", "--model-dir", str(runs["reference"])))
    done = run_train(command)
    assert done.returncode == 0, done.stderr[-2000:]
    assert read_result(out)["metrics"] == result["metrics"]
    assert read_result(out)["epoch"] == best["epoch"]


def test_prototypes_of_other_clip_weights_are_not_taken_from_the_cache(runs, tmp_path):
    import shutil

    # The reference's cache (its prototypes of the small CLIP), copied: this run writes into it.
    cache = shutil.copytree(runs["cache"], tmp_path / "prototypes")
    assert len(list(cache.iterdir())) == 1
    other_clip = save_small_clip(str(tmp_path / "other_clip.pt"), seed=1)
    command = train_command(runs["workdir"], "random", "OPTIM.MAX_EPOCH", "1",
                            "TRAINER.DAPT_INIT.CLIP_WEIGHTS", other_clip,
                            "TRAINER.DAPT_INIT.PROTOTYPE_CACHE_DIR", str(cache),
                            output_dir=tmp_path / "run")
    done = run_train(command)
    assert done.returncode == 0, done.stderr[-2000:]
    files = sorted(cache.iterdir())
    assert len(files) == 2  # one per CLIP: the first file was not reused
    first, second = (torch.load(f, weights_only=True)["prototypes"] for f in files)
    assert not torch.allclose(first, second)


@pytest.mark.parametrize("record", ["result.json", "checkpoint only"])
def test_eval_only_under_other_clip_weights_is_refused(runs, tmp_path, record):
    # The model's result.json names its weights; without one (deleted, or a run cut short)
    # its checkpoint still does. Either way: one error line, status 2, no result written.
    import shutil

    model = tmp_path / "model"
    shutil.copytree(runs["reference"], model)
    if record == "checkpoint only":
        (model / "result.json").unlink()
    other_clip = save_small_clip(str(tmp_path / "other_clip.pt"), seed=1)
    out = tmp_path / "evaluation"
    command = train_command(runs["workdir"], "random", *OPTS,
                            "TRAINER.DAPT_INIT.CLIP_WEIGHTS", other_clip, output_dir=out,
                            flags=("--eval-only", "--model-dir", str(model)))
    done = run_train(command)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and len(errors) == 1, done.stderr[-2000:]
    assert f"{model} was trained with CLIP weights" in errors[0]
    assert "other_clip.pt" in errors[0]
    assert not (out / "result.json").exists()


@pytest.mark.parametrize("field,value", [("dataset", "dtd"), ("seed", 7)])
def test_a_spec_naming_another_run_is_refused_before_work(shared_runs, tmp_path, field, value):
    import json

    workdir = shared_runs.workdir
    spec = {"kind": "train", "dataset": "eurosat", "init": "random", "vis_init": "random",
            "config": "demo_small", "shots": 2, "seed": 1, "tag": "", "grid": {},
            field: value}
    out = tmp_path / "run"
    done = run_train(train_command(workdir, "random", output_dir=out,
                                   flags=("--spec", json.dumps(spec))))
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and len(errors) == 1, done.stderr[-2000:]
    assert f"--spec is another run than this command's ({field} {value} (the run: " in errors[0]
    assert not (out / "result.json").exists() and not (out / "log.txt").exists()


def test_the_shared_runs_are_unchanged(shared_runs, runs):
    # Last in the module: its tests read the session's shared runs, none may write into them.
    assert shared_runs.changed() == []
