"""Tests of parse_test_res.py on synthetic run folders in Dassl's and DAPT_Init's formats.

Expected numbers are computed here with the statistics module from the values written into the
logs, never copied from the parser. CLI checks run the script as a subprocess.
"""
from __future__ import annotations

import csv
import io
import json
import math
import random
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

import parse_test_res as parser
from tests.logfixtures import (base2new_run_dir, crashed_log, eval_only_log, fewshot_run_dir,
                               in_progress_log, training_log, write_log, write_result_json)

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "parse_test_res.py"
# Real runs captured from DAPT_Init (added by the lead): every folder holding a log.
REAL_RUN_DIRS = sorted({path.parent for path in
                        (Path(__file__).parent / "fixtures" / "dapt_init_run").rglob("log.txt*")})
SUMMARY_LINE = re.compile(r"^\* (\w+): ([\d.]+)% \+- ([\d.]+)% \(n=(\d+)\)$", re.MULTILINE)
CELL = re.compile(r"^([\d.]+) \+- ([\d.]+) \((\d+)\)$")
ROUNDED = 0.005 + 1e-9  # printed with two decimals


def run_cli(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)


def summary_of(stdout: str) -> tuple[float, float, int]:
    """(mean, spread, n) of the single summary line of a directory-mode run."""
    matches = SUMMARY_LINE.findall(stdout)
    assert len(matches) == 1, stdout
    _, mean, spread, n = matches[0]
    return float(mean), float(spread), int(n)


def ci95(values: list[float]) -> float:
    return 1.96 * statistics.pstdev(values) / math.sqrt(len(values))


def assert_cell(cell: str, values: list[float]) -> None:
    """A 'mean +- std (n)' cell agrees with the statistics module on the values written."""
    match = CELL.match(cell)
    assert match, f"not a 'mean +- std (n)' cell: {cell!r}"
    assert float(match[1]) == pytest.approx(statistics.fmean(values), abs=ROUNDED)
    assert float(match[2]) == pytest.approx(statistics.pstdev(values), abs=ROUNDED)
    assert int(match[3]) == len(values)


def write_seeds(experiment: Path, accuracies: list[float]) -> None:
    for seed, accuracy in enumerate(accuracies, start=1):
        # Val results before 'Finish training' must not be mistaken for the test result.
        write_log(experiment / f"seed{seed}", training_log(accuracy, val_accuracies=(12.3, 45.6)))


# ---- Statistics ------------------------------------------------------------------------------
def test_summary_uses_population_std_and_coop_ci95() -> None:
    values = [91.1, 86.9, 56.7, 67.4]
    summary = parser.summarize(values)
    assert summary.mean == pytest.approx(statistics.fmean(values))
    assert summary.std == pytest.approx(statistics.pstdev(values))
    assert summary.ci95 == pytest.approx(ci95(values))
    assert parser.summarize([42.0]).std == 0.0


@pytest.mark.parametrize("text, expected", [("91.1%", 91.1), ("2,700", 2700.0), (" 7 ", 7.0),
                                            ("nan%", None), ("inf", None), ("n/a%", None),
                                            ("", None)])
def test_metric_values_parse_only_when_finite_numbers(text: str, expected: float | None) -> None:
    assert parser.parse_metric_value(text) == expected


# ---- Directory mode (CoOp-compatible) --------------------------------------------------------
def test_directory_mode_prints_each_run_and_mean_std(tmp_path: Path) -> None:
    accuracies = [91.1, 86.9, 88.4]
    write_seeds(tmp_path / "exp", accuracies)
    result = run_cli(tmp_path / "exp")
    assert result.returncode == 0, result.stderr
    mean, std, n = summary_of(result.stdout)
    assert mean == pytest.approx(statistics.fmean(accuracies), abs=ROUNDED)
    assert std == pytest.approx(statistics.pstdev(accuracies), abs=ROUNDED)
    assert n == 3
    for seed, accuracy in enumerate(accuracies, start=1):
        assert f"seed{seed}/log.txt. accuracy: {accuracy:.2f}%." in result.stdout


def test_ci95_replaces_std(tmp_path: Path) -> None:
    accuracies = [56.7, 60.6, 55.5]
    write_seeds(tmp_path, accuracies)
    _, spread, _ = summary_of(run_cli(tmp_path, "--ci95").stdout)
    assert spread == pytest.approx(ci95(accuracies), abs=ROUNDED)
    assert spread != pytest.approx(statistics.pstdev(accuracies), abs=ROUNDED)


def test_coop_layout_with_extra_level_summarizes_its_seeds(tmp_path: Path) -> None:
    accuracies = [70.2, 72.8]
    experiment = fewshot_run_dir(tmp_path, "eurosat", None, 16, 1, trainer="CoOp",
                                 extra="nctx16_cscFalse_ctpend").parent
    write_seeds(experiment, accuracies)
    mean, _, n = summary_of(run_cli(experiment).stdout)
    assert (mean, n) == (pytest.approx(statistics.fmean(accuracies), abs=ROUNDED), 2)


