"""tools/analyze_prompts.py losses: per-epoch loss terms from log.txt and tensorboard events.

Run folders are written here in the toolbox's formats (its training line; tensorboard scalars
``train/<name>`` at step epoch0 * batches + batch0, written with torch's SummaryWriter), plus the
real DAPT_Init log of tests/fixtures. Expected numbers are read back from what was written,
with a parse written here, never from the tool.
"""
from __future__ import annotations

import csv
import random
import statistics
from pathlib import Path

import pytest

from tools import analyze_prompts

FIXTURE_RUN = (Path(__file__).resolve().parents[1] / "fixtures" / "dapt_init_run" / "eurosat" / "DAPT_Init"
               / "diff" / "demo_small_2shots" / "seed1")
TERMS = ("loss", "loss_ce", "loss_intra", "loss_inter", "acc")
GRADS = ("grad_ce_vis", "grad_ce_txt", "grad_intra_vis", "grad_intra_txt", "grad_inter_vis",
         "grad_inter_txt")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def train_line(epoch: int, epochs: int, batch: int, batches: int, meters: dict) -> str:
    """One line as Dassl's TrainerX.run_epoch prints it (MetricMeter: 'name val (avg)')."""
    losses = " ".join(f"{name} {val:.4f} ({avg:.4f})" for name, (val, avg) in meters.items())
    return (f"epoch [{epoch}/{epochs}] batch [{batch}/{batches}] time 0.100 (0.120) "
            f"data 0.010 (0.011) {losses} lr 2.0000e-03 eta 0:00:01")


def synthetic_log(rng: random.Random, epochs: range, total_epochs: int, names=TERMS,
                  batches: int = 10, print_freq: int = 5) -> tuple[str, dict]:
    """Training lines every print_freq batches; returns the text and {name: {epoch: avg}} of
    the last line of each epoch, rounded as printed."""
    lines, last = ["Initialize tensorboard (log_dir=x/tensorboard)"], {}
    for epoch in epochs:
        for batch in range(print_freq, batches + 1, print_freq):
            meters = {name: (rng.uniform(0, 5), rng.uniform(0, 5)) for name in names}
            lines.append(train_line(epoch, total_epochs, batch, batches, meters))
            for name, (_, avg) in meters.items():
                last.setdefault(name, {})[epoch] = float(f"{avg:.4f}")
    return "\n".join(lines) + "\n", last


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as file:
        return list(csv.DictReader(file))


def assert_valid_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    import matplotlib.image

    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) > 100


def last_averages_in_log(path: Path) -> dict[str, dict[int, float]]:
    """The test's own reading of a real log: '(avg)' of the last printed line of each epoch."""
    found: dict[str, dict[int, float]] = {}
    for line in path.read_text().splitlines():
        if not line.startswith("epoch ["):
            continue
        words = line.split()
        epoch = int(words[1].strip("[]").split("/")[0])
        for index, word in enumerate(words):
            if word in TERMS:
                found.setdefault(word, {})[epoch] = float(words[index + 2].strip("()"))
    return found


def test_two_seeds_and_the_real_log_give_a_png_and_the_logs_numbers(tmp_path, capsys):
    rng = random.Random(3)
    setting = tmp_path / "output" / "eurosat" / "DAPT_Init" / "same" / "vit_b16_4shots"
    expected = {}
    for seed in (1, 2):
        run_dir = setting / f"seed{seed}"
        run_dir.mkdir(parents=True)
        names = TERMS + GRADS if seed == 1 else TERMS  # only seed 1 logged gradient norms
        if seed == 2:  # a resumed run: epoch 2 again in the newer log, which must win
            first, early = synthetic_log(rng, range(1, 3), 3, names)
            (run_dir / "log.txt").write_text(first)
            text, later = synthetic_log(rng, range(2, 4), 3, names)
            (run_dir / "log.txt-2026-01-02-03-04-05").write_text(text)
            last = {name: {**early[name], **later[name]} for name in names}
        else:
            text, last = synthetic_log(rng, range(1, 4), 3, names)
            (run_dir / "log.txt").write_text(text)
        expected[seed] = last
    out = tmp_path / "figs" / "losses.png"
    status = analyze_prompts.run(["losses", str(setting / "seed1"), str(setting / "seed2"),
                                  str(FIXTURE_RUN), "--out", str(out)])
    assert status == 0, capsys.readouterr().err
    assert_valid_png(out)
    rows = read_csv(out.with_suffix(".csv"))
    runs = [row for row in rows if row["statistic"] == "run"]
    for seed in (1, 2):
        for epoch in (1, 2, 3):
            [row] = [r for r in runs if r["seed"] == str(seed) and r["epoch"] == str(epoch)
                     and r["run_dir"] == str(setting / f"seed{seed}")]
            for name, series in expected[seed].items():
                assert float(row[name]) == series[epoch], (seed, epoch, name)
            if seed == 2:
                assert all(row[name] == "" for name in GRADS)
    # The real DAPT_Init log, read back by the test's own parse.
    fixture = last_averages_in_log(FIXTURE_RUN / "log.txt")
    fixture_rows = [r for r in runs if r["run_dir"] == str(FIXTURE_RUN)]
    assert [int(r["epoch"]) for r in fixture_rows] == [1, 2, 3]
    for row in fixture_rows:
        for name in TERMS:
            assert float(row[name]) == fixture[name][int(row["epoch"])]
    # Two seeds of one setting: mean and population std rows.
    for statistic, function in (("mean", statistics.fmean), ("std", statistics.pstdev)):
        [row] = [r for r in rows if r["statistic"] == statistic and r["epoch"] == "3"]
        for name in TERMS:
            assert float(row[name]) == pytest.approx(
                function([expected[1][name][3], expected[2][name][3]]), abs=1e-12)
        assert float(row["grad_ce_vis"]) == pytest.approx(
            function([expected[1]["grad_ce_vis"][3]]), abs=1e-12)  # one seed logged it


