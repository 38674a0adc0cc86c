"""Tests of parse_test_res.py --study: the few-shot, base-to-new and domain-generalisation
tables on synthetic output roots, their formats and plot, and the study options.

Expected numbers are computed here with the statistics module from the values written into the
logs, never copied from the parser. CLI checks run the script as a subprocess.
"""
from __future__ import annotations

import csv
import io
import random
import re
import statistics
from pathlib import Path

import pytest

from study.run import dataset_display_name
from tests.support.logfixtures import (base2new_run_dir, eval_only_log, fewshot_run_dir, in_progress_log,
                               training_log, write_log)
from tests.support.parse_res_helpers import ROUNDED, assert_cell, run_cli

# ---- Study mode ------------------------------------------------------------------------------
STUDY_DATASETS = ("eurosat", "oxford_pets")
STUDY_INITS = ("diff", "random", "same")  # written out of order on purpose
STUDY_SHOTS = (1, 4, 16)
MISSING_CELL = ("oxford_pets", "diff", 1)
TWO_SEED_CELL = ("eurosat", "same", 4)


@pytest.fixture(scope="module")
def study_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """An output root with 2 datasets x 3 inits x 3 shots x 3 seeds; one cell has no runs and
    one has a run in progress. Returns the root and the values written per cell."""
    root = tmp_path_factory.mktemp("output")
    rng = random.Random(7)
    written: dict[tuple[str, str, int], list[float]] = {}
    for dataset in STUDY_DATASETS:
        for init in STUDY_INITS:
            for shots in STUDY_SHOTS:
                if (dataset, init, shots) == MISSING_CELL:
                    continue
                values = [round(rng.uniform(40, 95), 1) for _ in range(3)]
                for seed, accuracy in enumerate(values, start=1):
                    run_dir = fewshot_run_dir(root, dataset, init, shots, seed)
                    if (dataset, init, shots) == TWO_SEED_CELL and seed == 3:
                        write_log(run_dir, in_progress_log())
                    else:
                        write_log(run_dir, training_log(accuracy))
                written[(dataset, init, shots)] = (values[:2] if (dataset, init, shots)
                                                   == TWO_SEED_CELL else values)
    return root, written


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_study_table_rows_are_init_by_ascending_shots_and_cells_are_mean_std_n(
        study_tree: tuple[Path, dict]) -> None:
    root, written = study_tree
    result = run_cli("--study", root, "--format", "csv")
    assert result.returncode == 0, result.stderr
    header, *rows = csv_rows(result.stdout)
    assert header == ["init", "shots", "EuroSAT", "OxfordPets"]
    assert [(row[0], int(row[1])) for row in rows] == [
        (init, shots) for init in ("random", "same", "diff") for shots in (1, 4, 16)]
    for row in rows:
        for dataset, cell in zip(STUDY_DATASETS, row[2:]):
            values = written.get((dataset, row[0], int(row[1])))
            if values is None:
                assert cell == "-"
            else:
                assert_cell(cell, values)
    assert re.search(r"seed3: in progress", result.stderr)


def test_csv_round_trip_gives_the_cells_of_the_markdown_table(
        study_tree: tuple[Path, dict]) -> None:
    root, _ = study_tree
    from_csv = csv_rows(run_cli("--study", root, "--format", "csv").stdout)
    markdown = run_cli("--study", root, "--format", "github").stdout.splitlines()
    table_lines = [line for line in markdown if line.startswith("|")]
    from_markdown = [[cell.strip() for cell in line.strip("|").split("|")]
                     for line in table_lines if not set(line) <= set("|-: ")]
    assert from_csv == from_markdown


def test_plain_and_latex_formats(study_tree: tuple[Path, dict]) -> None:
    root, _ = study_tree
    plain = run_cli("--study", root).stdout
    assert plain.splitlines()[0].startswith("Few-shot: test accuracy (%), mean +- std")
    assert re.search(r"^random\s+16\s+[\d.]+ \+- [\d.]+ \(3\)", plain, re.MULTILINE)
    github = run_cli("--study", root, "--format", "github").stdout
    assert run_cli("--study", root, "--format", "markdown").stdout == github
    latex = run_cli("--study", root, "--format", "latex").stdout
    assert r"\begin{tabular}" in latex and r"$\pm$" in latex and "OxfordPets" in latex


