"""tools/analyze_prompts.py: first-token statistics per init (analysis 2) and t-SNE (analysis 3).

The init-stats tests need no toolbox: they rebuild the initial prompts by hand from the
documented rules and compare numbers. The tests on real training runs (toolbox) are in
test_analyze_prompts_runs.py.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.analyze_prompts_helpers import INITS, TOOL, csv_rows, numpy_stats, run_tool, stats_of
from analysis import tsne

EOS_ID = 49407
K = 16  # text tokens (default)
V = 16  # visual tokens (default), drawn before the text tokens


# ------------------------------------------------------------------------------------ helpers
def prompts_by_hand(init: str, seed: int, clip_file: str, noise_scale: float = 0.1) -> torch.Tensor:
    """The study's rules written out, in train.py's order: seed, build CLIP (its parameter
    initialisation draws from torch), visual prompts U(-b, b) in fp16, then text prompts."""
    from trainers.dapt_init.clip_loading import load_clip

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        clip_model = load_clip("ViT-B/16", clip_file)
        conv = clip_model.visual.conv1.weight  # (vis_width, 3, patch, patch)
        bound = math.sqrt(6.0 / (3 * conv.shape[-1] ** 2 + conv.shape[0]))
        torch.empty(1, V, conv.shape[0], dtype=torch.float16).uniform_(-bound, bound)
        eos = clip_model.token_embedding.weight[EOS_ID].float()
        width = eos.shape[0]
        if init == "random":
            return torch.empty(K, width, dtype=torch.float16).normal_(0.0, 0.02).float()
        if init == "same":
            u = torch.randn(width)
            return (eos + noise_scale * u / u.norm()).expand(K, width)
        u = torch.randn(K, width)
        return eos + noise_scale * u / u.norm(dim=-1, keepdim=True)


def fake_run(folder: Path, txt_ctx: torch.Tensor, epochs=(1,), init: str = "diff",
             seed: int = 3) -> Path:
    """A run folder as train.py leaves it: checkpoints and the log lines naming init and seed."""
    (folder / "prompt_learner").mkdir(parents=True)
    for epoch in epochs:
        state = {"state_dict": {"txt_ctx": txt_ctx + epoch, "vis_ctx": torch.zeros(1, V, 64)},
                 "epoch": epoch, "optimizer": None, "scheduler": None, "val_result": None}
        torch.save(state, folder / "prompt_learner" / f"model.pth.tar-{epoch}")
    (folder / "log.txt").write_text(
        f"SEED: {seed}\nBuilding DAPT model (text prompt init: {init})\n")
    return folder


# ----------------------------------------------------------------- init-stats (no toolbox)
@pytest.mark.parametrize("init", INITS)
def test_first_token_statistics_equal_the_documented_rule_rebuilt_by_hand(init, small_clip_file,
                                                                          capsys):
    status, out, _ = run_tool("init-stats", "--clip-weights", small_clip_file, "--inits", init,
                              "--seeds", 1, 7, "--format", "csv", capsys=capsys)
    assert status == 0
    rows = csv_rows(out)
    assert len(rows) == 2
    for seed in (1, 7):
        first_token = prompts_by_hand(init, seed, small_clip_file)[0]
        got = stats_of(rows, init=init, seed=str(seed), epoch="0", tokens="first")
        assert got == pytest.approx(numpy_stats(first_token), abs=1e-12)


def test_random_init_tokens_have_dapts_std_of_002(small_clip_file, capsys):
    # 16 x 64 entries pooled: the std estimate's standard error is ~0.0004, so 0.002 is loose.
    status, out, _ = run_tool("init-stats", "--clip-weights", small_clip_file, "--inits", "random",
                              "--seeds", 1, 2, 3, "--tokens", "all", "--format", "csv",
                              capsys=capsys)
    assert status == 0
    for seed in ("1", "2", "3"):
        mean, std, low, high = stats_of(csv_rows(out), seed=seed, tokens="all")
        assert abs(std - 0.02) < 0.002 and abs(mean) < 0.003
        assert -0.12 < low < 0 < high < 0.12  # within 6 sigma


def test_eos_inits_centre_the_first_token_on_eos_and_random_does_not(tmp_path, capsys):
    # The small CLIP's EOS embedding is itself ~N(0, 0.02^2), like random's tokens; shift it by
    # +1 so the methods are told apart by where the first token sits, not by chance.
    from tools.small_clip import small_clip_state_dict

    state = small_clip_state_dict()
    state["token_embedding.weight"][EOS_ID] += 1.0
    clip_file = tmp_path / "shifted_eos_clip.pt"
    torch.save(state, clip_file)
    eos_mean = state["token_embedding.weight"][EOS_ID].half().double().mean().item()
    status, out, _ = run_tool("init-stats", "--clip-weights", clip_file, "--format", "csv",
                              capsys=capsys)
    assert status == 0
    rows = csv_rows(out)
    noise_bound = 0.1 / math.sqrt(64)  # |mean(e)| <= ||e|| / sqrt(width), ||e|| = 0.1
    for init in ("same", "diff"):
        mean, _, low, _ = stats_of(rows, init=init)
        assert abs(mean - eos_mean) <= noise_bound + 1e-6
        assert low > 0.5
    mean, _, low, high = stats_of(rows, init="random")
    assert abs(mean) < 0.02 and -0.2 < low < high < 0.2


def test_same_and_diff_share_their_first_token_but_not_the_others(small_clip_file, capsys):
    # For one seed both draw their first noise vector from the same generator state, so the
    # report's first-token statistics cannot tell same from diff; the other tokens can.
    status, out, _ = run_tool("init-stats", "--clip-weights", small_clip_file, "--inits", "same",
                              "diff", "--tokens", "first", "all", "each", "--format", "csv",
                              capsys=capsys)
    assert status == 0
    rows = csv_rows(out)
    assert len(rows) == 2 * (1 + 1 + K)
    assert stats_of(rows, init="same", tokens="first") == stats_of(rows, init="diff",
                                                                   tokens="first")
    same_first = stats_of(rows, init="same", tokens="first")
    same_all = stats_of(rows, init="same", tokens="all")
    assert same_all[0] == pytest.approx(same_first[0]) and same_all[2:] == same_first[2:]
    assert stats_of(rows, init="diff", tokens="2") != stats_of(rows, init="diff", tokens="1")
    assert stats_of(rows, init="same", tokens="2") == stats_of(rows, init="same", tokens="1")


def test_fp16_prec_gives_the_prompts_rounded_to_half(small_clip_file, capsys):
    status, out, _ = run_tool("init-stats", "--clip-weights", small_clip_file, "--inits", "diff",
                              "--prec", "fp16", "--format", "csv", capsys=capsys)
    assert status == 0
    rounded = prompts_by_hand("diff", 1, small_clip_file)[0].half()
    assert stats_of(csv_rows(out)) == pytest.approx(numpy_stats(rounded), abs=1e-12)


def test_table_formats_have_one_row_per_init_and_seed(small_clip_file, capsys):
    status, out, _ = run_tool("init-stats", "--clip-weights", small_clip_file, "--seeds", 1, 2,
                              "--format", "github", capsys=capsys)
    assert status == 0
    lines = out.strip().splitlines()
    assert [cell.strip() for cell in lines[0].split("|")[1:-1]] == [
        "init", "seed", "epoch", "tokens", "mean", "std", "min", "max", "source"]
    assert [line.split("|")[1].strip() for line in lines[2:]] == [
        "random", "random", "same", "same", "diff", "diff"]


# --------------------------------------------------- --from-runs and errors (no toolbox)
def test_from_runs_uses_the_last_saved_epoch_and_the_logged_init_and_seed(tmp_path, capsys):
    tokens = torch.randn(K, 64)
    run_dir = fake_run(tmp_path / "run", tokens, epochs=(2, 10), init="same", seed=3)
    status, out, _ = run_tool("init-stats", "--no-initial", "--from-runs", run_dir,
                              "--format", "csv", capsys=capsys)
    assert status == 0
    [row] = csv_rows(out)
    assert (row["init"], row["seed"], row["epoch"], row["source"]) == ("same", "3", "10",
                                                                        str(run_dir))
    assert stats_of([row]) == pytest.approx(numpy_stats((tokens + 10)[0]), abs=1e-12)


def test_a_missing_checkpoint_is_named_with_the_epochs_that_exist(tmp_path, capsys):
    run_dir = fake_run(tmp_path / "run", torch.zeros(K, 64), epochs=(1, 5))
    status, out, err = run_tool("init-stats", "--no-initial", "--from-runs", run_dir,
                                "--epoch", 3, capsys=capsys)
    assert status == 2 and out == ""
    assert "no checkpoint for epoch 3" in err and "saved epochs: 1, 5" in err
    status, _, err = run_tool("init-stats", "--no-initial", "--from-runs", tmp_path, capsys=capsys)
    assert status == 2 and f"run folder {tmp_path} holds no checkpoint" in err


def test_a_checkpoint_of_another_clip_width_names_both_shapes(tmp_path, small_clip_file, capsys):
    run_dir = fake_run(tmp_path / "run", torch.zeros(K, 32))
    status, out, err = run_tool("init-stats", "--clip-weights", small_clip_file,
                                "--from-runs", run_dir, capsys=capsys)
    assert status == 2 and out == ""
    assert "txt_ctx of shape (16, 32)" in err and "token width 64" in err


def test_a_checkpoint_without_text_prompts_is_reported(tmp_path, capsys):
    folder = tmp_path / "run" / "prompt_learner"
    folder.mkdir(parents=True)
    torch.save({"state_dict": {"ctx": torch.zeros(4, 64)}, "epoch": 1}, folder / "model.pth.tar-1")
    status, _, err = run_tool("init-stats", "--no-initial", "--from-runs", tmp_path / "run",
                              capsys=capsys)
    assert status == 2 and "no text prompts 'txt_ctx'" in err and "holds ctx" in err


def test_tsne_rejects_an_unknown_init_and_a_mislabelled_run_before_loading_data(tmp_path, capsys):
    run_dir = fake_run(tmp_path / "run", torch.zeros(K, 64), init="diff")
    status, _, err = run_tool("tsne", "--runs", f"rand={run_dir}", capsys=capsys)
    assert status == 2 and "unknown init method 'rand'" in err and "random, same, diff" in err
    status, _, err = run_tool("tsne", "--runs", f"same={run_dir}", capsys=capsys)
    assert status == 2 and "trained with init 'diff'" in err
    status, _, err = run_tool("tsne", "--runs", f"diff={run_dir}", str(run_dir), capsys=capsys)
    assert status == 2 and "is not INIT=RUN_DIR" in err


def test_a_user_error_from_the_command_line_is_one_line_and_exit_status_2(tmp_path):
    done = subprocess.run(
        [sys.executable, str(TOOL), "init-stats", "--no-initial", "--from-runs",
         str(tmp_path / "nowhere")],
        capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
        timeout=120,
    )
    assert done.returncode == 2
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line == f"error: run folder {tmp_path / 'nowhere'} does not exist."
    assert "Traceback" not in done.stderr


def test_a_run_folder_without_a_record_has_no_recorded_config(tmp_path, capsys):
    from study.config import recorded_cfg

    run_dir = fake_run(tmp_path / "run", torch.zeros(K, 64))
    assert recorded_cfg(str(run_dir)) is None


def test_tsne_class_names_stay_inside_their_panel():
    # Points at the corners and edges of the embedding, with EuroSAT's longest names.
    import matplotlib.pyplot as plt

    names = ["Herbaceous Vegetation Land", "Permanent Crop Land", "Residential Buildings",
             "Industrial Buildings", "Annual Crop Land", "Highway or Road"]
    xy = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0], [5.0, 0.0], [10.0, 5.0]])
    generator = torch.Generator().manual_seed(0)
    features = torch.nn.functional.normalize(torch.randn(len(names), 8, generator=generator), dim=1)
    panels = [tsne.Panel("diff", Path("run"), 1, features)]
    fig = tsne.draw_panels(panels, [xy], names, label_points=True)
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        axis = fig.axes[0]
        box = axis.get_window_extent(renderer)
        labels = list(axis.texts)
        assert len(labels) == len(names)
        for text in labels:
            extent = text.get_window_extent(renderer)
            assert (box.x0 <= extent.x0 and extent.x1 <= box.x1 and box.y0 <= extent.y0
                    and extent.y1 <= box.y1), text.get_text()
    finally:
        plt.close(fig)
