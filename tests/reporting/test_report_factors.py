"""Any factor, not only the text init: a loss-balancing grid (TXT_BETA 0.1 / 10.0) is found
from the runs' specs, paired against its baseline (DAPT's published EuroSAT value 10.0 by
default, or the user's), per cell on seed with everything else equal; numbers against scipy."""
from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path

import pytest
from scipy import stats as sps

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_report  # noqa: E402
from reporting.runs import read_tree  # noqa: E402
from reporting.stats import holm  # noqa: E402
from reporting.study import build_study, compare, factors  # noqa: E402

KEY = "TRAINER.DAPT_INIT.TXT_BETA"


def accuracy(beta: str):
    def value(dataset: str, init: str, shots: int, seed: int) -> float:
        noise = random.Random(f"{init}{shots}{seed}{beta}").gauss(0, 1.0)
        return round(40 + 5 * shots + (2.0 if init == "diff" else 0.0)
                     + (3.0 if beta == "10.0" else 0.0) + noise, 2)
    return value


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("grid")
    root = work / "output"
    for beta in ("0.1", "10.0"):
        part = bench_report.make_tree(work / beta, datasets=("EuroSAT",), inits=("random", "diff"),
                                      shots=(1, 2), seeds=(1, 2, 3), accuracy=accuracy(beta),
                                      prompts=False)
        for record_path in part.rglob("result.json"):
            record = json.loads(record_path.read_text())
            record["fingerprint_keys"][KEY] = float(beta)
            record["spec"] = {"kind": "train", "dataset": "EuroSAT",
                              "init": record["init_method"], "vis_init": "random",
                              "config": record_path.parent.parent.name.rsplit("_", 1)[0],
                              "shots": record["shots"], "seed": record["seed"],
                              "tag": f"txt_beta{beta}", "grid": {KEY: beta}}
            record_path.write_text(json.dumps(record))
        for run in list(part.glob("*/*/*/*/seed*")):
            cfg = run.parent
            target = root / cfg.relative_to(part).parent / f"{cfg.name}_txt_beta{beta}" / run.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(run), target)
    return root


def test_factors_and_default_baselines(root: Path) -> None:
    study = build_study(read_tree(root))
    found = {(f.name, f.baseline) for f in factors(study, {})}
    assert found == {("text init", "random"), (KEY, "10.0")}  # DAPT's EuroSAT TXT_BETA
    assert {(f.name, f.baseline) for f in factors(study, {"TXT_BETA": "0.1"})} == \
        {("text init", "random"), (KEY, "0.1")}


@pytest.mark.parametrize("baseline, other", [("10.0", "0.1"), ("0.1", "10.0")])
def test_grid_key_paired_on_seed_against_scipy(root: Path, baseline: str, other: str) -> None:
    study = build_study(read_tree(root))
    (factor,) = [f for f in factors(study, {KEY: baseline}) if f.name == KEY]
    comparisons = compare(study, factor)
    assert {(c.row.init, c.value, c.shots) for c in comparisons} == \
        {(init, other, s) for init in ("random", "diff") for s in (1, 2)}
    for init in ("random", "diff"):
        mine = sorted((c for c in comparisons if c.row.init == init), key=lambda c: c.shots)
        p_values = []
        for c in mine:
            a = [accuracy(other)("EuroSAT", init, c.shots, s) for s in (1, 2, 3)]
            b = [accuracy(baseline)("EuroSAT", init, c.shots, s) for s in (1, 2, 3)]
            test = sps.ttest_rel(a, b)
            assert c.paired.seeds == (1, 2, 3) and c.unpaired == []
            assert c.paired.differences == pytest.approx([x - y for x, y in zip(a, b)])
            assert c.paired.interval == pytest.approx(tuple(test.confidence_interval()))
            assert c.paired.p_value == pytest.approx(test.pvalue, rel=1e-9)
            p_values.append(test.pvalue)
        low, high = sorted(p_values)  # Holm over the 2 shot counts, by hand
        by_hand = {low: min(1, 2 * low), high: min(1, max(2 * low, high))}
        assert [c.holm_p for c in mine] == pytest.approx([by_hand[p] for p in p_values])


def test_text_init_paired_within_each_grid_value(root: Path) -> None:
    study = build_study(read_tree(root))
    (factor,) = [f for f in factors(study, {}) if f.name == "text init"]
    for c in compare(study, factor):
        beta = study.row_grid[c.row][KEY]
        assert study.row_grid[c.baseline][KEY] == beta and c.baseline.init == "random"
        expected = [accuracy(beta)("EuroSAT", "diff", c.shots, s)
                    - accuracy(beta)("EuroSAT", "random", c.shots, s) for s in (1, 2, 3)]
        assert c.paired.differences == pytest.approx(expected)


def test_report_has_a_grid_section_and_a_sentence_per_comparison(root: Path,
                                                                 tmp_path: Path) -> None:
    from reporting.cli import main
    out = tmp_path / "r"
    assert main([str(root), "--out", str(out), "--reference", "none"]) == 0
    text = (out / "report.md").read_text()
    assert "## Grid: TRAINER.DAPT\\_INIT.TXT\\_BETA" in text and (out / "grid_txt_beta.png").is_file()
    top = text.split("## What the data support")[1].split("## Table 1")[0]
    sentences = [line for line in top.splitlines() if line.startswith("- ")]
    assert len(sentences) == 4  # diff vs random at 2 betas; 0.1 vs 10.0 for 2 inits
    assert sum("against 10.0" in s for s in sentences) == 2
