"""tools/report.py: the statistics against scipy, the report's numbers and files on hand-made
trees (finished, unpaired, crashed, in progress, other settings), user errors, and the page in
a real headless chromium."""
from __future__ import annotations

import csv
import fcntl
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from scipy import stats as sps

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_report  # noqa: E402
from reporting import stats  # noqa: E402
from reporting.cli import main  # noqa: E402

# ------------------------------------------------------------------------------ statistics


# t(0.975, df) from a printed table (Fisher & Yates; any statistics textbook), and the
# closed forms df=1: tan(pi (p - 1/2)), df=2: (2p-1) / sqrt(2 p (1-p)).
@pytest.mark.parametrize("df, printed", [(1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776),
                                         (7, 2.365), (19, 2.093), (120, 1.980)])
def test_t_quantile_against_printed_table_and_closed_forms(df: int, printed: float) -> None:
    assert stats.t_quantile(0.975, df) == pytest.approx(printed, abs=5e-4)
    p = 0.975
    closed = {1: math.tan(math.pi * (p - 0.5)), 2: (2 * p - 1) / math.sqrt(2 * p * (1 - p))}
    if df in closed:
        assert stats.t_quantile(p, df) == pytest.approx(closed[df], rel=1e-10)


def test_paired_interval_matches_scipy_ttest_rel() -> None:
    base = {1: 50.0, 2: 60.0, 3: 55.0, 4: 58.0}
    other = {1: 53.0, 2: 61.0, 3: 60.0, 5: 70.0}  # seed 4 only base, 5 only other
    paired, lonely = stats.pair_up(base, other)
    assert lonely == [4, 5]
    assert paired.seeds == (1, 2, 3) and paired.differences == (3.0, 1.0, 5.0)
    expected = sps.ttest_rel([53, 61, 60], [50, 60, 55]).confidence_interval(0.95)
    assert paired.mean == pytest.approx(3.0)
    assert paired.interval == pytest.approx((expected.low, expected.high), rel=1e-10)
    assert paired.words() == "+3.0 pt, not distinguishable with 3 seeds"


def test_interval_excluding_zero_and_one_seed_words() -> None:
    paired, _ = stats.pair_up({1: 40.0, 2: 41.0, 3: 42.0}, {1: 44.0, 2: 44.8, 3: 45.9})
    low, high = paired.interval
    assert low > 0 and paired.words() == "+3.9 pt, interval excludes 0"
    assert paired.p_value == pytest.approx(sps.ttest_rel([44.0, 44.8, 45.9],
                                                          [40.0, 41.0, 42.0]).pvalue, rel=1e-9)
    single, _ = stats.pair_up({1: 40.0}, {1: 43.9})
    assert single.interval is None and single.seeds_for_half_width() is None
    assert single.words() == "+3.9 pt, one seed: no interval"


def test_seeds_for_one_point_half_width_by_brute_force() -> None:
    paired, _ = stats.pair_up({1: 0.0, 2: 0.0, 3: 0.0}, {1: 1.0, 2: 4.0, 3: -2.0})
    sd = paired.sd
    assert sd == pytest.approx(3.0)  # differences 1, 4, -2: sd (n-1) = 3
    needed = paired.seeds_for_half_width(1.0)
    half = [sps.t.ppf(0.975, n - 1) * sd / math.sqrt(n) for n in range(2, 200)]
    assert needed == next(n for n, h in zip(range(2, 200), half) if h <= 1.0) == 38


# ------------------------------------------------------------------------------ the report
def hand_accuracy(dataset: str, init: str, shots: int, seed: int) -> float:
    """EuroSAT: diff = random + 4 +- 0.5 (seeds), same = random - 1; 2 shots dip below 1."""
    random_acc = {1: 50.0, 2: 45.0}[shots] + {1: 0.0, 2: 1.0, 3: 2.0}[seed]
    return random_acc + {"random": 0.0, "same": -1.0,
                         "diff": 4.0 + {1: -0.5, 2: 0.0, 3: 0.5}[seed]}[init]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("tree")
    root = bench_report.make_tree(workdir, datasets=("EuroSAT",), shots=(1, 2), seeds=(1, 2, 3),
                                  accuracy=hand_accuracy)
    base = root / "eurosat/DAPT_Init"
    # same, 2 shots, seed 3: crashed; its log ends in a traceback
    run = base / "same/vit_b16_ep100_2shots/seed3"
    (run / "result.json").unlink()
    with (run / "log.txt").open("a") as log:
        log.write("Traceback (most recent call last):\n  File \"train.py\", line 1\n"
                  "RuntimeError: CUDA out of memory\n")
    # diff, 1 shot, seed 3: stopped with a checkpoint and no result
    run = base / "diff/vit_b16_ep50_1shots/seed3"
    (run / "result.json").unlink()
    (run / "prompt_learner/model.pth.tar-2").write_bytes(b"")
    # diff, 2 shots, seed 2: another max epoch (pooled, marked, not paired)
    record_path = base / "diff/vit_b16_ep100_2shots/seed2/result.json"
    record = json.loads(record_path.read_text())
    record["fingerprint_keys"]["OPTIM.MAX_EPOCH"] = 7
    record_path.write_text(json.dumps(record))
    # random, 2 shots, seed 1 in a folder whose name says otherwise: its spec says what it is
    moved = base / "random/odd_folder_2shots/seed9"
    moved.parent.mkdir(parents=True)
    (base / "random/vit_b16_ep100_2shots/seed1").rename(moved)
    record = json.loads((moved / "result.json").read_text())
    record["spec"] = {"kind": "train", "dataset": "EuroSAT", "init": "random",
                      "vis_init": "random", "config": "vit_b16_ep100", "shots": 2, "seed": 1,
                      "tag": "", "grid": {}}
    (moved / "result.json").write_text(json.dumps(record))
    return root


