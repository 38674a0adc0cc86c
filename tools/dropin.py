"""Drop DAPT_Init into a CoOp-family codebase: the README's steps 1-3, done for you.

    python tools/dropin.py /path/to/your/repo            # apply (again: changes nothing)
    python tools/dropin.py /path/to/your/repo --check    # say what is missing, change nothing

It copies ``trainers/dapt_init/`` and ``configs/trainers/DAPT_Init/`` into the codebase and adds
two things to its ``train.py``: the trainer import after its own ``import trainers.*`` lines,
and ``add_dapt_init_config(cfg)`` at the end of its ``extend_cfg(cfg)``. Nothing is specific
to one codebase: it needs what CoOp, CoCoOp, DAPT, RPO, MaPLe and their kin share (a
``train.py`` with those lines and a ``trainers/`` package). An earlier copy of the trainer is
replaced by this one; any other file of the codebase is left as it is.
"""
from __future__ import annotations

import argparse
import ast
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TRAINER_DIR = Path("trainers") / "dapt_init"
CONFIG_DIR = Path("configs") / "trainers" / "DAPT_Init"
IMPORT_LINE = "import trainers.dapt_init.trainer  # DAPT_Init: registers the trainer"
CONFIG_LINES = ("from trainers.dapt_init.config import add_dapt_init_config  # DAPT_Init",
                "add_dapt_init_config(cfg)  # DAPT_Init")


class DropInError(Exception):
    """A codebase this tool cannot edit safely; the message names what is missing."""


def _has_import(tree: ast.Module) -> bool:
    return any(isinstance(node, ast.Import)
               and any(alias.name == "trainers.dapt_init.trainer" for alias in node.names)
               for node in tree.body)


def _extend_cfg(tree: ast.Module) -> ast.FunctionDef | None:
    return next((node for node in tree.body
                 if isinstance(node, ast.FunctionDef) and node.name == "extend_cfg"), None)


def _calls_add_config(function: ast.FunctionDef) -> bool:
    return any(isinstance(node, ast.Call) and getattr(node.func, "id", "") == "add_dapt_init_config"
               for node in ast.walk(function))


def edit_train_py(source: str) -> str:
    """``source`` with the two additions (unchanged where they are present already)."""
    tree = ast.parse(source)
    lines = source.splitlines()
    function = _extend_cfg(tree)
    if function is None:
        raise DropInError("train.py has no top-level 'def extend_cfg(cfg)' (the function "
                          "CoOp-family train.py files extend the config in)")
    if _calls_add_config(function) and _has_import(tree):
        return source
    if not _calls_add_config(function):
        last = function.body[-1]
        # At the end of the body; before a final 'return', which would skip it.
        at = last.lineno - 1 if isinstance(last, ast.Return) else last.end_lineno
        indent = " " * function.body[0].col_offset
        lines[at:at] = [indent + line for line in CONFIG_LINES]
    if not _has_import(tree):
        trainer_imports = [node.end_lineno for node in tree.body
                           if isinstance(node, (ast.Import, ast.ImportFrom))
                           and _imports_trainers(node)]
        if not trainer_imports:
            raise DropInError("train.py imports no 'trainers.*' module (where CoOp-family "
                              "train.py files register their trainers)")
        lines.insert(max(trainer_imports), IMPORT_LINE)
    edited = "\n".join(lines) + "\n"
    check = ast.parse(edited)  # the result must still be Python, with both additions in place
    assert _has_import(check) and _calls_add_config(_extend_cfg(check))
    return edited


def _imports_trainers(node: ast.Import | ast.ImportFrom) -> bool:
    if isinstance(node, ast.ImportFrom):
        return (node.module or "").split(".")[0] == "trainers"
    return any(alias.name.split(".")[0] == "trainers" for alias in node.names)


def missing_steps(host: Path) -> list[str]:
    """What of the drop-in is not (or not up to date) in ``host``; empty when all is done."""
    missing = []
    if _tree_differs(REPO / TRAINER_DIR, host / TRAINER_DIR):
        missing.append(f"{TRAINER_DIR}/ is absent or differs from this repository's")
    if _tree_differs(REPO / CONFIG_DIR, host / CONFIG_DIR):
        missing.append(f"{CONFIG_DIR}/ is absent or differs from this repository's")
    source = (host / "train.py").read_text()
    if edit_train_py(source) != source:
        missing.append("train.py lacks the trainer import or the add_dapt_init_config call")
    return missing


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def _tree_differs(ours: Path, theirs: Path) -> bool:
    return not theirs.is_dir() or _files(ours) != _files(theirs)


def apply(host: Path) -> list[str]:
    """Apply the drop-in to ``host``; returns what was changed (empty: nothing to do)."""
    host = host.resolve()
    if host == REPO:
        raise DropInError("that is this repository; give the path of your own codebase")
    if not (host / "train.py").is_file():
        raise DropInError(f"{host} has no train.py: give the root of a CoOp-family codebase")
    if not (host / "trainers").is_dir():
        raise DropInError(f"{host} has no trainers/ package")
    source = (host / "train.py").read_text()
    edited = edit_train_py(source)  # checked before anything is copied
    changed = []
    for folder in (TRAINER_DIR, CONFIG_DIR):
        if _tree_differs(REPO / folder, host / folder):
            if (host / folder).exists():
                shutil.rmtree(host / folder)
            shutil.copytree(REPO / folder, host / folder,
                            ignore=shutil.ignore_patterns("__pycache__"))
            changed.append(f"copied {folder}/")
    init = host / "trainers" / "__init__.py"
    if not init.exists():  # a namespace package works too, but CoOp-family repos have one
        init.write_text("")
        changed.append("created trainers/__init__.py")
    if edited != source:
        (host / "train.py").write_text(edited)
        changed.append("edited train.py (trainer import, add_dapt_init_config in extend_cfg)")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host", type=Path, help="root of the CoOp-family codebase")
    parser.add_argument("--check", action="store_true", help="report only, change nothing")
    args = parser.parse_args(argv)
    try:
        if args.check:
            if not (args.host / "train.py").is_file():
                raise DropInError(f"{args.host} has no train.py")
            missing = missing_steps(args.host)
            for line in missing:
                print(f"missing: {line}")
            print("DAPT_Init is in place" if not missing else "run without --check to apply")
            return 1 if missing else 0
        changed = apply(args.host)
    except (DropInError, SyntaxError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for line in changed:
        print(line)
    print("DAPT_Init is in place: run train.py ... --trainer DAPT_Init" if changed
          else "nothing to do: DAPT_Init is in place")
    return 0


if __name__ == "__main__":
    from study.entry import run_main

    sys.exit(run_main(main))
