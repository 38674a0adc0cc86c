"""tools/dropin.py: the README's drop-in edits on train.py files of the shapes hosts have."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap

import pytest

from tests.integration import REPO
from tools.dropin import CONFIG_LINES, IMPORT_LINE, DropInError, edit_train_py

HOST = textwrap.dedent('''
    import argparse
    import trainers.coop
    from trainers import cocoop  # noqa

    def extend_cfg(cfg):
        """Docstring."""
        cfg.TRAINER.COOP = 1
        if cfg:
            cfg.X = 2

    def main():
        pass
''')


def body_names(source: str) -> list[str]:
    function = next(n for n in ast.parse(source).body if getattr(n, "name", "") == "extend_cfg")
    return [ast.unparse(statement) for statement in function.body]


def test_both_lines_go_where_the_readme_says_and_a_second_pass_changes_nothing():
    edited = edit_train_py(HOST)
    lines = edited.splitlines()
    assert lines[lines.index(IMPORT_LINE) - 1] == "from trainers import cocoop  # noqa"
    assert body_names(edited)[-1] == "add_dapt_init_config(cfg)"
    assert body_names(edited)[-3].startswith("if cfg")  # after the whole body, not inside
    assert edit_train_py(edited) == edited


def test_a_final_return_keeps_the_call_reachable():
    source = HOST.replace("        cfg.X = 2\n", "        cfg.X = 2\n    return cfg\n")
    assert source != HOST
    names = body_names(edit_train_py(source))
    assert names[-2:] == ["add_dapt_init_config(cfg)", "return cfg"]


@pytest.mark.parametrize("change, message", [
    (("def extend_cfg(cfg):", "def other(cfg):"), "no top-level 'def extend_cfg"),
    (("import trainers.coop\nfrom trainers import cocoop  # noqa\n", ""), "imports no 'trainers"),
])
def test_a_train_py_without_the_usual_places_is_refused(change, message):
    with pytest.raises(DropInError, match=message):
        edit_train_py(HOST.replace(*change))


def test_the_command_applies_checks_and_refuses_with_one_line(tmp_path):
    host = tmp_path / "host"
    (host / "trainers").mkdir(parents=True)
    (host / "train.py").write_text(HOST)

    def tool(*args: str) -> subprocess.CompletedProcess:
        # This checkout's packages (study.entry), whichever checkout is installed.
        return subprocess.run([sys.executable, str(REPO / "tools" / "dropin.py"), *args],
                              capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})

    assert tool("--check", str(host)).returncode == 1
    assert tool(str(host)).returncode == 0
    assert tool("--check", str(host)).returncode == 0
    assert all(line in (host / "train.py").read_text() for line in (IMPORT_LINE, *CONFIG_LINES))
    assert (host / "trainers" / "dapt_init" / "trainer.py").read_bytes() == (
        REPO / "trainers" / "dapt_init" / "trainer.py").read_bytes()
    (tmp_path / "plain").mkdir()
    refused = tool(str(tmp_path / "plain"))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("error: ") and "has no train.py" in refused.stderr