@pytest.fixture(scope="module")
def report_dir(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    # random, 1 shot, seed 2 is running: its lock is held (by this process, another fd)
    held = tree / "eurosat/DAPT_Init/random/vit_b16_ep50_1shots/seed2"
    (held / "result.json").unlink()
    fd = os.open(held / ".lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert main([str(tree), "--out", str(out), "--tsne", "eurosat:1"]) == 0
    finally:
        os.close(fd)
    return out


def md(report_dir: Path) -> str:
    """report.md as a reader sees it rendered: backslash escapes and entities resolved."""
    return unescape_md((report_dir / "report.md").read_text())


def unescape_md(text: str) -> str:
    import html
    return html.unescape(re.sub(r"\\(.)", r"\1", text))


def table_rows(text: str, first: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith(f"| {first} |")]


def test_table1_means_stds_and_reference(report_dir: Path) -> None:
    rows = {row[1]: row for row in table_rows(md(report_dir), "EuroSAT")
            if len(row) == 6 and "n=" in " ".join(row)}
    # random 1 shot: seeds 1, 3 (seed 2 running): 50, 52 -> 51.00 +- 1.00 (population std)
    assert rows["random"][2] == "51.00 ± 1.00 (n=2)" and rows["random"][3] == "38.9"
    # random 2 shots: 45, 46, 47
    assert rows["random"][4] == f"46.00 ± {math.sqrt(2 / 3):.2f} (n=3)"
    assert rows["same"][4] == "44.50 ± 0.50 (n=2)"  # seed 3 crashed
    assert rows["diff"][4].endswith("(n=3) \u2020")  # pooled runs differ in a key
    assert rows["same"][5] == "54.2"


def test_paired_answer_numbers_and_unpaired(report_dir: Path) -> None:
    rows = {(r[1], r[2]): r for r in table_rows(md(report_dir), "EuroSAT") if len(r) == 11}
    same1 = rows[("same", "1")]  # random seeds 1, 3 only: pairs on 1 and 3, both -1
    assert same1[3] == "2" and same1[4] == "-1.00"
    # sd 0: no interval, no p, no "excludes 0", no seed count
    assert same1[5] == "-" and same1[6] == "-" and same1[7] == "-" and same1[9] == "-"
    assert same1[8].startswith("-1.0 pt in each of 2 seeds (sd 0): no interval")
    assert "seed 2: only same" in same1[10]
    diff2 = rows[("diff", "2")]  # seed 2 has other epochs: excluded from the pairs
    assert diff2[3] == "2" and "seed 2: settings differ (OPTIM.MAX_EPOCH)" in diff2[10]
    test = sps.ttest_rel([48.5, 51.5], [45.0, 47.0])
    expected = test.confidence_interval()
    assert diff2[4] == "+4.00"
    assert diff2[5] == f"[{expected.low:+.2f}, {expected.high:+.2f}]"
    assert diff2[6] == f"{test.pvalue:.3g}"
    assert diff2[8] == "+4.0 pt, not distinguishable with 2 seeds"
    diff1 = rows[("diff", "1")]  # seed 2 of random running, seed 3 of diff stopped
    assert diff1[3] == "1" and diff1[8] == "+3.5 pt, one seed: no interval"
    assert "seed 2: only diff" in diff1[10] and "seed 3: only random" in diff1[10]
    # Holm over the two shot counts of 'diff': only 2 shots has a p, so it is its own family
    assert diff2[7] == f"{test.pvalue:.3g}"


def test_non_monotone_step_marked(report_dir: Path) -> None:
    text = md(report_dir)
    assert "EuroSAT random: 2 shots 5.0 pt below 1" in text
    assert "EuroSAT same: 2 shots" in text


def test_inventory_statuses_keys_and_provenance(report_dir: Path) -> None:
    text = md(report_dir)
    statuses = {(r[1], r[2], r[3]): (r[4], r[5]) for r in table_rows(text, "EuroSAT")
                if len(r) == 7}
    assert statuses[("same", "2", "3")] == ("crashed", "RuntimeError: CUDA out of memory")
    assert statuses[("random", "1", "2")][0] == "in progress"
    assert statuses[("random", "1", "2")][1].startswith("lock held")
    assert statuses[("diff", "1", "3")][0] == "in progress"
    assert statuses[("diff", "2", "2")] == ("finished, other settings",
                                           "differs in OPTIM.MAX_EPOCH")
    assert "| EuroSAT diff | 2 | OPTIM.MAX_EPOCH |" in text
    assert "| device in the runs' logs | CPU (" in text
    assert "| torch in the runs' logs | 2.14.1+cu130 (" in text
    assert re.search(r"\| repository commit \(this report's code\) \| [0-9a-f]{12}", text)


def test_spec_wins_over_folder_name(report_dir: Path) -> None:
    rows = list(csv.DictReader(io.StringIO((report_dir / "runs.csv").read_text())))
    spec_row = next(r for r in rows if r["path"].endswith("odd_folder_2shots/seed9"))
    assert (spec_row["spec_source"], spec_row["seed"], spec_row["shots"],
            spec_row["config"]) == ("spec", "1", "2", "vit_b16_ep100")
    assert spec_row["accuracy"] == "45.0" and spec_row["wall_s"] == "42.0"
    assert len(rows) == 18  # 3 inits x 2 shots x 3 seeds
    # The disagreement is said on the page, in the notes on run folders.
    assert re.search(r"\| \S+odd_folder_2shots/seed9 \| result.json's spec and the folder "
                     r"names disagree \(config vit_b16_ep100 \(folders: odd_folder\); seed 1 "
                     r"\(folders: 9\)\); used the spec \|", md(report_dir))
    assert sum(r["status"] == "finished" for r in rows) == 14


def test_files_latex_csv_and_analyses(report_dir: Path, tree: Path) -> None:
    names = {p.name for p in report_dir.iterdir()}
    assert {"report.html", "report.md", "table1.tex", "runs.csv", "accuracy_vs_shots.png",
            "tsne.png", "losses.png", "losses_2shots.png"} <= names
    tex = (report_dir / "table1.tex").read_text()
    assert "EuroSAT & random & 51.00 $\\pm$ 1.00 (n=2) & 38.9" in tex
    html = (report_dir / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and 'id="table1"' in html
    assert not re.search(r'(src|href)="(?!data:)', html)  # nothing outside the file
    text = md(report_dir)
    assert "![" in text and "(tsne.png)" in text
    # epoch-0 first-token statistics, per init and seed, read from the kept prompts
    import torch
    prompts = torch.load(tree / "eurosat/DAPT_Init/same/vit_b16_ep50_1shots/seed1/"
                         "prompt_learner/prompts-epoch0.pt",
                         weights_only=True)["txt_ctx"][0].double()
    row = next(r for r in table_rows(text, "same") if r[1] == "1")
    assert row[2:] == [f"{prompts.mean().item():.4f}", f"{prompts.std().item():.4f}",
                       f"{prompts.min().item():.4f}", f"{prompts.max().item():.4f}"]


def test_partial_tree_without_prompts_or_runs(tmp_path: Path) -> None:
    root = bench_report.make_tree(tmp_path, datasets=("OxfordPets",), inits=("diff",),
                                  shots=(4,), seeds=(1,), prompts=False)
    out = tmp_path / "report"
    assert main([str(root), "--out", str(out), "--reference", "none"]) == 0
    text = md(out)
    assert "No cell has two values of one factor" in text
    assert "t-SNE skipped: no run of this cell kept its epoch-1 prompts" in text
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([str(empty), "--out", str(tmp_path / "r2")]) == 0
    assert "No finished run yet" in md(tmp_path / "r2")


@pytest.mark.parametrize("argv, words", [
    (["/nonexistent/output"], "is not a folder"),
    (["{root}", "--tsne", "eurosat"], "expected DATASET:SHOTS"),
    (["{root}", "--reference", "/nonexistent.csv"], "cannot read"),
])
def test_user_errors_one_line(tmp_path: Path, argv: list[str], words: str) -> None:
    argv = [a.format(root=tmp_path) for a in argv] + ["--out", str(tmp_path / "out")]
    done = subprocess.run([sys.executable, str(REPO / "tools/report.py"), *argv],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
    assert words in done.stderr


# ------------------------------------------------------------------ in a real browser
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)
CHECK = """<script>window.addEventListener('load', () => {
  const widths = [...document.images].map(i => i.complete ? i.naturalWidth : 0);
  const out = document.createElement('pre'); out.id = 'imgcheck';
  out.textContent = 'widths=' + widths.join(',') + ';table1=' +
    (document.querySelectorAll('#table1 tbody tr').length);
  document.body.appendChild(out);
});</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)")
def test_report_renders_in_headless_chromium(report_dir: Path, tmp_path: Path) -> None:
    page = tmp_path / "page.html"  # a copy with a probe; the report itself has no script
    page.write_text((report_dir / "report.html").read_text().replace("</body>", CHECK + "</body>"))
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                           "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    found = re.search(r"widths=([\d,]*);table1=(\d+)", done.stdout)
    assert found, done.stderr[-2000:]
    widths = [int(w) for w in found.group(1).split(",") if w]
    assert len(widths) == 4 and all(w == 1200 for w in widths)  # page-wide, shown at 100 %
    assert int(found.group(2)) == 3  # random, same, diff rows of EuroSAT
