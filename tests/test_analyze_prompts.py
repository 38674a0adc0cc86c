"""tools/analyze_prompts.py: first-token statistics per init (analysis 2) and t-SNE (analysis 3).

The init-stats tests need no toolbox: they rebuild the initial prompts by hand from the
documented rules and compare numbers. The tests marked ``requires_toolbox`` train one tiny
1-epoch run per init with the real train.py and run the tool on them.
"""
from __future__ import annotations

import csv
import io
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.integration import prepared_workdir, run_train, train_command
from tests.toolbox import requires_toolbox
from tools import analyze_prompts
from tools.prompt_analysis import common, tsne

REPO = Path(__file__).resolve().parent.parent
TOOL = REPO / "tools" / "analyze_prompts.py"
INITS = ("random", "same", "diff")
EOS_ID = 49407
K = 16  # text tokens (default)
V = 16  # visual tokens (default), drawn before the text tokens


# ------------------------------------------------------------------------------------ helpers
def run_tool(*args: str, capsys) -> tuple[int, str, str]:
    """The tool in-process: exit status, stdout, stderr."""
    status = analyze_prompts.run([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return status, out, err


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def stats_of(rows: list[dict[str, str]], **match: str) -> tuple[float, ...]:
    """(mean, std, min, max) of the one row whose columns equal ``match``."""
    found = [row for row in rows if all(row[key] == value for key, value in match.items())]
    assert len(found) == 1, (match, found)
    return tuple(float(found[0][name]) for name in ("mean", "std", "min", "max"))


def numpy_stats(values: torch.Tensor) -> tuple[float, ...]:
    array = values.detach().double().numpy().ravel()
    return array.mean(), array.std(ddof=1), array.min(), array.max()


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


# ----------------------------------------------------- real runs (toolbox, ~45 s in all)
@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """One 1-epoch run per init on tiny EuroSAT-layout data (seed 1, 2 shots, 10 classes)."""
    workdir = prepared_workdir(tmp_path_factory.mktemp("analyze_prompts"))
    runs = {}
    for init in INITS:
        command = train_command(workdir, init, "OPTIM.MAX_EPOCH", "1",
                                output_dir=workdir / "runs" / init)
        done = run_train(command)
        assert done.returncode == 0, done.stderr[-2000:]
        runs[init] = workdir / "runs" / init
    return workdir, runs


def tsne_command(workdir: Path, runs: dict[str, Path], out: Path, *extra: str) -> list[str]:
    """The tool with the data and config arguments of tests.integration's train command."""
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

    from study.config import logged_command, run_cfg, setup_cfg
    from trainers.dapt_init.runstate import fingerprint_keys

    workdir, runs = trained_runs
    command = train_command(workdir, "random", "OPTIM.MAX_EPOCH", "1",
                            output_dir=runs["random"])
    from study.config import parse_args

    original = setup_cfg(parse_args(command[2:]))
    rebuilt = run_cfg(str(runs["random"]))
    assert fingerprint_keys(rebuilt) == fingerprint_keys(original)
    assert rebuilt.DATASET.ROOT == original.DATASET.ROOT
    assert rebuilt.TRAINER.DAPT_INIT.CLIP_WEIGHTS == str(workdir / "small_clip.pt")
    assert vars(logged_command(str(runs["random"]))) == vars(parse_args(command[2:]))

    unfinished = shutil.copytree(runs["random"], tmp_path / "unfinished")
    (unfinished / "result.json").unlink()
    assert fingerprint_keys(run_cfg(str(unfinished))) == fingerprint_keys(original)


def test_a_run_folder_without_a_record_asks_for_the_train_arguments(tmp_path, capsys):
    from study.config import run_cfg
    from trainers.dapt_init.errors import DaptInitError

    run_dir = fake_run(tmp_path / "run", torch.zeros(K, 64))
    with pytest.raises(DaptInitError, match="records no config"):
        run_cfg(str(run_dir))


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
