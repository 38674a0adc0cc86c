"""parse_test_res.py --study places a run by the spec it recorded in result.json ("spec"), and
by its folder names only where there is no such record (CoOp-family trees, older runs).
In-process; every expected cell is computed here from the values written."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import parse_test_res as parser
from results.labels import INIT_ORDER
from results.study import collect_study
from trainers.dapt_init.runstate import RESULT_FILE
from tests.support.logfixtures import (base2new_run_dir, fewshot_run_dir, training_log, write_log,
                               write_result_json)


def spec(kind: str = "train", dataset: str = "EuroSAT", init: str = "diff", shots: int = 4,
         seed: int = 1, **fields: object) -> dict:
    """The record train.py writes under "spec" (vis_init random, no tag, no grid by default)."""
    record = {"kind": kind, "dataset": dataset, "init": init, "vis_init": "random",
              "config": "vit_b16_ep100", "shots": shots, "seed": seed, "tag": "", "grid": {}}
    record.update(fields)
    return record


def write_run(run_dir: Path, value: float, run_spec: dict | None) -> None:
    write_log(run_dir, training_log(value))
    if run_spec is not None:
        write_result_json(run_dir, value, spec=run_spec)


def study_csv(capsys, root: Path) -> tuple[list[str], dict[tuple[str, ...], list[str]], str]:
    """(header, {row key cells before the first dataset column: row}, stderr) of --format csv."""
    status = parser.main(["--study", str(root), "--format", "csv", "--table", "fewshot"])
    out, err = capsys.readouterr()
    assert status == 0, err
    header, *rows = list(csv.reader(io.StringIO(out)))
    keys = header.index("shots") + 1
    return header, {tuple(row[:keys]): row for row in rows}, err


def test_the_recorded_spec_wins_over_folder_names_that_disagree(tmp_path, capsys):
    # The folders say EuroSAT, diff, 4 shots, seed1; the record says OxfordPets, same, 8 shots,
    # seed 2 (a moved or renamed run): the record places it.
    moved = fewshot_run_dir(tmp_path, "eurosat", "diff", 4, 1)
    write_run(moved, 81.5, spec(dataset="OxfordPets", init="same", shots=8, seed=2,
                                config="vit_b16_ep200"))
    # A run whose record agrees with its folders, beside it in the same cell of the record.
    agreeing = fewshot_run_dir(tmp_path, "oxford_pets", "same", 8, 1)
    write_run(agreeing, 78.5, spec(dataset="OxfordPets", init="same", shots=8, seed=1,
                                   config="vit_b16_ep200"))
    header, rows, err = study_csv(capsys, tmp_path)
    assert header == ["init", "shots", "OxfordPets"]  # no EuroSAT column: nothing is there
    assert list(rows) == [("same", "8")]
    assert rows[("same", "8")][2] == f"{(81.5 + 78.5) / 2:.2f} +- {abs(81.5 - 78.5) / 2:.2f} (2)"
    note = next(line for line in err.splitlines() if "disagree" in line)
    assert note.startswith("  eurosat/DAPT_Init/diff/vit_b16_ep100_4shots/seed1: ")
    for field in ("dataset oxford_pets (folders: eurosat)", "init same (folders: diff)",
                  "shots 8 (folders: 4)", "seed 2 (folders: 1)",
                  "config vit_b16_ep200 (folders: vit_b16_ep100)", "used the spec"):
        assert field in note
    assert "oxford_pets/DAPT_Init/same" not in err  # the agreeing run has nothing to say


def test_runs_without_a_spec_are_placed_by_their_folder_names(tmp_path, capsys):
    # result.json without "spec" (older DAPT_Init runs): its top-level fields are not a spec,
    # even where they disagree with the folders; no result.json at all (CoOp-family trees).
    older = fewshot_run_dir(tmp_path, "oxford_pets", "same", 16, 3)
    write_log(older, training_log(70.5))
    write_result_json(older, 70.5, dataset="EuroSAT", init_method="diff", shots=4, seed=1)
    coop = fewshot_run_dir(tmp_path, "oxford_pets", None, 16, 1, trainer="CoOp",
                           extra="nctx16_cscFalse_ctpend")
    write_run(coop, 60.5, None)
    header, rows, err = study_csv(capsys, tmp_path)
    assert header == ["init", "shots", "OxfordPets"]
    assert rows[("same", "16")][2] == "70.50 +- 0.00 (1)"
    assert rows[("CoOp/nctx16_cscFalse_ctpend", "16")][2] == "60.50 +- 0.00 (1)"
    assert len(rows) == 2 and "result.json's spec" not in err


def test_a_spec_places_runs_in_folders_of_no_layout_and_kinds_pick_the_table(tmp_path):
    renamed = tmp_path / "my_runs" / "first_try" / "seed1"  # no <cfg>_<N>shots level
    write_run(renamed, 55.5, spec(tag="ep25", vis_init="same"))
    evaluated = tmp_path / "my_runs" / "target" / "seed1"
    write_run(evaluated, 44.5, spec(kind="eval", dataset="ImageNetV2", shots=16))
    tested = base2new_run_dir(tmp_path, "train_base", "dtd", "diff", 1)  # folders say base
    write_run(tested, 33.5, spec(kind="base2new_test", dataset="DescribableTextures",
                                 shots=16))
    runs, named = collect_study(tmp_path, "accuracy", False)
    keys = {run.outcome.run_dir: run.key for run in runs}
    assert len(runs) == len(named) == 3 and all(run.outcome.complete for run in runs)
    assert (keys[renamed].kind, keys[renamed].dataset, keys[renamed].init, keys[renamed].shots,
            keys[renamed].tag, keys[renamed].vis_init) == ("fewshot", "eurosat", "diff", 4,
                                                           "ep25", "same")
    assert (keys[evaluated].kind, keys[evaluated].dataset) == ("dg", "imagenetv2")
    # An unknown dataset name is kept as recorded; the split comes from the kind.
    assert (keys[tested].kind, keys[tested].split, keys[tested].dataset) == (
        "base2new", "new", "DescribableTextures")
    assert keys[renamed].trainer == "DAPT_Init"  # the record's "trainer"


def test_an_unusable_spec_falls_back_to_the_folder_names_with_a_note(tmp_path, capsys):
    run_dir = fewshot_run_dir(tmp_path, "eurosat", "diff", 4, 1)
    write_run(run_dir, 50.5, spec(shots="four"))
    no_layout = tmp_path / "loose" / "seed1"
    write_run(no_layout, 40.5, spec(init="clever"))  # not one of INIT_METHODS
    _, rows, err = study_csv(capsys, tmp_path)
    assert list(rows) == [("diff", "4")] and rows[("diff", "4")][2] == "50.50 +- 0.00 (1)"
    assert "spec is unusable (shots is 'four', not a whole number); placed by its folder" in err
    assert "loose/seed1: path matches no layout" in err
    assert "init is 'clever', not one of random, same, diff" in err


def test_runs_of_one_cell_with_different_sweep_settings_are_not_pooled(tmp_path, capsys):
    for seed, (epochs, value) in enumerate([(25, 40.5), (50, 60.5), (50, 61.5)], start=1):
        write_run(fewshot_run_dir(tmp_path, "eurosat", "diff", 4, seed), value,
                  spec(seed=seed, grid={"OPTIM.MAX_EPOCH": epochs}))
    _, rows, _ = study_csv(capsys, tmp_path)
    assert rows[("diff [OPTIM.MAX_EPOCH=25]", "4")][2] == "40.50 +- 0.00 (1)"
    assert rows[("diff [OPTIM.MAX_EPOCH=50]", "4")][2] == "61.00 +- 0.50 (2)"
    assert len(rows) == 2


def test_one_name_for_the_result_file_and_the_inits():
    from trainers.dapt_init import config, runstate

    assert RESULT_FILE is runstate.RESULT_FILE
    assert INIT_ORDER is config.INIT_METHODS