def test_a_single_run_folder_is_summarized_as_itself(tmp_path: Path) -> None:
    write_log(tmp_path / "seed1", training_log(66.6))
    (tmp_path / "seed1" / "prompt_learner").mkdir()  # checkpoints are not runs
    mean, _, n = summary_of(run_cli(tmp_path / "seed1").stdout)
    assert (mean, n) == (pytest.approx(66.6), 1)


def test_multi_exp_averages_the_experiment_means(tmp_path: Path) -> None:
    experiments = {"exp-1": [80.0, 82.5, 81.1], "exp-2": [60.3, 64.9]}
    for name, accuracies in experiments.items():
        write_seeds(tmp_path / name, accuracies)
    result = run_cli(tmp_path, "--multi-exp")
    assert result.returncode == 0, result.stderr
    means = [statistics.fmean(values) for values in experiments.values()]
    printed = [float(mean) for _, mean, _, _ in SUMMARY_LINE.findall(result.stdout)]
    assert printed == pytest.approx(means, abs=ROUNDED)
    average = re.search(r"Average performance\n\* accuracy: ([\d.]+)%", result.stdout)
    assert float(average[1]) == pytest.approx(statistics.fmean(means), abs=ROUNDED)


def test_keyword_selects_another_metric(tmp_path: Path) -> None:
    f1_scores = [77.7, 70.1]
    for seed, f1 in enumerate(f1_scores, start=1):
        write_log(tmp_path / f"seed{seed}", training_log(90.0, macro_f1=f1))
    mean, _, _ = summary_of(run_cli(tmp_path, "--keyword", "macro_f1").stdout)
    assert mean == pytest.approx(statistics.fmean(f1_scores), abs=ROUNDED)


def test_eval_only_logs_are_read_without_test_log(tmp_path: Path) -> None:
    write_log(tmp_path / "seed1", eval_only_log(64.2))
    outcome = parser.read_run(tmp_path / "seed1")
    assert outcome.value == pytest.approx(64.2)


def test_test_log_counts_results_of_logs_without_finish_training(tmp_path: Path) -> None:
    write_log(tmp_path / "seed1", in_progress_log(val_accuracies=(33.3, 44.4)))
    assert not parser.read_run(tmp_path / "seed1").complete
    # CoOp's --test-log: every result after '=> result' counts; the last one is used.
    assert parser.read_run(tmp_path / "seed1", test_log=True).value == pytest.approx(44.4)


# ---- Robustness: one run folder --------------------------------------------------------------
def test_missing_log_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "seed1").mkdir()
    outcome = parser.read_run(tmp_path / "seed1")
    assert not outcome.complete and "missing log.txt" in outcome.skip_reason


def test_run_in_progress_is_skipped(tmp_path: Path) -> None:
    write_log(tmp_path, in_progress_log(val_accuracies=(50.0, 60.0)))
    outcome = parser.read_run(tmp_path)
    assert not outcome.complete and "in progress" in outcome.skip_reason


def test_crashed_run_is_skipped_with_its_exception(tmp_path: Path) -> None:
    write_log(tmp_path, crashed_log("RuntimeError: CUDA out of memory."))
    outcome = parser.read_run(tmp_path)
    assert not outcome.complete
    assert "crashed" in outcome.skip_reason and "CUDA out of memory" in outcome.skip_reason


@pytest.mark.parametrize("bad_value", ["nan%", "n/a%", "inf%"])
def test_non_numeric_accuracy_is_skipped(tmp_path: Path, bad_value: str) -> None:
    write_log(tmp_path, training_log(bad_value))
    outcome = parser.read_run(tmp_path)
    assert not outcome.complete
    assert "non-numeric" in outcome.skip_reason and bad_value in outcome.skip_reason


def test_several_results_in_one_log_use_the_last_with_a_note(tmp_path: Path) -> None:
    write_log(tmp_path, training_log(70.1, 75.3))
    outcome = parser.read_run(tmp_path)
    assert outcome.value == pytest.approx(75.3)
    assert any("2 final 'accuracy' results" in note for note in outcome.notes)


def test_newer_timestamped_log_wins_over_log_txt(tmp_path: Path) -> None:
    write_log(tmp_path, training_log(50.0))
    write_log(tmp_path, training_log(70.0), name="log.txt-2024-05-01-10-00-00")
    outcome = parser.read_run(tmp_path)
    assert outcome.value == pytest.approx(70.0)
    assert outcome.source.name == "log.txt-2024-05-01-10-00-00"


def test_newest_log_with_a_result_is_used_when_a_rerun_is_in_progress(tmp_path: Path) -> None:
    write_log(tmp_path, training_log(50.0))
    write_log(tmp_path, training_log(60.0), name="log.txt-2024-05-01-10-00-00")
    write_log(tmp_path, in_progress_log(), name="log.txt-2024-06-01-10-00-00")
    assert parser.read_run(tmp_path).value == pytest.approx(60.0)


def test_log_files_are_ordered_by_their_time_stamps(tmp_path: Path) -> None:
    names = ["log.txt", "log.txt-2024-12-31-23-59-59", "log.txt-2025-01-01-00-00-00"]
    for name in names:
        write_log(tmp_path, "x", name=name)
    assert [path.name for path in parser.log_files_newest_first(tmp_path)] == names[::-1]


