"""study/run_read.py and its two consumers (the parser's collect_study, the report's read_tree):
every problem of one run's record is a note or a status on that run, never an exception and
never a hang (issue 25 family 2); runs whose weights or identity differ from their cell's are
marked or noted, never pooled in silence (family 3). Trees are bench_report's hand-made runs:
real result.json and log.txt files, real prompt files, real FIFOs.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
from pathlib import Path
from typing import Any, Callable

import pytest

from benchmarks import bench_report
from reporting.analyses import first_token_stats
from reporting.runs import read_tree
from reporting.study import build_study
from results.study import collect_study
from results.tables import build_grid_table, grid_text_table
from results.labels import label_methods
from study.run_read import read_json

SEEDS = (1, 2, 3)
# random: 50, 51, 52; diff: 54, 55, 56 (seed 2 of random is the run each case damages)
ACCURACY = {"random": 50.0, "diff": 54.0}
RUN = "eurosat/DAPT_Init/random/vit_b16_ep50_1shots/seed2"


def accuracy(dataset: str, init: str, shots: int, seed: int) -> float:
    return ACCURACY[init] + seed - 1


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("runs")
    return bench_report.make_tree(workdir, datasets=("EuroSAT",), inits=("random", "diff"),
                                  shots=(1,), seeds=SEEDS, accuracy=accuracy)


@pytest.fixture()
def tree(pristine: Path, tmp_path: Path) -> Path:
    root = tmp_path / "output"
    shutil.copytree(pristine, root)
    return root


@pytest.fixture(autouse=True)
def no_hang():
    """A reader that blocks (a FIFO opened for reading) fails the test instead of hanging it."""
    def timed_out(signum: int, frame: Any) -> None:
        raise TimeoutError("a reader blocked")
    previous = signal.signal(signal.SIGALRM, timed_out)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def record(run: Path) -> dict[str, Any]:
    return json.loads((run / "result.json").read_text())


def rewrite(run: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = record(run)
    change(data)
    (run / "result.json").write_text(json.dumps(data))  # NaN/Infinity as Python writes them


def set_in(*path_and_value: Any) -> Callable[[dict[str, Any]], None]:
    *path, value = path_and_value

    def change(data: dict[str, Any]) -> None:
        target = data
        for name in path[:-1]:
            target = target[name]
        target[path[-1]] = value
    return change


def with_spec(**fields: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["spec"] = {"kind": "train", "dataset": "EuroSAT", "init": "random",
                        "vis_init": "random", "config": "vit_b16_ep50", "shots": 1, "seed": 2,
                        "tag": "", "grid": {}, **fields}
    return change


def raw(text: bytes) -> Callable[[Path], None]:
    return lambda run: (run / "result.json").write_bytes(text)


def fifo(name: str) -> Callable[[Path], None]:
    def make(run: Path) -> None:
        (run / name).unlink(missing_ok=True)
        os.mkfifo(run / name)
    return make


def edit(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    return lambda run: rewrite(run, change)


# (case, damage to random seed 2, report: (status, words in detail+notes), parser: words in
# its skip reason + notes, or None when the run counts with its log's value and no word)
FAMILY2 = [
    ("accuracy NaN", edit(set_in("metrics", "accuracy", math.nan)),
     ("unreadable", "has non-numeric accuracy nan"), "non-numeric accuracy nan"),
    ("accuracy inf", edit(set_in("metrics", "accuracy", math.inf)),
     ("unreadable", "has non-numeric accuracy inf"), "non-numeric accuracy inf"),
    ("accuracy -inf", edit(set_in("metrics", "accuracy", -math.inf)),
     ("unreadable", "has non-numeric accuracy -inf"), "non-numeric accuracy -inf"),
    ("accuracy 1e308", edit(set_in("metrics", "accuracy", 1e308)),
     ("unreadable", "accuracy 1e+308 outside 0-100 %"), "accuracy 1e+308 outside"),
    ("accuracy -5", edit(set_in("metrics", "accuracy", -5)),
     ("unreadable", "accuracy -5 outside 0-100"), "accuracy -5 outside 0-100"),
    ("accuracy 150", edit(set_in("metrics", "accuracy", 150.0)),
     ("unreadable", "accuracy 150 outside 0-100"), "accuracy 150 outside 0-100"),
    ("accuracy true", edit(set_in("metrics", "accuracy", True)),
     ("unreadable", "non-numeric accuracy True"), "non-numeric accuracy True"),
    ("accuracy null", edit(set_in("metrics", "accuracy", None)),
     ("unreadable", "non-numeric accuracy None"), "non-numeric accuracy None"),
    ("accuracy a list", edit(set_in("metrics", "accuracy", [51.0])),
     ("unreadable", "non-numeric accuracy [51.0]"), "non-numeric accuracy [51.0]"),
    ("metrics a list", edit(set_in("metrics", [1, 2])),
     ("unreadable", "metrics is a list"), None),
    ("metrics a string", edit(set_in("metrics", "51")),
     ("unreadable", "metrics is a str"), None),
    ("accuracy as text", edit(set_in("metrics", "accuracy", "51.0%")), ("finished", ""), None),
    ("accuracy text not a number", edit(set_in("metrics", "accuracy", "high")),
     ("unreadable", "non-numeric accuracy 'high'"), "non-numeric accuracy 'high'"),
    ("fingerprint_keys a list", edit(set_in("fingerprint_keys", ["SEED"])),
     ("finished", "fingerprint_keys is a list"), None),
    ("fingerprint_keys a string", edit(set_in("fingerprint_keys", "x")),
     ("finished", "fingerprint_keys is a str"), None),
    ("fingerprint a list", edit(set_in("fingerprint", [1])), ("finished", ""), None),
    ("clip a string", edit(set_in("clip", "ViT")), ("finished", "clip is a str"), None),
    ("clip weights a list", edit(set_in("clip", "weights", [1])), ("finished", ""), None),
    ("epoch a string", edit(set_in("epoch", "three")), ("finished", ""), None),
    ("spec shots 10**30", edit(with_spec(shots=10**30)),
     ("finished", "shots is 1000000000000000000000000000000, not between"), "spec is unusable"),
    ("spec shots a string", edit(with_spec(shots="1")),
     ("finished", "shots is '1', not a whole number"), "spec is unusable"),
    ("spec seed negative", edit(with_spec(seed=-2)), ("finished", "seed is -2"),
     "spec is unusable"),
    ("spec seed a float", edit(with_spec(seed=2.0)), ("finished", "seed is 2.0"),
     "spec is unusable"),
    ("spec seed 2**80", edit(with_spec(seed=2**80)),
     ("finished", "seed is 1208925819614629174706176, not between 0 and 4294967295"),
     "spec is unusable"),
    ("spec a list", edit(set_in("spec", ["train"])), ("finished", "it is list"),
     "spec is unusable"),
    ("spec a string", edit(set_in("spec", "train")), ("finished", "it is str"),
     "spec is unusable"),
    ("spec dataset a number", edit(with_spec(dataset=5)), ("finished", "dataset is 5"),
     "spec is unusable"),
    ("spec init unknown", edit(with_spec(init="bogus")), ("finished", "init is 'bogus'"),
     "spec is unusable"),
    ("spec kind unknown", edit(with_spec(kind="fewshot")), ("finished", "kind is 'fewshot'"),
     "spec is unusable"),
    ("spec grid a list", edit(with_spec(grid=[1])), ("finished", "grid is list"),
     "spec is unusable"),
    ("spec config a number", edit(with_spec(config=7)), ("finished", "config is 7"),
     "spec is unusable"),
    ("result.json a FIFO", fifo("result.json"), ("unreadable", "not a regular file"),
     "not a regular file"),
    (".lock a FIFO", fifo(".lock"), ("finished", ""), None),
    ("result.json a folder", lambda run: ((run / "result.json").unlink(),
                                          (run / "result.json").mkdir()),
     ("unreadable", "not a regular file"), "not a regular file"),
    ("result.json truncated", lambda run: (run / "result.json").write_bytes(
        (run / "result.json").read_bytes()[:40]), ("unreadable", "unreadable"), "unreadable"),
    ("result.json empty", raw(b""), ("unreadable", "unreadable"), "unreadable"),
    ("result.json not UTF-8", raw(b'{"format": "\xff\xfe"}'), ("unreadable", "unreadable"),
     "unreadable"),
    ("result.json a list", raw(b"[1, 2]"), ("unreadable", "not a JSON object"),
     "not a JSON object"),
    ("result.json nested 100000 deep", raw(b"[" * 100000 + b"]" * 100000),
     ("unreadable", "unreadable"), "unreadable"),
    ("result.json a dangling link", lambda run: ((run / "result.json").unlink(),
                                                 (run / "result.json").symlink_to("gone")),
     ("unreadable", "result.json is a link to gone, which is missing"),
     "result.json is a link to gone, which is missing; used the log"),
    ("result.json another format", edit(set_in("format", "other/2")),
     ("unreadable", "is not 'dapt_init.result/1'"), "is not 'dapt_init.result/1'"),
    ("log.txt a FIFO", fifo("log.txt"), ("finished", ""), None),
]


def report_run(root: Path) -> Any:
    runs = read_tree(root)
    return next(run for run in runs if run.path == root / RUN), runs


def parser_outcome(root: Path) -> tuple[Any, Any]:
    runs, named = collect_study(root, "accuracy", False)
    return dict(named)[RUN], runs


@pytest.mark.parametrize("case,damage,in_report,in_parser", FAMILY2,
                         ids=[case[0] for case in FAMILY2])
def test_one_damaged_record_is_a_note_on_its_run(tree: Path, case: str, damage: Callable,
                                                  in_report: tuple[str, str],
                                                  in_parser: str | None) -> None:
    damage(tree / RUN)
    run, runs = report_run(tree)
    status, words = in_report
    said = " | ".join([run.detail, *run.notes])
    assert run.status == status and words in said, (run.status, said)
    # The cell's summary never takes the damaged value: only the intact seeds, all finite.
    study = build_study(runs)
    cells = {row.init: cell for (row, _), cell in study.cells.items()}
    expected = {1: 50.0, 3: 52.0} if status != "finished" else {1: 50.0, 2: 51.0, 3: 52.0}
    assert cells["random"].values == expected
    assert math.isfinite(cells["random"].mean) and math.isfinite(cells["random"].std)
    assert cells["diff"].values == {1: 54.0, 2: 55.0, 3: 56.0}

    outcome, placed = parser_outcome(tree)
    said = " | ".join([outcome.skip_reason or "", *outcome.notes])
    if in_parser is None:
        assert outcome.value == 51.0 and "unusable" not in said
    else:
        assert in_parser in said, said
        # The log's final line (51.0) stands in wherever the record holds no usable value.
        assert outcome.value in (51.0, None)
    table = build_grid_table(placed, "fewshot", "t", label_methods(r.key for r in placed))
    text = grid_text_table(table, False, "plain").rows
    assert all("nan" not in cell and "inf" not in cell for row in text for cell in row), text


def test_read_json_refuses_what_is_not_a_regular_file_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "folder").mkdir()
    (tmp_path / "ok.json").write_text('{"a": 1}')
    assert read_json(tmp_path / "pipe") == (None, "pipe is not a regular file")
    assert read_json(tmp_path / "folder") == (None, "folder is not a regular file")
    assert read_json(tmp_path / "absent") == (None, "")
    assert read_json(tmp_path / "ok.json") == ({"a": 1}, "")
    assert read_json(Path("/dev/zero")) == (None, "zero is not a regular file")


def test_prompt_files_that_do_not_load_cost_their_run_only(tree: Path) -> None:
    runs = [r for r in read_tree(tree) if r.cell is not None and r.cell.init == "random"]
    runs.sort(key=lambda r: r.seed)
    prompts = [r.path / "prompt_learner" / "prompts-epoch0.pt" for r in runs]
    prompts[0].write_bytes(prompts[0].read_bytes()[:100])  # truncated
    import torch
    torch.save({"other": torch.zeros(1)}, prompts[1])  # key-less
    rows, note = first_token_stats({"random": runs})
    assert [row[1] for row in rows] == [3]  # seed 3 intact
    assert note.count("seed") == 2 and "KeyError" in note and "Left out" in note


# ------------------------------------------------------------------------------- family 3
def other_weights(run: Path) -> None:
    rewrite(run, set_in("clip", "weights", "sha256", "0" * 64))


def test_other_clip_weights_are_marked_in_both_tables(tree: Path) -> None:
    other_weights(tree / RUN)
    run, runs = report_run(tree)
    cell = next(cell for (row, _), cell in build_study(runs).cells.items()
                if row.init == "random")
    assert cell.differing_keys == ["clip.weights.sha256"]  # the dagger's reason
    assert run.status == "finished, other settings"  # and not paired with diff's seed 2
    assert run.detail == "differs in clip.weights.sha256"
    _, placed = parser_outcome(tree)
    table = build_grid_table(placed, "fewshot", "t", label_methods(r.key for r in placed))
    rows = {row[0]: row for row in grid_text_table(table, False, "plain").rows}
    assert rows["random"][-1] == "51.00 +- 0.82 (3) \u2020"
    assert rows["diff"][-1] == "55.00 +- 0.82 (3)"
    latex = {row[0]: row for row in grid_text_table(table, False, "latex").rows}
    assert latex["random"][-1].endswith(r"(3) $^\dagger$")


def test_runs_without_recorded_weights_do_not_mark_a_cell(tree: Path) -> None:
    (tree / RUN / "result.json").unlink()  # counted from its log: its weights are unknown
    _, placed = parser_outcome(tree)
    table = build_grid_table(placed, "fewshot", "t", label_methods(r.key for r in placed))
    assert not table.mixed_weights


# (case, change to random seed 2's record, words in the parser's notes, where the run lands)
FAMILY3 = [
    ("spec names another data set", with_spec(dataset="DTD"),
     "disagree (dataset dtd (folders: eurosat)); used the spec", ("dtd", 2)),
    ("spec names another seed", with_spec(seed=7), "disagree (seed 7 (folders: 2)); used the spec",
     ("eurosat", 7)),
    ("spec names another init", with_spec(init="same"),
     "disagree (init same (folders: random)); used the spec", ("eurosat", 2)),
    ("no spec, own fields name another data set", set_in("dataset", "DTD"),
     "own fields and the folder names disagree (dataset dtd (folders: eurosat))",
     ("eurosat", 2)),
    ("no spec, own fields name another seed", set_in("seed", 9),
     "seed 9 (folders: 2)); placed by the folder names", ("eurosat", 2)),
    ("no spec, own shots a string", set_in("shots", "x"),
     "own fields are unusable (shots is 'x'", ("eurosat", 2)),
]


@pytest.mark.parametrize("case,change,words,lands", FAMILY3, ids=[c[0] for c in FAMILY3])
def test_a_record_naming_another_run_is_noted_and_placed_one_way(
        tree: Path, case: str, change: Callable, words: str, lands: tuple[str, int]) -> None:
    rewrite(tree / RUN, change)
    outcome, placed = parser_outcome(tree)
    assert words in " | ".join(outcome.notes), outcome.notes
    key = next(r.key for r in placed if r.outcome is outcome)
    assert (key.dataset, key.seed) == lands
    run, _ = report_run(tree)  # the report places it the same way, with the same note
    assert (run.cell.dataset.lower(), run.seed) == lands and words in " | ".join(run.notes)


def test_two_folders_recording_one_run_count_once_with_a_note_naming_both(tree: Path) -> None:
    rewrite(tree / RUN, with_spec())
    copy = tree / "eurosat/DAPT_Init/random/vit_b16_ep50_1shots/seed7"
    shutil.copytree(tree / RUN, copy)
    outcome, placed = parser_outcome(tree)
    copied = dict(collect_study(tree, "accuracy", False)[1])[
        "eurosat/DAPT_Init/random/vit_b16_ep50_1shots/seed7"]
    assert "seed7 records the same run; counted once" in " ".join(outcome.notes)
    assert copied.skip_reason == f"records the same run as {RUN}; counted once"
    assert sum(r.key.init == "random" for r in placed) == 3
    run, runs = report_run(tree)
    second = next(r for r in runs if r.path == copy)
    assert second.status == "duplicate" and str(tree / RUN) in second.detail
    assert any("seed7 records the same run" in note for note in run.notes)
    cell = next(c for (row, _), c in build_study(runs).cells.items() if row.init == "random")
    assert cell.values == {1: 50.0, 2: 51.0, 3: 52.0}


def test_an_empty_folder_is_empty_not_missing(tree: Path) -> None:
    (tree / "eurosat/DAPT_Init/random/vit_b16_ep50_1shots/seed4").mkdir()
    runs = read_tree(tree)
    assert [r.status for r in runs if r.seed == 4] == ["empty"]
