"""tools/analyze_prompts.py on real runs: one tiny 1-epoch run per init with the real train.py
(toolbox, ~45 s in all, trained once per session and shared by every test here), then
init-stats and t-SNE on them and the run configs rebuilt from their records."""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.analyze_prompts_helpers import (INITS, REPO, TOOL, csv_rows, numpy_stats, run_tool,
                                           stats_of)
from tests.support.integration import run_train, train_command
from tests.support.toolbox import requires_toolbox
from analysis import common


# ----------------------------------------------------- real runs (toolbox, ~45 s in all)
@pytest.fixture(scope="module")
def trained_runs(shared_runs) -> tuple[Path, dict[str, Path]]:
    """One 1-epoch run per init on tiny EuroSAT-layout data (seed 1, 2 shots, 10 classes),
    trained once per session (tests/support/shared_runs.py); read-only."""
    return shared_runs.workdir, {init: shared_runs[f"one_epoch/{init}"] for init in INITS}


def tsne_command(workdir: Path, runs: dict[str, Path], out: Path, *extra: str) -> list[str]:
    """The tool with the data and config arguments of tests.support.integration's train command."""
    return [
        sys.executable, str(TOOL), "tsne",
        "--root", str(workdir / "data"), "--seed", "1",
        "--dataset-config-file", str(REPO / "configs/datasets/eurosat.yaml"),
        "--config-file", str(REPO / "configs/trainers/DAPT_Init/demo_small.yaml"),
        "--runs", *(f"{init}={run_dir}" for init, run_dir in runs.items()),
        "--epoch", "1", "--out", str(out), *extra,
        "TRAINER.DAPT_INIT.CLIP_WEIGHTS", str(workdir / "small_clip.pt"),
        "DATASET.NUM_SHOTS", "2", "USE_CUDA", "False",
    ]


def checkpoint_tokens(run_dir: Path) -> torch.Tensor:
    path = run_dir / "prompt_learner" / "model.pth.tar-1"
    return torch.load(path, weights_only=True)["state_dict"]["txt_ctx"].float()


@requires_toolbox
def test_from_runs_statistics_equal_those_of_the_checkpoint_tensors(trained_runs, capsys):
    workdir, runs = trained_runs
    status, out, _ = run_tool("init-stats", "--clip-weights", workdir / "small_clip.pt",
                              "--from-runs", *runs.values(), "--epoch", 1, "--tokens", "first",
                              "all", "--format", "csv", capsys=capsys)
    assert status == 0
    rows = csv_rows(out)
    assert len(rows) == 3 * 2 * 2  # (initial + run) x (first, all) per init
    for init, run_dir in runs.items():
        tokens = checkpoint_tokens(run_dir)
        assert stats_of(rows, init=init, epoch="1", tokens="first", seed="1",
                        source=str(run_dir)) == pytest.approx(numpy_stats(tokens[0]), abs=1e-12)
        assert stats_of(rows, init=init, epoch="1", tokens="all") == pytest.approx(
            numpy_stats(tokens), abs=1e-12)


@requires_toolbox
def test_initial_prompts_are_the_ones_the_training_run_started_from(trained_runs):
    # One epoch at the warm-up LR (1e-5) moves the tokens by < 1e-3; prompts drawn in another
    # order (or with another seed) differ by ~0.05. So this pins train.py's seeding order.
    workdir, runs = trained_runs
    settings = common.InitSettings(clip_weights=str(workdir / "small_clip.pt"))
    for init, run_dir in runs.items():
        trained = checkpoint_tokens(run_dir)
        initial = common.initial_text_prompts(init, 1, settings)
        assert not torch.equal(trained, initial)  # the run did train
        assert (trained - initial).abs().max() < 1e-3
        other_seed = common.initial_text_prompts(init, 2, settings)
        assert (trained - other_seed).abs().max() > 1e-2


def read_coordinates(path: Path) -> list[dict[str, str]]:
    with path.open() as file:
        return list(csv.DictReader(file))


