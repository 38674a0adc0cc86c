"""Real train.py runs for issue 10's items 1, 3 and 5: a run per visual init, gradient norms
that leave training unchanged, and the kept prompts the analysis tool reads.

Three tiny runs (seed 1, 2 shots, text init diff), trained once per test session
(tests/support/shared_runs.py), share the module:
  same_on   VIS_INIT_METHOD same, 1 epoch, LOG_GRAD_NORMS True
  same_off  the same command with LOG_GRAD_NORMS False
  diff      VIS_INIT_METHOD diff, 2 epochs, KEEP_EPOCHS [2] (its epoch-1 checkpoint is removed,
            as in a run made by main.sh, so epoch 1 exists only as kept prompts)
"""
from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.integration import read_result
from tests.trainers.test_vis_init import by_hand
from tests.support.toolbox import requires_toolbox
from trainers.dapt_init.grad_norms import GRAD_NORM_NAMES

pytestmark = requires_toolbox
REPO = Path(__file__).resolve().parents[2]
TOKENS = (16, 16)  # visual, text (the defaults)


@pytest.fixture(scope="module")
def runs(shared_runs) -> tuple[Path, dict[str, Path]]:
    """The three runs, trained once per session (tests/support/shared_runs.py); read-only."""
    names = ("same_on", "same_off", "diff")
    return shared_runs.workdir, {name: shared_runs[f"visinit/{name}"] for name in names}


def load(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def kept(run_dir: Path, epoch: int) -> dict[str, torch.Tensor]:
    return load(run_dir / "prompt_learner" / f"prompts-epoch{epoch}.pt")


def checkpoint_prompts(run_dir: Path, epoch: int) -> dict[str, torch.Tensor]:
    return load(run_dir / "prompt_learner" / f"model.pth.tar-{epoch}")["state_dict"]


def equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return sorted(a) == sorted(b) == ["txt_ctx", "vis_ctx"] and all(
        torch.equal(a[k], b[k]) for k in a)


def test_each_run_starts_from_its_visual_init_and_records_it(runs):
    workdir, folders = runs
    from trainers.dapt_init.clip_loading import load_clip

    for name, vis_init in (("same_on", "same"), ("diff", "diff")):
        assert read_result(folders[name])["vis_init_method"] == vis_init
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(1)  # train.py's order: seed, build CLIP (it draws), then prompts
            clip_model = load_clip("ViT-B/16", str(workdir / "small_clip.pt")).float()
            vis, txt = by_hand(clip_model, "diff", vis_init, seed=None, tokens=TOKENS)
        initial = kept(folders[name], 0)
        assert torch.allclose(initial["vis_ctx"], vis, atol=1e-6, rtol=0)
        assert torch.allclose(initial["txt_ctx"], txt, atol=1e-6, rtol=0)
    # One seed: the visual inits differ, the text prompts (drawn after them) do not.
    same, diff = kept(folders["same_on"], 0), kept(folders["diff"], 0)
    assert not torch.allclose(same["vis_ctx"], diff["vis_ctx"])
    assert torch.equal(same["txt_ctx"], diff["txt_ctx"])


def test_kept_prompts_are_the_initial_and_epoch_prompts_of_the_run(runs):
    _, folders = runs
    one_epoch = folders["same_on"] / "prompt_learner"
    assert sorted(p.name for p in one_epoch.iterdir()) == [
        "checkpoint", "model.pth.tar-1", "prompts-epoch0.pt", "prompts-epoch1.pt"]
    assert equal(kept(folders["same_on"], 1), checkpoint_prompts(folders["same_on"], 1))
    assert not equal(kept(folders["same_on"], 0), kept(folders["same_on"], 1))  # it trained

    two_epochs = folders["diff"] / "prompt_learner"
    assert sorted(p.name for p in two_epochs.iterdir()) == [
        "checkpoint", "model.pth.tar-2", "prompts-epoch0.pt", "prompts-epoch1.pt",
        "prompts-epoch2.pt"]  # epoch 1's checkpoint was a transient resume point
    assert equal(kept(folders["diff"], 2), checkpoint_prompts(folders["diff"], 2))
    assert not equal(kept(folders["diff"], 1), kept(folders["diff"], 2))


def tensorboard_scalars(run_dir: Path) -> dict[str, list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return {tag: [event.value for event in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}


def test_gradient_norms_are_logged_and_leave_training_unchanged(runs):
    _, folders = runs
    on, off = folders["same_on"], folders["same_off"]
    assert equal(checkpoint_prompts(on, 1), checkpoint_prompts(off, 1))
    assert read_result(on)["metrics"] == read_result(off)["metrics"]

    logged = tensorboard_scalars(on)
    for name in GRAD_NORM_NAMES:
        values = logged[f"train/{name}"]
        assert len(values) == 2  # both steps of the epoch (fewer batches than PRINT_FREQ)
        assert all(math.isfinite(v) and v >= 0 for v in values)
    assert logged["train/grad_intra_txt"] == [0.0, 0.0]
    assert logged["train/grad_inter_vis"] == [0.0, 0.0]
    assert min(logged["train/grad_ce_vis"] + logged["train/grad_ce_txt"]) > 0
    assert not any(tag.startswith("train/grad_") for tag in tensorboard_scalars(off))


def test_analyses_read_epoch_1_of_a_run_whose_epoch_1_checkpoint_is_gone(runs, tmp_path,
                                                                         capsys):
    from tools import analyze_prompts

    workdir, folders = runs
    run_dir = folders["diff"]
    status = analyze_prompts.run(["init-stats", "--no-initial", "--from-runs", str(run_dir),
                                  "--epoch", "1", "--tokens", "all", "--format", "csv"])
    out, _ = capsys.readouterr()
    assert status == 0
    [row] = list(csv.DictReader(io.StringIO(out)))
    tokens = kept(run_dir, 1)["txt_ctx"].double().numpy()
    assert (row["init"], row["seed"], row["epoch"]) == ("diff", "1", "1")
    assert [float(row[s]) for s in ("mean", "std", "min", "max")] == pytest.approx(
        [tokens.mean(), tokens.std(ddof=1), tokens.min(), tokens.max()], abs=1e-12)

    out_png = tmp_path / "tsne.png"
    status = analyze_prompts.run([
        "tsne", "--root", str(workdir / "data"), "--seed", "1",
        "--dataset-config-file", str(REPO / "configs/datasets/eurosat.yaml"),
        "--config-file", str(REPO / "configs/trainers/DAPT_Init/demo_small.yaml"),
        "--runs", f"diff={run_dir}", "--epoch", "1", "--out", str(out_png),
        "TRAINER.DAPT_INIT.CLIP_WEIGHTS", str(workdir / "small_clip.pt"),
        "DATASET.NUM_SHOTS", "2", "USE_CUDA", "False"])
    capsys.readouterr()
    assert status == 0
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with out_png.with_suffix(".csv").open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 10 and {row["epoch"] for row in rows} == {"1"}
    assert np.isfinite([[float(row["x"]), float(row["y"])] for row in rows]).all()


def test_the_shared_runs_are_unchanged(shared_runs, runs):
    # Last in the module: its tests read the session's shared runs, none may write into them.
    assert shared_runs.changed() == []
