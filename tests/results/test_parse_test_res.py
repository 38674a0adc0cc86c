"""Tests of parse_test_res.py on synthetic run folders in Dassl's and DAPT_Init's formats.

Expected numbers are computed here with the statistics module from the values written into the
logs, never copied from the parser. CLI checks run the script as a subprocess.
"""
from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path

import pytest

from results.logs import log_files_newest_first
from results.numbers import parse_metric_value, summarize
from results.outcomes import outcome_from_logs, read_run
from tests.support.logfixtures import (crashed_log, eval_only_log, fewshot_run_dir, in_progress_log,
                               training_log, write_log, write_result_json)
from tests.support.parse_res_helpers import ROUNDED, run_cli

# Real runs captured from DAPT_Init (added by the lead): every folder holding a log.
REAL_RUN_DIRS = sorted({path.parent for path in
                        (Path(__file__).resolve().parents[1] / "fixtures" / "dapt_init_run").rglob("log.txt*")})
SUMMARY_LINE = re.compile(r"^\* (\w+): ([\d.]+)% \+- ([\d.]+)% \(n=(\d+)\)$", re.MULTILINE)


def summary_of(stdout: str) -> tuple[float, float, int]:
    """(mean, spread, n) of the single summary line of a directory-mode run."""
    matches = SUMMARY_LINE.findall(stdout)
    assert len(matches) == 1, stdout
    _, mean, spread, n = matches[0]
    return float(mean), float(spread), int(n)


def ci95(values: list[float]) -> float:
    return 1.96 * statistics.pstdev(values) / math.sqrt(len(values))


def write_seeds(experiment: Path, accuracies: list[float]) -> None:
    for seed, accuracy in enumerate(accuracies, start=1):
        # Val results before 'Finish training' must not be mistaken for the test result.
        write_log(experiment / f"seed{seed}", training_log(accuracy, val_accuracies=(12.3, 45.6)))


# ---- Statistics ------------------------------------------------------------------------------
def test_summary_uses_population_std_and_coop_ci95() -> None:
    values = [91.1, 86.9, 56.7, 67.4]
    summary = summarize(values)
    assert summary.mean == pytest.approx(statistics.fmean(values))
    assert summary.std == pytest.approx(statistics.pstdev(values))
    assert summary.ci95 == pytest.approx(ci95(values))
    assert summarize([42.0]).std == 0.0


@pytest.mark.parametrize("text, expected", [("91.1%", 91.1), ("2,700", 2700.0), (" 7 ", 7.0),
                                            ("nan%", None), ("inf", None), ("n/a%", None),
                                            ("", None)])
def test_metric_values_parse_only_when_finite_numbers(text: str, expected: float | None) -> None:
    assert parse_metric_value(text) == expected


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
    outcome = read_run(tmp_path / "seed1")
    assert outcome.value == pytest.approx(64.2)


def test_test_log_counts_results_of_logs_without_finish_training(tmp_path: Path) -> None:
    write_log(tmp_path / "seed1", in_progress_log(val_accuracies=(33.3, 44.4)))
    assert not read_run(tmp_path / "seed1").complete
    # CoOp's --test-log: every result after '=> result' counts; the last one is used.
    assert read_run(tmp_path / "seed1", test_log=True).value == pytest.approx(44.4)


# ---- Robustness: one run folder --------------------------------------------------------------
def test_missing_log_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "seed1").mkdir()
    outcome = read_run(tmp_path / "seed1")
    assert not outcome.complete and "missing log.txt" in outcome.skip_reason


def test_run_in_progress_is_skipped(tmp_path: Path) -> None:
    write_log(tmp_path, in_progress_log(val_accuracies=(50.0, 60.0)))
    outcome = read_run(tmp_path)
    assert not outcome.complete and "in progress" in outcome.skip_reason


def test_crashed_run_is_skipped_with_its_exception(tmp_path: Path) -> None:
    write_log(tmp_path, crashed_log("RuntimeError: CUDA out of memory."))
    outcome = read_run(tmp_path)
    assert not outcome.complete
    assert "crashed" in outcome.skip_reason and "CUDA out of memory" in outcome.skip_reason