def test_tensorboard_events_give_each_epochs_last_step(tmp_path, capsys):
    from torch.utils.tensorboard import SummaryWriter
    import numpy as np

    rng = random.Random(5)
    run_dir = tmp_path / "run" / "seed4"
    batches, epochs = 3, 4
    text, _ = synthetic_log(rng, range(1, epochs + 1), epochs, batches=batches, print_freq=1)
    run_dir.mkdir(parents=True)
    (run_dir / "log.txt").write_text(text)
    written: dict[str, list[float]] = {name: [] for name in ("loss", "acc", "grad_ce_txt")}
    writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
    for step in range(epochs * batches):  # as Dassl: every batch, step = epoch0*batches+batch0
        for name, values in written.items():
            values.append(rng.uniform(0, 10))
            writer.add_scalar(f"train/{name}", values[-1], step)
        writer.add_scalar("train/lr", 0.002, step)
    writer.close()
    out = tmp_path / "tb.png"
    assert analyze_prompts.run(["losses", str(run_dir), "--out", str(out)]) == 0
    rows = read_csv(out.with_suffix(".csv"))
    assert {row["source"] for row in rows} == {"tensorboard"}
    assert [int(row["epoch"]) for row in rows] == list(range(1, epochs + 1))
    for row in rows:
        step = int(row["epoch"]) * batches - 1
        for name, values in written.items():
            assert float(row[name]) == float(np.float32(values[step]))  # stored as float32
    assert "lr" not in rows[0]
    # --source log reads the same folder's log.txt instead.
    assert analyze_prompts.run(["losses", str(run_dir), "--out", str(out), "--source",
                                "log"]) == 0
    assert {row["source"] for row in read_csv(out.with_suffix(".csv"))} == {"log.txt"}


def test_a_folder_without_training_lines_is_one_error_line(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "log.txt").write_text("Loading trainer: DAPT_Init\n")
    out = tmp_path / "x.png"
    assert analyze_prompts.run(["losses", str(tmp_path / "run"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "no training lines" in err
    assert not out.exists()


def test_identical_curves_stay_visible_each_with_its_own_style():
    # Three settings logging the very same values (as text inits do for the intra term).
    import matplotlib.pyplot as plt

    from analysis.losses import Line, draw_lines

    series = {"loss_intra": {1: 0.5, 2: 0.25, 3: 0.125}}
    lines = [Line(label, [], series, {"loss_intra": {1: 0.0, 2: 0.0, 3: 0.0}},
                  {"loss_intra": {1: 1, 2: 1, 3: 1}}) for label in ("random", "same", "diff")]
    figure = draw_lines(lines)
    try:
        drawn = figure.axes[0].get_lines()
        assert [line.get_label() for line in drawn] == ["random", "same", "diff"]
        assert all(list(line.get_ydata()) == [0.5, 0.25, 0.125] for line in drawn)
        assert len({(line.get_linestyle(), line.get_marker()) for line in drawn}) == 3
        # Drawn first = wider and larger markers: each shows around the ones above it.
        widths = [line.get_linewidth() for line in drawn]
        sizes = [line.get_markersize() for line in drawn]
        assert widths == sorted(widths, reverse=True) and len(set(widths)) == 3
        assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 3
        assert all(line.get_markerfacecolor() == "none" for line in drawn)
    finally:
        plt.close(figure)
