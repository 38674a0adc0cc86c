"""What the tree holds against the grid it should hold, and where the numbers come from."""
from __future__ import annotations

import subprocess
from collections import Counter
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Sequence

from results.labels import INIT_ORDER
from study.run import dataset_display_name, dataset_sort_key

from .runs import EMPTY, FINISHED, MISSING, Run
from .study import Study

REPO = Path(__file__).resolve().parent.parent

STATUS_ORDER = ("finished", "finished, other settings", "in progress", "crashed", "unreadable",
                "duplicate", "empty", "missing")


@dataclass(frozen=True)
class Grid:
    datasets: tuple[str, ...]
    inits: tuple[tuple[str, str, str], ...]  # (init, vis_init, tag)
    shots: tuple[int, ...]
    seeds: tuple[int, ...]


def observed_grid(runs: Sequence[Run], datasets: Sequence[str] | None = None,
                  inits: Sequence[str] | None = None, shots: Sequence[int] | None = None,
                  seeds: Sequence[int] | None = None) -> Grid:
    """The grid the runs span, each axis replaced by the one given on the command line."""
    placed = [r for r in runs if r.cell is not None]
    found_inits = sorted({(r.cell.init, r.cell.vis_init, r.cell.tag) for r in placed},
                         key=lambda k: (INIT_ORDER.index(k[0])
                                        if k[0] in INIT_ORDER else 99, k))
    return Grid(
        tuple(dataset_display_name(d) for d in datasets) if datasets else
        tuple(sorted({r.cell.dataset for r in placed}, key=dataset_sort_key)),
        tuple((i, "random", "") for i in inits) if inits else tuple(found_inits),
        tuple(sorted(shots)) if shots else tuple(sorted({r.cell.shots for r in placed})),
        tuple(sorted(seeds)) if seeds else tuple(sorted({r.seed for r in placed
                                                         if r.seed is not None})))


@dataclass
class Slot:
    dataset: str
    init: str
    shots: int
    seed: int
    status: str
    detail: str
    path: str


def slots(grid: Grid, runs: Sequence[Run]) -> tuple[list[Slot], list[Run]]:
    """(one slot per grid point, runs outside the grid); a point with several runs (other
    configs) takes the best status: a finished one if any."""
    by_point: dict[tuple, list[Run]] = {}
    outside = []
    for run in runs:
        c = run.cell
        point = (c.dataset, (c.init, c.vis_init, c.tag), c.shots, run.seed) if c else None
        if c is None or c.dataset not in grid.datasets or point[1] not in grid.inits \
                or c.shots not in grid.shots or run.seed not in grid.seeds:
            outside.append(run)
            continue
        by_point.setdefault(point, []).append(run)
    result = []
    for dataset in grid.datasets:
        for init in grid.inits:
            label = ", ".join([init[0]] + ([f"vis {init[1]}"] if init[1] != "random" else [])
                              + ([init[2]] if init[2] else []))
            for shots in grid.shots:
                for seed in grid.seeds:
                    found = by_point.get((dataset, init, shots, seed), [])
                    found.sort(key=lambda r: STATUS_ORDER.index(r.status))
                    run = found[0] if found else None
                    result.append(Slot(dataset, label, shots, seed,
                                       run.status if run else MISSING,
                                       run.detail if run else "no run folder",
                                       str(run.path) if run else ""))
    return result, outside


def status_counts(all_slots: Sequence[Slot]) -> list[tuple[str, int]]:
    counts = Counter(s.status for s in all_slots)
    return [(status, counts[status]) for status in STATUS_ORDER if counts[status]]


def pooled_differences(study: Study) -> list[tuple[str, int, str]]:
    """(row label with dataset, shots, differing keys) for cells whose runs differ."""
    return [(f"{row.dataset} {row.label}", shots, ", ".join(cell.differing_keys))
            for (row, shots), cell in sorted(study.cells.items(),
                                             key=lambda kv: (study.rows.index(kv[0][0]),
                                                             kv[0][1]))
            if cell.differing_keys]


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True,
                              text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _version(*names: str) -> str:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def provenance(runs: Sequence[Run]) -> list[tuple[str, str]]:
    commit = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    finished = [r for r in runs if r.status not in (MISSING, EMPTY)]

    def tally(values: Sequence[str]) -> str:
        counts = Counter(v or "not logged" for v in values)
        return "; ".join(f"{value} ({n} runs)" for value, n in counts.most_common()) or "-"

    weights = Counter(r.clip_weights.get("sha256", "")[:12] or "not recorded" for r in finished)
    return [
        ("repository commit (this report's code)",
         (commit[:12] + (" with uncommitted changes" if dirty else "")) if commit
         else "not a git checkout"),
        ("torch in the runs' logs", tally([r.torch_version for r in finished])),
        ("device in the runs' logs", tally([r.device for r in finished])),
        ("precision in the runs' logs", tally([r.precision for r in finished])),
        ("CLIP weights (sha256 prefix)", "; ".join(f"{k} ({n} runs)"
                                                   for k, n in weights.most_common()) or "-"),
        ("installed here: torch / Dassl / clip",
         f"{_version('torch')} / {_version('dassl', 'Dassl', 'dassl.pytorch')} / "
         f"{_version('openai-clip', 'clip')}"),
        ("runs read", f"{len(runs)} seed folders, {sum(r.status == FINISHED for r in runs)} "
                      "finished with the cell's settings"),
    ]
