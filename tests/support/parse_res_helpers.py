"""Helpers shared by the parse_test_res.py tests: the script run as a subprocess, and the
check of a 'mean +- std (n)' cell against the statistics module."""
from __future__ import annotations

import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "parse_test_res.py"
CELL = re.compile(r"^([\d.]+) \+- ([\d.]+) \((\d+)\)$")
ROUNDED = 0.005 + 1e-9  # printed with two decimals


def run_cli(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)


def assert_cell(cell: str, values: list[float]) -> None:
    """A 'mean +- std (n)' cell agrees with the statistics module on the values written."""
    match = CELL.match(cell)
    assert match, f"not a 'mean +- std (n)' cell: {cell!r}"
    assert float(match[1]) == pytest.approx(statistics.fmean(values), abs=ROUNDED)
    assert float(match[2]) == pytest.approx(statistics.pstdev(values), abs=ROUNDED)
    assert int(match[3]) == len(values)
