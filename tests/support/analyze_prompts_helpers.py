"""Helpers shared by the tools/analyze_prompts.py tests: the tool run in-process, its CSV
rows and the statistics they are compared with."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import torch

from tools import analyze_prompts

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "analyze_prompts.py"
INITS = ("random", "same", "diff")


def run_tool(*args: str, capsys) -> tuple[int, str, str]:
    """The tool in-process: exit status, stdout, stderr."""
    status = analyze_prompts.run([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return status, out, err


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def stats_of(rows: list[dict[str, str]], **match: str) -> tuple[float, ...]:
    """(mean, std, min, max) of the one row whose columns equal ``match``."""
    found = [row for row in rows if all(row[key] == value for key, value in match.items())]
    assert len(found) == 1, (match, found)
    return tuple(float(found[0][name]) for name in ("mean", "std", "min", "max"))


def numpy_stats(values: torch.Tensor) -> tuple[float, ...]:
    array = values.detach().double().numpy().ravel()
    return array.mean(), array.std(ddof=1), array.min(), array.max()

