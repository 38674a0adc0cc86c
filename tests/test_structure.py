"""The repository's shape: no source file edits sys.path (the project installs as a package),
the drop-in unit imports nothing outside itself, and imports run downhill between packages."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Floors, from the ground up: a module may import its own package and the floors below.
FLOORS = {
    "trainers": 1,                                   # the drop-in unit: nothing of ours
    "datasets": 2, "study": 2,                       # each on the drop-in unit alone
    "results": 3,                                    # results read runs through study/
    "analysis": 4,                                   # the prompt analyses (results' numbers)
    "reporting": 5,                                  # the report, over results and analyses
    "tools": 6,                                      # commands and their helpers
    "benchmarks": 7, "train": 7, "parse_test_res": 7,  # entry points: nothing imports them
}


def source_files() -> list[Path]:
    """Every tracked-style Python file of the repository outside tests/."""
    return sorted(p for p in REPO.rglob("*.py")
                  if p.relative_to(REPO).parts[0] not in ("tests", ".git", "output",
                                                          "output_trial", "demo_output")
                  and ".venv" not in p.parts)


def package_of(path: Path) -> str:
    parts = path.relative_to(REPO).parts
    return parts[0] if len(parts) > 1 else path.stem


def imported_packages(path: Path) -> set[str]:
    """The top-level names ``path`` imports absolutely (relative imports stay in a package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_floor_table_names_every_package_and_script():
    assert {package_of(p) for p in source_files()} <= set(FLOORS)


SYS_PATH = re.compile(r"\bsys\.path\s*(\.\s*(insert|append|extend)\s*\(|\[[^]]*\]\s*=|\s*=|\s*\+=)")


def test_no_source_file_edits_sys_path():
    """The editable install (pyproject.toml, scripts/setup.sh) puts the packages on the path."""
    shell = sorted(REPO.glob("scripts/**/*.sh")) + sorted(REPO.glob("benchmarks/*.sh"))
    offenders = [str(p.relative_to(REPO)) for p in source_files() + shell
                 if SYS_PATH.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_the_sys_path_check_sees_an_edit():
    assert SYS_PATH.search("sys.path.insert(0, str(REPO))")
    assert SYS_PATH.search("sys.path = [here] + sys.path")
    assert not SYS_PATH.search("print(sys.path)")


def test_the_drop_in_unit_imports_nothing_outside_itself():
    unit = REPO / "trainers" / "dapt_init"
    ours = set(FLOORS)
    offenders = {str(p.relative_to(REPO)): sorted(imported_packages(p) & ours - {"trainers"})
                 for p in sorted(unit.glob("*.py"))}
    assert {k: v for k, v in offenders.items() if v} == {}
    # and within trainers, only the unit itself
    for path in sorted(unit.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                    node.module.startswith("trainers"):
                assert node.module.startswith("trainers.dapt_init"), (path, node.module)


def test_imports_run_downhill():
    uphill = []
    for path in source_files():
        own = package_of(path)
        for target in imported_packages(path) & set(FLOORS) - {own}:
            if FLOORS[target] >= FLOORS[own]:
                uphill.append(f"{path.relative_to(REPO)} -> {target}")
    assert uphill == []


@pytest.mark.parametrize("own, target, allowed", [
    ("study", "trainers", True), ("trainers", "study", False), ("reporting", "tools", False),
    ("tools", "reporting", True), ("study", "train", False), ("reporting", "parse_test_res", False),
    ("reporting", "analysis", True), ("analysis", "reporting", False),
])
def test_the_floor_rule_itself(own, target, allowed):
    assert (FLOORS[target] < FLOORS[own]) == allowed


# The commands that plan runs or read their records (the scripts' planner, the parser, the
# report), the data and demo tools before their work starts, and train.py before its run: importing them must not import torch or the
# toolbox, which cost 2-8 s of CPU per process. The scripts start one such process per call.
LIGHT_ENTRY_MODULES = ["parse_test_res", "train", "study.__main__", "study.scripts",
                       "study.sweep", "study.command", "study.run_read", "results.coop",
                       "reporting.build", "tools.report", "tools.demo", "tools.tiny_data",
                       "tools.prepare_data", "tools.small_clip", "datasets.fewshot"]


def test_planning_and_reading_commands_import_neither_torch_nor_the_toolbox():
    code = ("import importlib, sys\n"
            "for name in sys.argv[1:]: importlib.import_module(name)\n"
            "print(sorted(m for m in ('torch', 'torchvision', 'dassl', 'clip') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, *LIGHT_ENTRY_MODULES], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