def test_plot_writes_a_readable_png(study_tree: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = study_tree
    png = tmp_path / "accuracy.png"
    result = run_cli("--study", root, "--plot", png)
    assert result.returncode == 0, result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    pixels = matplotlib.image.imread(png)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100


def test_base_to_new_harmonic_mean_is_taken_of_the_means(tmp_path: Path) -> None:
    base = [90.0, 70.0]
    new = [10.0, 50.0]
    for seed, (base_accuracy, new_accuracy) in enumerate(zip(base, new), start=1):
        write_log(base2new_run_dir(tmp_path, "train_base", "eurosat", "diff", seed),
                  training_log(base_accuracy))
        write_log(base2new_run_dir(tmp_path, "test_new", "eurosat", "diff", seed),
                  eval_only_log(new_accuracy))
    mean_base, mean_new = statistics.fmean(base), statistics.fmean(new)
    harmonic_of_means = statistics.harmonic_mean([mean_base, mean_new])
    mean_of_harmonics = statistics.fmean(statistics.harmonic_mean(pair) for pair in zip(base, new))
    # The data tells H of the means from the mean of per-seed H and from the plain mean.
    assert abs(harmonic_of_means - mean_of_harmonics) > 1
    assert abs(harmonic_of_means - statistics.fmean([mean_base, mean_new])) > 1

    result = run_cli("--study", tmp_path, "--format", "csv", "--table", "base2new")
    header, row = csv_rows(result.stdout)
    assert header == ["dataset", "init", "shots", "base", "new", "H"]
    assert row[:3] == ["EuroSAT", "diff", "16"]
    assert_cell(row[3], base)
    assert_cell(row[4], new)
    assert float(row[5]) == pytest.approx(harmonic_of_means, abs=ROUNDED)


def test_base_to_new_without_new_results_has_no_harmonic_mean(tmp_path: Path) -> None:
    write_log(base2new_run_dir(tmp_path, "train_base", "dtd", "same", 1), training_log(80.0))
    result = run_cli("--study", tmp_path, "--format", "csv")
    assert csv_rows(result.stdout)[1][-2:] == ["-", "-"]


def test_coop_layout_and_trainers_without_init_get_trainer_rows(tmp_path: Path) -> None:
    coop = [62.5, 65.1]
    dapt = [70.0, 71.2]
    for seed, accuracy in enumerate(coop, start=1):
        write_log(fewshot_run_dir(tmp_path, "eurosat", None, 16, seed, trainer="CoOp",
                                  extra="nctx16_cscFalse_ctpend"), training_log(accuracy))
    for seed, accuracy in enumerate(dapt, start=1):
        write_log(fewshot_run_dir(tmp_path, "eurosat", None, 16, seed, trainer="DAPT"),
                  training_log(accuracy))
    write_log(fewshot_run_dir(tmp_path, "eurosat", "random", 16, 1), training_log(71.0))
    rows = csv_rows(run_cli("--study", tmp_path, "--format", "csv").stdout)[1:]
    assert [row[0] for row in rows] == ["random", "CoOp/nctx16_cscFalse_ctpend", "DAPT"]
    assert_cell(rows[1][2], coop)
    assert_cell(rows[2][2], dapt)


def test_domain_generalisation_targets_are_columns_of_their_own_table(tmp_path: Path) -> None:
    targets = {"imagenet_sketch": [48.1, 48.5], "imagenetv2": [64.0, 64.4]}
    for dataset, values in targets.items():
        for seed, accuracy in enumerate(values, start=1):
            write_log(fewshot_run_dir(tmp_path / "evaluation", dataset, "diff", 16, seed),
                      eval_only_log(accuracy))
    write_log(fewshot_run_dir(tmp_path, "imagenet", "diff", 16, 1), training_log(72.0))
    result = run_cli("--study", tmp_path, "--format", "csv", "--table", "dg")
    header, row = csv_rows(result.stdout)
    assert header == ["init", "shots", "ImageNetV2", "ImageNetSketch"]
    assert_cell(row[2], targets["imagenetv2"])
    assert_cell(row[3], targets["imagenet_sketch"])


def test_several_tables_in_csv_are_titled(tmp_path: Path) -> None:
    write_log(fewshot_run_dir(tmp_path, "eurosat", "diff", 4, 1), training_log(60.6))
    write_log(fewshot_run_dir(tmp_path / "evaluation", "imagenetv2", "diff", 16, 1),
              eval_only_log(64.0))
    rows = csv_rows(run_cli("--study", tmp_path, "--format", "csv").stdout)
    titles = [row[0] for row in rows if row and row[0].startswith("# ")]
    assert [title.split(":")[0] for title in titles] == ["# Few-shot",
                                                         "# Domain generalisation (target "
                                                         "datasets)"]


def test_cell_mixing_two_configs_is_split_by_config(tmp_path: Path) -> None:
    write_log(fewshot_run_dir(tmp_path, "eurosat", "diff", 4, 1), training_log(60.0))
    other = tmp_path / "eurosat" / "DAPT_Init" / "diff" / "vit_b16_ep10_4shots" / "seed1"
    write_log(other, training_log(50.0))
    labels = [row[0] for row in csv_rows(run_cli("--study", tmp_path, "--format", "csv").stdout)]
    assert labels[1:] == ["diff [vit_b16_ep10]", "diff [vit_b16_ep100]"]


def test_study_skips_paths_of_no_known_layout(tmp_path: Path) -> None:
    write_log(tmp_path / "stray" / "seed1", training_log(10.0))
    write_log(fewshot_run_dir(tmp_path, "eurosat", "diff", 4, 1), training_log(60.6))
    result = run_cli("--study", tmp_path)
    assert result.returncode == 0
    assert re.search(r"stray/seed1: path matches no layout", result.stderr)


@pytest.mark.parametrize("folder, display", [("eurosat", "EuroSAT"), ("oxford_pets", "OxfordPets"),
                                             ("fgvc_aircraft", "FGVCAircraft"),
                                             ("imagenet_a", "ImageNetA"), ("my_data", "my_data")])
def test_dataset_display_names(folder: str, display: str) -> None:
    assert dataset_display_name(folder) == display


@pytest.mark.parametrize("args", [["--plot", "x.png"], ["--format", "csv"],
                                  ["--study", "--multi-exp"]])
def test_study_options_are_checked(tmp_path: Path, args: list[str]) -> None:
    result = run_cli(tmp_path, *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
