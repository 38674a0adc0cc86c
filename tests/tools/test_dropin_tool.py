"""tools/dropin.py: the README's drop-in edits on train.py files of the shapes hosts have."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap

import pytest

from tests.support.integration import REPO
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


# (train.py head, the line QUIET_LINE must come right after, or None: first line of the file)
QUIET_CASES = [
    ("import argparse\n", None),
    ('"""Doc."""\nimport argparse\n', '"""Doc."""'),
    ('"""Doc."""\nfrom __future__ import annotations\nimport argparse\n',
     "from __future__ import annotations"),
    ("#!/usr/bin/env python\n# comment\nimport argparse\n", "# comment"),
    ("X = 1\nimport argparse\n", "X = 1"),  # a statement before the first import
]


@pytest.mark.parametrize("head,after", QUIET_CASES, ids=[str(i) for i in range(len(QUIET_CASES))])
def test_the_quiet_import_comes_before_the_hosts_first_import(head, after):
    from tools.dropin import QUIET_LINE

    source = head + HOST.replace("import argparse\n", "", 1)
    edited = edit_train_py(source)
    lines = edited.splitlines()
    at = lines.index(QUIET_LINE)
    assert (at == 0) if after is None else lines[at - 1] == after
    assert lines.count(QUIET_LINE) == 1 and lines[at + 1] == "import argparse"
    assert body_names(edited)[-1] == "add_dapt_init_config(cfg)"
    assert lines[lines.index(IMPORT_LINE) - 1] == "from trainers import cocoop  # noqa"
    assert edit_train_py(edited) == edited


def test_the_tool_names_dataset_configs_that_set_other_values_than_dapts(tmp_path):
    from tools.dropin import dataset_values_report

    configs = tmp_path / "configs" / "datasets"
    configs.mkdir(parents=True)
    (configs / "eurosat.yaml").write_text('DATASET:\n  NAME: "EuroSAT"\nOPTIM:\n  LR: 0.002\n')
    (configs / "dtd.yaml").write_text('DATASET:\n  NAME: "DescribableTextures"\n'
                                      "OPTIM:\n  LR: 20\n")  # DAPT's value, as an integer
    (configs / "mine.yaml").write_text('DATASET:\n  NAME: "MyData"\nOPTIM:\n  LR: 1.0\n')
    (configs / "broken.yaml").write_text("DATASET: [\n")
    lines = dataset_values_report(tmp_path)
    assert len(lines) == 2 and lines[0].startswith("data set values: runs of the 15 data sets")
    assert not lines[0].endswith("nothing to do")
    assert lines[1] == ("data set values: configs/datasets/eurosat.yaml sets OPTIM.LR 0.002 "
                        "(DAPT: 20): it trains with that; delete it there (or set DAPT's value "
                        "on the command line) to train DAPT's study")
    (configs / "eurosat.yaml").unlink()
    assert dataset_values_report(tmp_path)[-1].endswith("; nothing to do")
