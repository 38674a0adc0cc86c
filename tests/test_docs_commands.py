"""Every command line the README, the docs pages, the scripts' --help texts and the tools'
docstrings show is parsed as the tools parse it: train.py's own argument parser, the scripts'
argument checks (data set, init, shots), and every config value they type (``-- KEY VALUE``,
``--grid KEY=V1,V2``, ``GRID="KEY=VALUE"``, ``EPOCHS``, train.py's trailing pairs) merged into
a real config and checked by train.py's rules. Integers for decimal keys are what users type
(``VIS_BETA=1``): they must pass. A control text with known mistakes must fail, case by case.
"""
from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest

from tests.support.integration import REPO
from tests.support.toolbox import requires_toolbox

pytestmark = requires_toolbox

SCRIPTS = ("main", "eval", "base2new_train", "base2new_test", "sweep")
# One command in a line of text: environment words, then a script or train.py, up to a
# comment, a backtick (the end of an inline code span) or a shell operator.
COMMAND = re.compile(
    r"((?:\b[A-Z_]+=(?:\"[^\"]*\"|'[^']*'|[^\s`]+)\s+)*"
    r"(?:bash\s+\S*(?:" + "|".join(SCRIPTS) + r")\.sh|python3?\s+\S*train\.py)\b"
    r"(?:[^#`\n&|;>\"']|\"[^\"\n]*\"|'[^'\n]*')*)")
PLACEHOLDER = re.compile(r"[$<]|\.\.\.|^[A-Z_]+$|^\[")
KEY = re.compile(r"[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+|SEED|USE_CUDA|VERBOSE")