# ---- result.json -----------------------------------------------------------------------------
def test_result_json_is_preferred_over_a_disagreeing_log(tmp_path: Path) -> None:
    write_log(tmp_path, training_log(91.1))
    write_result_json(tmp_path, 90.4)
    outcome = parser.read_run(tmp_path)
    assert outcome.value == pytest.approx(90.4) and outcome.source.name == "result.json"
    assert any("result.json says 90.4" in note for note in outcome.notes)


def test_result_json_rounding_difference_is_not_a_disagreement(tmp_path: Path) -> None:
    write_log(tmp_path, training_log(91.1))  # Dassl prints one decimal
    write_result_json(tmp_path, 91.0625)
    outcome = parser.read_run(tmp_path)
    assert outcome.value == pytest.approx(91.0625) and outcome.notes == []


def test_result_json_counts_when_no_log_holds_a_result(tmp_path: Path) -> None:
    write_log(tmp_path, in_progress_log(), name="log.txt-2024-06-01-10-00-00")
    write_result_json(tmp_path, 83.2)
    outcome = parser.read_run(tmp_path)
    assert outcome.value == pytest.approx(83.2)
    assert any("the log has no usable result" in note for note in outcome.notes)


@pytest.mark.parametrize("json_text", ["{not json", '{"format": "other/9"}',
                                       '{"format": "dapt_init.result/1", '
                                       '"metrics": {"accuracy": "NaN"}}'])
def test_unusable_result_json_falls_back_to_the_log_with_a_note(tmp_path: Path,
                                                                json_text: str) -> None:
    write_log(tmp_path, training_log(77.7))
    (tmp_path / "result.json").write_text(json_text)
    outcome = parser.read_run(tmp_path)
    assert outcome.value == pytest.approx(77.7) and outcome.source.name == "log.txt"
    assert any("result.json" in note for note in outcome.notes)


# ---- Robustness: the CLI ---------------------------------------------------------------------
def test_summary_covers_complete_runs_and_lists_every_skipped_run(tmp_path: Path) -> None:
    write_log(tmp_path / "seed1", training_log(80.4))
    write_log(tmp_path / "seed2", training_log(60.0, 84.6))  # several results: last used
    (tmp_path / "seed3").mkdir()
    write_log(tmp_path / "seed4", in_progress_log())
    write_log(tmp_path / "seed5", crashed_log("ValueError: bad config"))
    write_log(tmp_path / "seed6", training_log("nan%"))
    result = run_cli(tmp_path)
    assert result.returncode == 0
    mean, _, n = summary_of(result.stdout)
    assert (mean, n) == (pytest.approx(statistics.fmean([80.4, 84.6]), abs=ROUNDED), 2)
    skipped = result.stderr.split("Skipped (4):")[1].split("Notes")[0]
    for seed, reason in [(3, "missing log.txt"), (4, "in progress"), (5, "ValueError: bad config"),
                         (6, "non-numeric")]:
        assert re.search(rf"seed{seed}: .*{re.escape(reason)}", skipped), result.stderr
    assert re.search(r"Notes \(1\):\n .*seed2: 2 final", result.stderr)
    assert "Traceback" not in result.stderr


def test_exit_status_is_non_zero_only_when_nothing_is_complete(tmp_path: Path) -> None:
    write_log(tmp_path / "seed1", crashed_log())
    write_log(tmp_path / "seed2", in_progress_log())
    broken = run_cli(tmp_path)
    assert broken.returncode == 1 and "Traceback" not in broken.stderr
    assert run_cli(tmp_path, "--study").returncode == 1
    write_log(tmp_path / "seed3", training_log(55.5))
    assert run_cli(tmp_path).returncode == 0


def test_empty_folder_exits_non_zero_without_traceback(tmp_path: Path) -> None:
    result = run_cli(tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr


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
    assert parser.dataset_display_name(folder) == display


@pytest.mark.parametrize("args", [["--plot", "x.png"], ["--format", "csv"],
                                  ["--study", "--multi-exp"]])
def test_study_options_are_checked(tmp_path: Path, args: list[str]) -> None:
    result = run_cli(tmp_path, *args)
    assert result.returncode == 2 and "Traceback" not in result.stderr


# ---- Real logs captured from DAPT_Init runs --------------------------------------------------
@pytest.mark.parametrize("run_dir", REAL_RUN_DIRS, ids=lambda path: path.name)
def test_real_dapt_init_run_is_parsed_complete(run_dir: Path) -> None:
    outcome = parser.read_run(run_dir)
    assert outcome.complete, outcome.skip_reason
    assert 0.0 <= outcome.value <= 100.0
    record_path = run_dir / "result.json"
    if record_path.is_file():
        assert outcome.value == json.loads(record_path.read_text())["metrics"]["accuracy"]
        from_log = parser.outcome_from_logs(run_dir, "accuracy", test_log=False)
        assert from_log.value == pytest.approx(outcome.value, abs=0.05 + 1e-9)
