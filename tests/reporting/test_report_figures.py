"""The report's figures at the page's width (1200 px, report.html's column, shown at 100 % in a
1400 px window): no text outside its figure, none drawn below 10 px. Every figure kind the
report makes, on a tree with many series (a loss-balancing grid: 6 rows per data set)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_report  # noqa: E402
from reporting import analyses, figures  # noqa: E402
from reporting.runs import read_tree  # noqa: E402
from reporting.study import build_study, factors  # noqa: E402


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory):
    """Two data sets x 3 inits x 3 shots x 2 seeds, half of them at another TXT_BETA."""
    import json
    root = bench_report.make_tree(tmp_path_factory.mktemp("figs"), datasets=("EuroSAT", "OxfordPets"),
                                  shots=(1, 2, 4), seeds=(1, 2), prompts=False)
    for record_path in root.rglob("result.json"):
        record = json.loads(record_path.read_text())
        beta = "10.0" if record["seed"] == 2 or "2shots" in str(record_path) else "0.1"
        record["fingerprint_keys"]["TRAINER.DAPT_INIT.TXT_BETA"] = float(beta)
        record["spec"] = {"kind": "train", "dataset": record["dataset"],
                          "init": record["init_method"], "vis_init": "random",
                          "config": record_path.parent.parent.name.rsplit("_", 1)[0],
                          "shots": record["shots"], "seed": record["seed"],
                          "tag": f"txt_beta{beta}", "grid": {"TRAINER.DAPT_INIT.TXT_BETA": beta}}
        record_path.write_text(json.dumps(record))
    return build_study(read_tree(root))


def check(figure) -> list[str]:
    dpi = figures.fit_to_page(figure)
    assert figures.separate_labels(figure, dpi) == 0  # no two labels of a panel overlap
    assert figure.get_figwidth() * dpi == pytest.approx(figures.PAGE_PX)
    problems = figures.layout_problems(figure, dpi)
    import matplotlib.pyplot as plt
    plt.close(figure)
    return problems


def test_accuracy_figure(study) -> None:
    assert len(study.rows) == 12  # 2 data sets x 3 inits x 2 TXT_BETA values
    assert check(figures.accuracy_plot(study, None)) == []


def test_grid_figure(study) -> None:
    (factor,) = [f for f in factors(study, {}) if f.key.endswith("TXT_BETA")]
    assert check(figures.grid_plot(study, factor)) == []


def test_loss_figure(study) -> None:
    groups = analyses.cell_runs(study, "EuroSAT", 1)
    figure, note = analyses.loss_figure(groups)
    legend = [t.get_text() for t in figure.legends[0].get_texts()] if figure.legends else \
        [t.get_text() for a in figure.axes if a.get_legend() for t in a.get_legend().get_texts()]
    assert legend and not any("/" in text for text in legend)  # row labels, not folders
    assert all(a.get_ylabel() for a in figure.axes if a.get_visible() and a.get_title())
    assert check(figure) == []


@pytest.mark.parametrize("panels", [3, 6])
def test_tsne_figure_with_long_class_names(panels: int) -> None:
    from analysis import tsne
    import torch
    names = [f"Herbaceous Vegetation Land {i}" for i in range(10)]
    rng = np.random.default_rng(0)
    # a tight cluster: without separation, several names would overlap
    drawn = [tsne.Panel(f"init{k} seed1", Path("."), 1, torch.randn(10, 8)) for k in range(panels)]
    points = [np.vstack([rng.normal(size=(6, 2)), 0.01 * rng.normal(size=(4, 2))]) for _ in drawn]
    figure = tsne.draw_panels(drawn, points, names, True,
                              columns=analyses.TSNE_COLUMNS)
    dpi = figures.fit_to_page(figure)
    assert figures.separate_labels(figure, dpi, rounds=0) > 0  # names collide as drawn
    assert check(figure) == []


def test_the_check_catches_what_it_should() -> None:
    """The layout check is not vacuous: a title wider than its figure and 6 pt ticks at a
    2000 px-wide figure drawn 1200 px wide are both reported."""
    plt = figures.pyplot()
    figure, axis = plt.subplots(figsize=(4, 3))
    axis.set_title("x" * 200)
    problems = figures.layout_problems(figure, 100)
    assert any("outside the figure" in p for p in problems)
    figure, axis = plt.subplots(figsize=(20, 3))
    axis.tick_params(labelsize=6)
    problems = figures.layout_problems(figure, 60)
    assert any("drawn at" in p for p in problems)
    plt.close("all")