def sources() -> list[tuple[str, str]]:
    """(name, text) of everything a user reads commands from."""
    from study.help import HELP  # USAGE is a synopsis ([--dry-run | --slurm]), not a command

    found = [("README.md", (REPO / "README.md").read_text())]
    found += [(str(p.relative_to(REPO)), p.read_text()) for p in sorted(REPO.glob("docs/*.md"))]
    found += [(f"--help of {name}", text) for name, text in HELP.items()]
    for path in ("train.py", "tools/dropin.py", "tools/demo.py"):
        found.append((path, ast.get_docstring(ast.parse((REPO / path).read_text())) or ""))
    return found


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines with backslash continuations joined, numbered by their first line."""
    out, pending, start = [], "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append((start, pending + line))
        pending = ""
    return out


def commands(text: str) -> list[tuple[int, str]]:
    return [(number, found.group(1).strip()) for number, line in logical_lines(text)
            for found in COMMAND.finditer(line)]


def docs_cfg():
    from study.config import base_cfg, merge_config_file

    cfg = base_cfg()
    merge_config_file(cfg, str(REPO / "configs/datasets/eurosat.yaml"), "dataset")
    merge_config_file(cfg, str(REPO / "configs/trainers/DAPT_Init/vit_b16_ep100.yaml"), "cfg")
    return cfg


def check_pair(key: str, value: str) -> str | None:
    """None when train.py would take ``key value``, else its error."""
    from study.config import merge_pair
    from trainers.dapt_init.config import validate_config
    from trainers.dapt_init.errors import DaptInitError

    if PLACEHOLDER.search(value) or PLACEHOLDER.search(key):
        return None
    cfg = docs_cfg()
    try:
        merge_pair(cfg, key, value, "in the docs")
        if key != "TRAINER.DAPT_INIT.CLIP_WEIGHTS":  # a path of the reader's machine
            validate_config(cfg, training=False)
    except DaptInitError as error:
        return str(error)
    return None


def check_command(line: str) -> tuple[list[str], list[tuple[str, str]]]:
    """(errors, the config pairs checked) of one command line."""
    from study.config import build_parser
    from study.plan import check_dataset, check_init, check_shots
    from study.run import StudyError

    try:
        words = shlex.split(line)
    except ValueError as error:
        return [f"not a shell command ({error})"], []
    env = {}
    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    runner, target, args = words[0], words[1], words[2:]
    pairs: list[tuple[str, str]] = []
    errors: list[str] = []
    for word in env.get("GRID", "").split():
        key, _, value = word.partition("=")
        pairs.append((key, value))
    pairs += [("OPTIM.MAX_EPOCH", v) for v in env.get("EPOCHS", "").split()]
    for name in ("VIS_INIT", "VIS_INITS", "INITS"):
        for value in env.get(name, "").split():
            try:
                check_init(value, visual=name != "INITS")
            except StudyError as error:
                errors.append(str(error))
    head, overrides = (args[:args.index("--")], args[args.index("--") + 1:]) if "--" in args \
        else (args, [])
    if target.endswith("train.py"):
        try:
            parsed = build_parser().parse_args(args)
        except SystemExit:
            return [f"train.py's parser refuses {args}"], pairs
        overrides = list(parsed.opts or [])
    elif target.endswith("sweep.sh"):
        words_iter = iter(head)
        for word in words_iter:
            if word == "--grid":
                word = "--grid=" + next(words_iter, "")
            if word.startswith("--grid="):
                key, _, values = word[7:].partition("=")
                pairs += [(key, value) for value in values.split(",")]
            elif word not in ("--dry-run", "--slurm", "-h", "--help"):
                errors.append(f"sweep.sh takes no argument '{word}'")
    elif "-h" not in head and "--help" not in head:
        name = Path(target).stem
        positional = ["INIT", "SHOTS"] if name == "eval" else (
            ["DATASET", "INIT"] if name.startswith("base2new") else ["DATASET", "INIT", "SHOTS"])
        for role, value in zip(positional, head):
            if PLACEHOLDER.search(value):
                continue
            try:
                if role == "DATASET":
                    check_dataset(value, name != "eval", REPO)
                elif role == "INIT":
                    check_init(value)
                else:
                    check_shots(value)
            except StudyError as error:
                errors.append(str(error))
    if len(overrides) % 2:
        errors.append(f"overrides {overrides} are not KEY VALUE pairs")
    pairs += list(zip(overrides[0::2], overrides[1::2]))
    for key, value in pairs:
        problem = check_pair(key, value)
        if problem:
            errors.append(problem)
    return errors, pairs


def test_every_command_line_the_docs_show_parses():
    problems, checked, pairs = [], 0, []
    for name, text in sources():
        for number, line in commands(text):
            errors, found = check_command(line)
            checked += 1
            pairs += found
            problems += [f"{name}:{number}: {line}: {error}" for error in errors]
    assert not problems, "\n".join(problems)
    # The extraction found the README's and the help's commands, decimals typed as integers
    # among them (README: VIS_BETA=0.01,0.1,1; main.sh --help: GRID="... VIS_BETA=1").
    assert checked >= 30 and len(pairs) >= 15, (checked, pairs)
    assert ("TRAINER.DAPT_INIT.VIS_BETA", "1") in pairs


# A control text: each line a mistake the check must name (the docs' commands pass above).
CONTROL = [
    ("bash scripts/dapt_init/sweep.sh --dry-run --grid TRAINER.DAPT_INIT.VIS_BTA=1",
     "unknown config key 'TRAINER.DAPT_INIT.VIS_BTA'"),
    ("bash scripts/dapt_init/sweep.sh --grid TRAINER.DAPT_INIT.TXT_BETA=0.1,nan",
     "TRAINER.DAPT_INIT.TXT_BETA is 'nan'"),
    ("bash scripts/dapt_init/sweep.sh --dryrun", "sweep.sh takes no argument '--dryrun'"),
    ("bash scripts/dapt_init/main.sh eurosat diff 4 -- OPTIM.MAX_EPOCH 2.5",
     "OPTIM.MAX_EPOCH is '2.5'"),
    ("bash scripts/dapt_init/main.sh eurosat sideways 4", "unknown init method 'sideways'"),
    ("bash scripts/dapt_init/main.sh cifar10 diff 4", "unknown dataset 'cifar10'"),
    ("bash scripts/dapt_init/main.sh eurosat diff 0", "shots must be a positive integer"),
    ('GRID="OPTIM.LR=-1" bash scripts/dapt_init/main.sh eurosat diff 4', "OPTIM.LR is -1.0"),
    ('EPOCHS="0 5" bash scripts/dapt_init/sweep.sh', "OPTIM.MAX_EPOCH is 0"),
    ("python train.py --root /d --seeed 1", "train.py's parser refuses"),
    ("python train.py --root /d DATASET.NUM_SHOTS", "are not KEY VALUE pairs"),
    ("python train.py --root /d TRAINER.DAPT_INIT.VIS_DROPOUT 1", "VIS_DROPOUT is 1.0"),
]


@pytest.mark.parametrize("line,words", CONTROL, ids=[str(i) for i in range(len(CONTROL))])
def test_the_check_names_a_mistake(line, words):
    [(_, found)] = commands(f"text `{line}`  # a comment")
    assert found == line
    errors, _ = check_command(found)
    assert len(errors) == 1 and words in errors[0], errors