@pytest.mark.parametrize("bad_value", ["nan%", "n/a%", "inf%"])
def test_non_numeric_accuracy_is_skipped(tmp_path: Path, bad_value: str) -> None:
    write_log(tmp_path, training_log(bad_value))
    outcome = read_run(tmp_path)
    assert not outcome.complete
    assert "non-numeric" in outcome.skip_reason and bad_value in outcome.skip_reason


def test_several_results_in_one_log_use_the_last_with_a_note(tmp_path: Path) -> None:
    write_log(tmp_path, training_log(70.1, 75.3))
    outcome = read_run(tmp_path)
    assert outcome.value == pytest.approx(75.3)
    assert any("2 final 'accuracy' results" in note for note in outcome.notes)


def test_newer_timestamped_log_wins_over_log_txt(tmp_path: Path) -> None:
    write_log(tmp_path, training_log(50.0))
    write_log(tmp_path, training_log(70.0), name="log.txt-2024-05-01-10-00-00")
    outcome = read_run(tmp_path)
    assert outcome.value == pytest.approx(70.0)
    assert outcome.source.name == "log.txt-2024-05-01-10-00-00"


def test_newest_log_with_a_result_is_used_when_a_rerun_is_in_progress(tmp_path: Path) -> None:
    write_log(tmp_path, training_log(50.0))
    write_log(tmp_path, training_log(60.0), name="log.txt-2024-05-01-10-00-00")
    write_log(tmp_path, in_progress_log(), name="log.txt-2024-06-01-10-00-00")
    assert read_run(tmp_path).value == pytest.approx(60.0)


def test_log_files_are_ordered_by_their_time_stamps(tmp_path: Path) -> None:
    names = ["log.txt", "log.txt-2024-12-31-23-59-59", "log.txt-2025-01-01-00-00-00"]
    for name in names:
        write_log(tmp_path, "x", name=name)
    assert [path.name for path in log_files_newest_first(tmp_path)] == names[::-1]


# ---- result.json -----------------------------------------------------------------------------
def test_result_json_is_preferred_over_a_disagreeing_log(tmp_path: Path) -> None:
    write_log(tmp_path, training_log(91.1))
    write_result_json(tmp_path, 90.4)
    outcome = read_run(tmp_path)
    assert outcome.value == pytest.approx(90.4) and outcome.source.name == "result.json"
    assert any("result.json says 90.4" in note for note in outcome.notes)


def test_result_json_rounding_difference_is_not_a_disagreement(tmp_path: Path) -> None:
    write_log(tmp_path, training_log(91.1))  # Dassl prints one decimal
    write_result_json(tmp_path, 91.0625)
    outcome = read_run(tmp_path)
    assert outcome.value == pytest.approx(91.0625) and outcome.notes == []


def test_result_json_counts_when_no_log_holds_a_result(tmp_path: Path) -> None:
    write_log(tmp_path, in_progress_log(), name="log.txt-2024-06-01-10-00-00")
    write_result_json(tmp_path, 83.2)
    outcome = read_run(tmp_path)
    assert outcome.value == pytest.approx(83.2)
    assert any("the log has no usable result" in note for note in outcome.notes)


@pytest.mark.parametrize("json_text", ["{not json", '{"format": "other/9"}',
                                       '{"format": "dapt_init.result/1", '
                                       '"metrics": {"accuracy": "NaN"}}'])
def test_unusable_result_json_falls_back_to_the_log_with_a_note(tmp_path: Path,
                                                                json_text: str) -> None:
    write_log(tmp_path, training_log(77.7))
    (tmp_path / "result.json").write_text(json_text)
    outcome = read_run(tmp_path)
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


# ---- Real logs captured from DAPT_Init runs --------------------------------------------------
@pytest.mark.parametrize("run_dir", REAL_RUN_DIRS, ids=lambda path: path.name)
def test_real_dapt_init_run_is_parsed_complete(run_dir: Path) -> None:
    outcome = read_run(run_dir)
    assert outcome.complete, outcome.skip_reason
    assert 0.0 <= outcome.value <= 100.0
    record_path = run_dir / "result.json"
    if record_path.is_file():
        assert outcome.value == json.loads(record_path.read_text())["metrics"]["accuracy"]
        from_log = outcome_from_logs(run_dir, "accuracy", test_log=False)
        assert from_log.value == pytest.approx(outcome.value, abs=0.05 + 1e-9)