@requires_toolbox
def test_tsne_writes_one_panel_per_init_and_the_coordinates(trained_runs, tmp_path):
    import matplotlib.image

    workdir, runs = trained_runs
    out = tmp_path / "figures" / "tsne.png"
    done = run_train(tsne_command(workdir, runs, out))
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = matplotlib.image.imread(out).shape
    assert width == pytest.approx(3 * height, rel=0.05)  # three square panels side by side
    rows = read_coordinates(out.with_suffix(".csv"))
    assert [row["init"] for row in rows] == [init for init in INITS for _ in range(10)]
    classes = [row["class"] for row in rows[:10]]
    assert len(set(classes)) == 10
    assert all([row["class"] for row in rows if row["init"] == init] == classes for init in INITS)
    xy = np.array([[float(row["x"]), float(row["y"])] for row in rows])
    assert np.isfinite(xy).all() and xy[:10].std(axis=0).min() > 0
    for init in INITS:
        assert f"{init}: 10 classes, mean pairwise cosine" in done.stdout

    # Each panel is embedded on its own with a fixed random state: one run alone repeats it.
    alone = tmp_path / "diff_only.png"
    done = run_train(tsne_command(workdir, {"diff": runs["diff"]}, alone, "--no-labels"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert read_coordinates(alone.with_suffix(".csv")) == rows[20:]


@requires_toolbox
def test_tsne_names_both_weights_when_the_runs_used_another_clip(trained_runs, tmp_path):
    from tools.small_clip import save_small_clip

    workdir, runs = trained_runs
    wide_clip = save_small_clip(str(tmp_path / "wide_clip.pt"), transformer_width=128)
    command = tsne_command(workdir, {"diff": runs["diff"]}, tmp_path / "tsne.png")
    command[command.index("TRAINER.DAPT_INIT.CLIP_WEIGHTS") + 1] = wide_clip
    done = run_train(command)
    assert done.returncode == 2
    error = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "was trained with CLIP weights" in error[0]
    assert wide_clip in error[0] and str(workdir / "small_clip.pt") in error[0]
    assert "Traceback" not in done.stderr and not (tmp_path / "tsne.png").exists()


@requires_toolbox
def test_tsne_from_run_folders_alone_equals_tsne_with_the_whole_train_command(trained_runs,
                                                                               tmp_path, capsys):
    # No data root, configs, overrides or CLIP: each comes from the run's own record.
    workdir, runs = trained_runs
    alone, given = tmp_path / "alone.png", tmp_path / "given.png"
    status, out, err = run_tool("tsne", "--runs", f"diff={runs['diff']}", "--epoch", 1,
                                "--no-labels", "--out", alone, capsys=capsys)
    assert status == 0, err
    assert f"Wrote {alone}" in out
    explicit = tsne_command(workdir, {"diff": runs["diff"]}, given, "--no-labels")[2:]
    status, _, err = run_tool(*explicit, capsys=capsys)
    assert status == 0, err
    assert read_coordinates(alone.with_suffix(".csv")) == read_coordinates(
        given.with_suffix(".csv"))


@requires_toolbox
def test_init_stats_from_runs_alone_builds_the_initial_rows_with_the_runs_clip(trained_runs,
                                                                               capsys):
    workdir, runs = trained_runs
    status, alone, err = run_tool("init-stats", "--from-runs", runs["same"], "--format", "csv",
                                  capsys=capsys)
    assert status == 0, err
    status, given, err = run_tool("init-stats", "--from-runs", runs["same"], "--format", "csv",
                                  "--clip-weights", workdir / "small_clip.pt", capsys=capsys)
    assert status == 0, err
    assert alone == given and len(csv_rows(alone)) == 3 + 1


@requires_toolbox
def test_a_run_config_from_its_record_equals_the_config_of_its_command(trained_runs, tmp_path):
    """result.json's keys and weights plus log.txt's data root rebuild the config train.py
    built (less the keys that cannot change a result); without result.json, log.txt's
    command alone does."""
    import shutil

    from study.config import logged_command, recorded_cfg, setup_cfg
    from trainers.dapt_init.runstate import fingerprint_keys

    workdir, runs = trained_runs
    command = train_command(workdir, "random", "OPTIM.MAX_EPOCH", "1",
                            output_dir=runs["random"])
    from study.config import parse_args

    original = setup_cfg(parse_args(command[2:]))
    rebuilt = recorded_cfg(str(runs["random"]))
    assert fingerprint_keys(rebuilt) == fingerprint_keys(original)
    assert rebuilt.DATASET.ROOT == original.DATASET.ROOT
    assert rebuilt.TRAINER.DAPT_INIT.CLIP_WEIGHTS == str(workdir / "small_clip.pt")
    assert vars(logged_command(str(runs["random"]))) == vars(parse_args(command[2:]))

    unfinished = shutil.copytree(runs["random"], tmp_path / "unfinished")
    (unfinished / "result.json").unlink()
    assert fingerprint_keys(recorded_cfg(str(unfinished))) == fingerprint_keys(original)


@requires_toolbox
def test_the_shared_runs_are_unchanged(shared_runs, trained_runs):
    # Last in the module: its tests read the session's shared runs, none may write into them.
    assert shared_runs.changed() == []
