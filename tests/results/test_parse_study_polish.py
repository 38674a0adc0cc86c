"""parse_test_res.py --study: shots order, TAG and visual-init row keys, the dodged and clipped
plot (read back from the matplotlib objects), the refusal of a root that is not one output
root, and --reference columns and markers. In-process; expected numbers computed here."""
from __future__ import annotations

import csv
import io
import json
import re
import statistics
from pathlib import Path

import pytest

import parse_test_res as parser
from results.labels import label_methods
from results.plots import CAPSIZE, draw_grid_figure
from results.reference import load_reference
from results.study import collect_study
from results.tables import GridTable, build_grid_table
from study.run_read import PUBLISHED_CLIP_SHA256
from study.run_read import read_record, vis_init_of_record
from tests.support.logfixtures import fewshot_run_dir, training_log, write_log, write_result_json

REPO = Path(__file__).resolve().parents[2]
REPORT_CSV = REPO / "docs" / "reference" / "report_seed1.csv"


def study(capsys, *args: object) -> tuple[int, str, str]:
    status = parser.main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return status, out, err


def csv_table(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def write_runs(root: Path, dataset: str, init: str, shots: int, values: list[float],
               folder_init: str | None = None, tag: str = "") -> None:
    for seed, value in enumerate(values, start=1):
        run_dir = fewshot_run_dir(root, dataset, folder_init or init, shots, seed)
        if tag:
            run_dir = run_dir.parent.with_name(run_dir.parent.name + f"_{tag}") / run_dir.name
        write_log(run_dir, training_log(value))


def test_shots_ascend_and_tags_and_visual_inits_are_row_keys(tmp_path, capsys):
    root = tmp_path / "output"
    for shots in (16, 2, 8, 1, 4):  # written out of order
        write_runs(root, "eurosat", "diff", shots, [50.0 + shots])
    write_runs(root, "eurosat", "diff", 4, [30.0, 31.0], tag="ep25")
    write_runs(root, "eurosat", "diff", 4, [70.0], folder_init="diff_vis-same")
    # A run recorded in result.json as another visual init counts as that one.
    run_dir = fewshot_run_dir(root, "eurosat", "random", 4, 1)
    write_log(run_dir, training_log(40.0))
    write_result_json(run_dir, 40.0, vis_init_method="diff", init_method="random")
    status, out, _ = study(capsys, "--study", root, "--format", "csv")
    assert status == 0
    header, *rows = csv_table(out)
    assert header == ["init", "vis init", "tag", "shots", "EuroSAT"]
    keys = [tuple(row[:4]) for row in rows]
    assert keys == [("random", "diff", "-", "4")] + [
        ("diff", "random", "-", str(shots)) for shots in (1, 2, 4, 8, 16)] + [
        ("diff", "random", "ep25", "4"), ("diff", "same", "-", "4")]
    assert rows[keys.index(("diff", "random", "ep25", "4"))][4] == "30.50 +- 0.50 (2)"
    assert rows[keys.index(("diff", "same", "-", "4"))][4] == "70.00 +- 0.00 (1)"
    assert rows[keys.index(("diff", "random", "-", "4"))][4] == "54.00 +- 0.00 (1)"


def test_one_visual_init_adds_no_column(tmp_path, capsys):
    root = tmp_path / "output"
    write_runs(root, "eurosat", "same", 2, [60.0], folder_init="same_vis-diff")
    write_runs(root, "eurosat", "diff", 2, [61.0], folder_init="diff_vis-diff")
    _, out, _ = study(capsys, "--study", root, "--format", "csv")
    header, *rows = csv_table(out)
    assert header == ["init", "shots", "EuroSAT"] and [row[0] for row in rows] == ["same",
                                                                                   "diff"]


@pytest.fixture(scope="module")
def plot_table(tmp_path_factory) -> tuple[GridTable, dict]:
    """Three inits at 1, 2, 4 shots; 'same' at 1 shot near 0 and 'diff' at 4 shots near 100.
    Returns the table and the values written per (init, shots)."""
    root = tmp_path_factory.mktemp("plot")
    values = {("random", 1): [40.0, 45.0, 50.0], ("random", 2): [55.0, 56.0, 57.0],
              ("random", 4): [60.0, 61.0, 62.0], ("same", 1): [0.0, 0.0, 9.0],
              ("same", 2): [50.0, 52.0, 54.0], ("same", 4): [58.0, 60.0, 65.0],
              ("diff", 1): [42.0, 44.0, 46.0], ("diff", 2): [54.0, 58.0, 60.0],
              ("diff", 4): [100.0, 100.0, 91.0]}
    for (init, shots), accuracies in values.items():
        write_runs(root, "eurosat", init, shots, accuracies)
    runs, _ = collect_study(root, "accuracy", False)
    methods = label_methods(run.key for run in runs)
    return build_grid_table(runs, "fewshot", "t", methods), values


def errorbar_containers(axis) -> dict[str, object]:
    from matplotlib.container import ErrorbarContainer

    return {container.get_label(): container for container in axis.containers
            if isinstance(container, ErrorbarContainer)}


def test_plot_dodges_the_inits_so_error_bars_never_overlap(plot_table):
    import matplotlib.pyplot as plt

    figure, plotted = draw_grid_figure(plot_table[0], False, "accuracy")
    axis = figure.axes[0]
    containers = errorbar_containers(axis)
    assert list(containers) == ["random", "same", "diff"]
    xs = {label: list(container.lines[0].get_xdata()) for label, container in containers.items()}
    assert xs == {label: [x for x, *_ in plotted[("eurosat", label)]] for label in xs}
    figure.canvas.draw()
    cap_pixels = CAPSIZE * figure.dpi / 72
    for index, shots in enumerate((1, 2, 4)):
        positions = [xs[label][index] for label in ("random", "same", "diff")]
        assert positions == sorted(positions) and positions[1] == pytest.approx(shots)
        pixels = axis.transData.transform([(x, 0) for x in positions])[:, 0]
        # Neighbouring bars are further apart than a cap is wide: no overlap on screen.
        assert min(b - a for a, b in zip(pixels, pixels[1:])) > cap_pixels
    plt.close(figure)


def test_error_bars_are_clipped_at_0_and_100(plot_table):
    import matplotlib.pyplot as plt

    table, written = plot_table
    figure, _ = draw_grid_figure(table, False, "accuracy")
    containers = errorbar_containers(figure.axes[0])
    for label, index, (shots, clipped_end) in (("same", 0, (1, "low")),
                                               ("diff", 2, (4, "high"))):
        values = written[(label, shots)]
        mean, std = statistics.fmean(values), statistics.pstdev(values)
        assert mean - std < 0 or mean + std > 100  # the case being tested
        (_, low), (_, high) = containers[label].lines[2][0].get_segments()[index]
        assert (low, high) == pytest.approx((0.0, mean + std) if clipped_end == "low"
                                            else (mean - std, 100.0))
    # An unclipped bar keeps +- std.
    (_, low), (_, high) = containers["random"].lines[2][0].get_segments()[0]
    values = written[("random", 1)]
    assert (high - low) / 2 == pytest.approx(statistics.pstdev(values))
    plt.close(figure)


def test_a_root_of_several_output_roots_is_refused_naming_them(tmp_path, capsys):
    for name in ("output_a", "output_b"):
        write_runs(tmp_path / "runs" / name, "eurosat", "diff", 1, [50.0])
    status, out, err = study(capsys, "--study", tmp_path / "runs")
    assert status == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("error: ") and "holds 2 output roots" in err
    assert str(tmp_path / "runs" / "output_a") in err and str(tmp_path / "runs" / "output_b") in err
    # One output root one level down, and a dataset folder given for the root.
    status, _, err = study(capsys, "--study", tmp_path)
    assert status == 2 and "give one of them" in err  # runs/output_a and runs/output_b
    write_runs(tmp_path / "single" / "output", "oxford_pets", "same", 2, [70.0])
    status, _, err = study(capsys, "--study", tmp_path / "single")
    assert status == 2 and f"under {tmp_path / 'single' / 'output'}; give that folder" in err
    status, _, err = study(capsys, "--study", tmp_path / "single" / "output" / "oxford_pets")
    assert status == 2 and f"give its parent {tmp_path / 'single' / 'output'}" in err
    assert study(capsys, "--study", tmp_path / "single" / "output")[0] == 0


def test_reference_columns_give_the_value_and_the_difference_in_points_and_stds(tmp_path,
                                                                                 capsys):
    root = tmp_path / "output"
    measured = [44.0, 47.5, 49.0]
    write_runs(root, "eurosat", "diff", 1, measured)
    write_runs(root, "oxford_pets", "same", 2, [80.0])
    write_runs(root, "eurosat", "diff", 4, [60.0], tag="ep25")  # a tag: no reference row
    status, out, err = study(capsys, "--study", root, "--format", "csv", "--reference",
                             REPORT_CSV, "--reference", f"mine={write_mine(tmp_path)}")
    assert status == 0, err
    header, *rows = csv_table(out)
    assert header[:4] == ["init", "tag", "shots", "EuroSAT"]
    assert header[4:10] == ["EuroSAT report_seed1", "EuroSAT - report_seed1 (pt)",
                            "EuroSAT - report_seed1 (std)", "EuroSAT mine",
                            "EuroSAT - mine (pt)", "EuroSAT - mine (std)"]
    assert header[10] == "OxfordPets" and len(header) == 17
    by_key = {(row[0], row[1], row[2]): dict(zip(header, row)) for row in rows}
    diff_1 = by_key[("diff", "-", "1")]
    mean, std = statistics.fmean(measured), statistics.pstdev(measured)
    reported = report_value("EuroSAT", "diff", 1)
    assert float(diff_1["EuroSAT report_seed1"]) == reported
    assert float(diff_1["EuroSAT - report_seed1 (pt)"]) == pytest.approx(mean - reported,
                                                                         abs=0.005)
    assert float(diff_1["EuroSAT - report_seed1 (std)"]) == pytest.approx(
        (mean - reported) / std, abs=0.005)
    assert diff_1["EuroSAT - mine (pt)"] == f"{mean - 40.0:+.2f}"
    same_2 = by_key[("same", "-", "2")]
    assert float(same_2["OxfordPets report_seed1"]) == report_value("OxfordPets", "same", 2)
    assert same_2["OxfordPets - report_seed1 (std)"] == "-"  # one seed: no std to divide by
    assert same_2["OxfordPets mine"] == "-"
    assert by_key[("diff", "ep25", "4")]["EuroSAT report_seed1"] == "-"
    assert "Reference report_seed1" in err and "30 values, 2 beside measured cells" in err
    for table_format, marker in (("github", r"\| EuroSAT report_seed1 +\|"),
                                 ("latex", r"EuroSAT - report\\_seed1 \(std\)"),
                                 ("plain", r"EuroSAT - mine \(pt\)")):
        _, out, _ = study(capsys, "--study", root, "--format", table_format, "--reference",
                          REPORT_CSV, "--reference", f"mine={tmp_path / 'mine.csv'}")
        assert re.search(marker, out), table_format


def write_mine(tmp_path: Path) -> Path:
    path = tmp_path / "mine.csv"
    path.write_text("# my numbers\ndataset,init,shots,accuracy,note\neurosat,diff,1,40,x\n")
    return path


def report_value(dataset: str, init: str, shots: int) -> float:
    """The shipped CSV read with the csv module (the test's own reading)."""
    lines = [line for line in REPORT_CSV.read_text().splitlines() if not line.startswith("#")]
    for row in csv.DictReader(lines):
        if (row["dataset"], row["init"], int(row["shots"])) == (dataset, init, shots):
            return float(row["accuracy"])
    raise KeyError((dataset, init, shots))


def test_the_shipped_report_table_holds_two_datasets_three_inits_five_shots():
    reference = load_reference(str(REPORT_CSV), "accuracy")
    assert reference.name == "report_seed1"
    assert sorted(reference.values) == sorted(
        (dataset, init, "random", "", shots) for dataset in ("eurosat", "oxfordpets")
        for init in ("random", "same", "diff") for shots in (1, 2, 4, 8, 16))
    assert all(0 < value < 100 for value in reference.values.values())


def test_references_are_hollow_markers_at_the_dodged_positions(plot_table, tmp_path):
    import matplotlib.pyplot as plt

    path = tmp_path / "ref.csv"
    path.write_text("dataset,init,shots,accuracy\nEuroSAT,same,2,70.5\nEuroSAT,diff,1,33\n")
    reference = load_reference(f"paper={path}", "accuracy")
    figure, plotted = draw_grid_figure(plot_table[0], False, "accuracy", [reference])
    hollow = [line for line in figure.axes[0].lines
              if line.get_markerfacecolor() == "none" and line.get_linestyle() == "None"]
    points = sorted((float(x), float(y)) for line in hollow
                    for x, y in zip(line.get_xdata(), line.get_ydata()))
    expected = sorted([(plotted[("eurosat", "same")][1][0], 70.5),
                       (plotted[("eurosat", "diff")][0][0], 33.0)])
    assert len(points) == len(expected)
    for point, wanted in zip(points, expected):  # approx takes flat sequences only
        assert point == pytest.approx(wanted)
    assert "paper" in [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    plt.close(figure)


@pytest.mark.parametrize("content, message", [
    ("dataset,init,accuracy\neurosat,diff,40\n", "missing column(s) shots"),
    ("dataset,init,shots,accuracy\neurosat,diff,one,40\n", "row 2 needs whole shots"),
    ("dataset,init,shots,accuracy\neurosat,diff,1,40\nEuroSAT,diff,1,41\n", "repeats"),
])
def test_a_bad_reference_file_is_one_error_line(tmp_path, capsys, content, message):
    write_runs(tmp_path / "output", "eurosat", "diff", 1, [50.0])
    path = tmp_path / "bad.csv"
    path.write_text(content)
    status, out, err = study(capsys, "--study", tmp_path / "output", "--reference", path)
    assert status == 2 and out == "" and err.count("\n") == 1 and message in err
    assert err.startswith("error: --reference")


def test_result_json_vis_init_is_read(tmp_path):
    run_dir = tmp_path / "seed1"
    write_result_json(run_dir, 50.0, vis_init_method="same")
    assert vis_init_of_record(read_record(run_dir)[0]) == "same"
    (run_dir / "result.json").write_text(json.dumps({"format": "x"}))
    assert vis_init_of_record(read_record(run_dir)[0]) is None


def test_published_clip_hashes_are_clips_own():
    clip = pytest.importorskip("clip.clip")
    for backbone, sha256 in PUBLISHED_CLIP_SHA256.items():
        assert clip._MODELS[backbone].split("/")[-2] == sha256


def test_runs_not_made_as_published_say_so_beside_the_reference(tmp_path, capsys):
    # diff: a local CLIP file with other bytes, trained 2 of the config's 100 epochs (a trial);
    # same: the published file given locally and the config's epochs; random: clip's download.
    published = PUBLISHED_CLIP_SHA256["ViT-B/16"]
    for init, weights, epochs in (("diff", {"path": "/x/small_clip.pt", "sha256": "ab" * 32}, 2),
                                  ("same", {"path": "/x/ViT-B-16.pt", "sha256": published}, 100),
                                  ("random", {"name": "ViT-B/16"}, 100)):
        run_dir = fewshot_run_dir(tmp_path, "eurosat", init, 4, 1)
        write_log(run_dir, training_log(50.0))
        write_result_json(run_dir, 50.0, init_method=init, clip={"weights": weights},
                          fingerprint_keys={"OPTIM.MAX_EPOCH": epochs})
    status, out, err = study(capsys, "--study", tmp_path, "--format", "csv",
                             "--reference", REPORT_CSV)
    assert status == 0
    header, *rows = csv_table(out)
    assert header[-1] == "not as published"
    marks = {row[0]: row[-1] for row in rows}
    assert marks == {"random": "-", "same": "-",
                     "diff": "2 of vit_b16_ep100's 100 epochs; not ViT-B/16's published weights"}
    diff_row = next(row for row in rows if row[0] == "diff")
    assert diff_row[header.index("EuroSAT report_seed1")] == "60.60"  # still compared, and marked
    assert "rows marked 'not as published'" in err

    # Without a reference nothing is compared, so no column is added.
    status, out, _ = study(capsys, "--study", tmp_path, "--format", "csv")
    assert "not as published" not in out

    # The plot's legend says it too.
    runs, _ = collect_study(tmp_path, "accuracy", False)
    table = build_grid_table(runs, "fewshot", "t",
                                    label_methods(run.key for run in runs))
    reference = load_reference(str(REPORT_CSV), "accuracy")
    figure, _ = draw_grid_figure(table, False, "accuracy", [reference])
    labels = figure.axes[0].get_legend_handles_labels()[1]
    assert "diff (not as published)" in labels and "random" in labels
