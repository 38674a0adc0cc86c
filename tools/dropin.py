"""Drop DAPT_Init into a CoOp-family codebase: the README's steps 1-3, done for you.

    python tools/dropin.py /path/to/your/repo            # apply (again: changes nothing)
    python tools/dropin.py /path/to/your/repo --check    # say what is missing, change nothing

It copies ``trainers/dapt_init/`` and ``configs/trainers/DAPT_Init/`` into the codebase and adds
three things to its ``train.py``: the trainer import after its own ``import trainers.*`` lines,
``add_dapt_init_config(cfg)`` at the end of its ``extend_cfg(cfg)``, and, as its first import,
``trainers.dapt_init.quiet`` (no third-party pkg_resources warning). Nothing is specific
to one codebase: it needs what CoOp, CoCoOp, DAPT, RPO, MaPLe and their kin share (a
``train.py`` with those lines and a ``trainers/`` package). An earlier copy of the trainer is
replaced by this one; any other file of the codebase is left as it is.
"""
from __future__ import annotations

import argparse
import ast
import codecs
import contextlib
import fcntl
import importlib.util
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterator, NamedTuple

REPO = Path(__file__).resolve().parent.parent
TRAINER_DIR = Path("trainers") / "dapt_init"
CONFIG_DIR = Path("configs") / "trainers" / "DAPT_Init"
IMPORT_LINE = "import trainers.dapt_init.trainer  # DAPT_Init: registers the trainer"
# First import of the host's train.py: silences the toolbox's and clip's pkg_resources warning,
# which the host's own 'from dassl...' lines would print before any other line of ours runs.
QUIET_LINE = "import trainers.dapt_init.quiet  # DAPT_Init: no third-party pkg_resources warning"
CONFIG_LINES = ("from trainers.dapt_init.config import add_dapt_init_config  # DAPT_Init",
                "add_dapt_init_config(cfg)  # DAPT_Init")


class DropInError(Exception):
    """A codebase this tool cannot edit safely; the message names what is missing."""


def _has_import(tree: ast.Module) -> bool:
    return any(isinstance(node, ast.Import)
               and any(alias.name == "trainers.dapt_init.trainer" for alias in node.names)
               for node in tree.body)


def _has_quiet(tree: ast.Module) -> bool:
    return any(isinstance(node, ast.Import)
               and any(alias.name == "trainers.dapt_init.quiet" for alias in node.names)
               for node in tree.body)


def _first_import_line(tree: ast.Module) -> int:
    """The 0-based line of the first top-level import after any ``from __future__`` one (a
    future import must stay first), or after the docstring where there is no import."""
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)) and not (
                isinstance(node, ast.ImportFrom) and node.module == "__future__"):
            return node.lineno - 1
    return 0


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
    if _calls_add_config(function) and _has_import(tree) and _has_quiet(tree):
        return source
    # (0-based line, lines to insert there), all positions in the original file, applied
    # from the bottom up so that no insertion moves another's place.
    inserts: list[tuple[int, list[str]]] = []
    if not _calls_add_config(function):
        last = function.body[-1]
        # At the end of the body; before a final 'return', which would skip it.
        at = last.lineno - 1 if isinstance(last, ast.Return) else last.end_lineno
        indent = " " * function.body[0].col_offset
        inserts.append((at, [indent + line for line in CONFIG_LINES]))
    if not _has_import(tree):
        trainer_imports = [node.end_lineno for node in tree.body
                           if isinstance(node, (ast.Import, ast.ImportFrom))
                           and _imports_trainers(node)]
        if not trainer_imports:
            raise DropInError("train.py imports no 'trainers.*' module (where CoOp-family "
                              "train.py files register their trainers)")
        inserts.append((max(trainer_imports), [IMPORT_LINE]))
    if not _has_quiet(tree):
        inserts.append((_first_import_line(tree), [QUIET_LINE]))
    for at, new in sorted(inserts, key=lambda insert: insert[0], reverse=True):
        lines[at:at] = new
    edited = "\n".join(lines) + "\n"
    check = ast.parse(edited)  # the result must still be Python, with every addition in place
    assert (_has_import(check) and _has_quiet(check)
            and _calls_add_config(_extend_cfg(check)))
    return edited


def _imports_trainers(node: ast.Import | ast.ImportFrom) -> bool:
    if isinstance(node, ast.ImportFrom):
        return (node.module or "").split(".")[0] == "trainers"
    return any(alias.name.split(".")[0] == "trainers" for alias in node.names)


class Layout(NamedTuple):
    """How train.py is written, kept in the edited file: its line end and a UTF-8 BOM."""
    newline: str
    bom: str

    def write(self, source: str) -> str:
        return self.bom + source.replace("\n", self.newline)


def read_train_py(host: Path, replace_link: bool = False) -> tuple[str, Layout]:
    """(source with "\\n" line ends, how the file writes them); refused: a symlink (editing it
    would change another tree's file) unless ``replace_link``, and a file that is not UTF-8."""
    path = host / "train.py"
    if path.is_symlink() and not replace_link:
        raise DropInError(f"{path} is a symlink to {os.readlink(path)}; editing it would change "
                          "that file (another tree's). Copy the file over the link, or run "
                          "again with --replace-link to have this tool do so")
    raw = path.read_bytes()
    bom = "\ufeff" if raw.startswith(codecs.BOM_UTF8) else ""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DropInError(f"{path} is not UTF-8 (byte {error.start}); convert it (e.g. iconv "
                          "-t utf-8) and run again, or make the README's two edits by hand")
    # Windows (CRLF) and old Mac (CR) files stay so; ast and the edit work on "\n" lines.
    newline = "\r\n" if "\r\n" in text else "\r" if "\r" in text and "\n" not in text else "\n"
    return text.replace(newline, "\n"), Layout(newline, bom)


def own_dapt_init(host: Path) -> str:
    """The host file (outside trainers/dapt_init/) defining a class DAPT_Init: a trainer of the
    same registry name, which registering ours would clash with. Empty when there is none."""
    for path in sorted((host / "trainers").rglob("*.py")):
        if TRAINER_DIR.parts[-1] in path.relative_to(host / "trainers").parts[:1]:
            continue
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError, OSError):
            continue
        if any(isinstance(node, ast.ClassDef) and node.name == "DAPT_Init"
               for node in ast.walk(tree)):
            return str(path.relative_to(host))
    return ""


def check_host(host: Path) -> None:
    if not (host / "train.py").is_file():
        raise DropInError(f"{host} has no train.py: give the root of a CoOp-family codebase")
    if not (host / "trainers").is_dir():
        raise DropInError(f"{host} has no trainers/ package")
    clash = own_dapt_init(host)
    if clash:
        raise DropInError(f"{clash} defines a trainer class DAPT_Init of this codebase's own; "
                          "the two would clash in the trainer registry. Rename that class, "
                          "then run again")


def missing_steps(host: Path) -> list[str]:
    """What of the drop-in is not (or not up to date) in ``host``; empty when all is done."""
    check_host(host)
    missing = []
    if _tree_differs(REPO / TRAINER_DIR, host / TRAINER_DIR):
        missing.append(f"{TRAINER_DIR}/ is absent or differs from this repository's")
    if _tree_differs(REPO / CONFIG_DIR, host / CONFIG_DIR):
        missing.append(f"{CONFIG_DIR}/ is absent or differs from this repository's")
    source, _ = read_train_py(host, replace_link=True)  # reading through a link is harmless
    if edit_train_py(source) != source:
        missing.append("train.py lacks the trainer import or the add_dapt_init_config call")
        if (host / "train.py").is_symlink():
            missing.append(f"train.py is a symlink to {os.readlink(host / 'train.py')}: apply "
                           "with --replace-link (a file in its place) or copy the file first")
    return missing


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def _tree_differs(ours: Path, theirs: Path) -> bool:
    return not theirs.is_dir() or _files(ours) != _files(theirs)


TEMP_PREFIX = ".dropin-"  # temporary folders and files of this tool, beside their target


def copy_folder(source: Path, target: Path) -> None:
    """``target`` becomes a copy of ``source`` at once: copied beside it, then renamed over, so
    a failed or killed copy leaves the old folder (or none) and no partial one."""
    temp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=target.parent))
    try:
        shutil.copytree(source, temp / "new", ignore=shutil.ignore_patterns("__pycache__"))
        if target.exists():
            os.rename(target, temp / "old")  # the old copy is removed with the temp folder
        os.rename(temp / "new", target)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def write_atomically(path: Path, text: str) -> None:
    temp = path.with_name(f"{TEMP_PREFIX}{path.name}.{os.getpid()}")
    with open(temp, "w", encoding="utf-8", newline="") as file:
        file.write(text)
    if path.exists() and not path.is_symlink():
        shutil.copymode(path, temp)
    os.replace(temp, path)  # replaces a symlink itself, not its target


@contextlib.contextmanager
def host_lock(host: Path) -> Iterator[None]:
    """One drop-in at a time per host (a second one is refused, not interleaved)."""
    # The lock is held on the trainers/ folder itself: no lock file is left in the codebase.
    lock = os.open(host / "trainers", os.O_RDONLY)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DropInError(f"another tools/dropin.py is working on {host}; wait for it to "
                              "end, then run again") from None
        # Left by a killed run of this tool (the lock says none is running now).
        for folder in (host, host / "trainers", host / CONFIG_DIR.parent):
            for stale in folder.glob(f"{TEMP_PREFIX}*"):
                if stale.is_dir() and not stale.is_symlink():
                    shutil.rmtree(stale, ignore_errors=True)
                else:
                    stale.unlink(missing_ok=True)
        yield
    finally:
        os.close(lock)  # and with it the lock


def apply(host: Path, replace_link: bool = False) -> list[str]:
    """Apply the drop-in to ``host``; returns what was changed (empty: nothing to do)."""
    host = host.resolve()
    if host == REPO:
        raise DropInError("that is this repository; give the path of your own codebase")
    check_host(host)
    source, layout = read_train_py(host, replace_link)
    edited = edit_train_py(source)  # checked before anything is copied
    linked = (host / "train.py").is_symlink()
    changed = []
    with host_lock(host):
        for folder in (TRAINER_DIR, CONFIG_DIR):
            if _tree_differs(REPO / folder, host / folder):
                (host / folder).parent.mkdir(parents=True, exist_ok=True)
                copy_folder(REPO / folder, host / folder)
                changed.append(f"copied {folder}/")
        init = host / "trainers" / "__init__.py"
        if not init.exists():  # a namespace package works too, but CoOp-family repos have one
            init.write_text("")
            changed.append("created trainers/__init__.py")
        if edited != source or linked:
            write_atomically(host / "train.py", layout.write(edited))
            changed.append("edited train.py (trainer import, add_dapt_init_config in extend_cfg, "
                           "quiet import first)"
                           + (", a file in place of the symlink" if linked else ""))
    return changed


def _dapt_values():
    # By path: run as a script, this tool has tools/ on sys.path, not the repository root.
    spec = importlib.util.spec_from_file_location(
        "_dropin_dapt_values", REPO / TRAINER_DIR / "dapt_values.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dataset_configs(host: Path) -> dict[str, dict]:
    """DATASET.NAME -> the flat {KEY: value} of each of the host's configs/datasets/*.yaml
    (a file that does not read as a config is left out: the host's own business)."""
    import yaml

    found: dict[str, dict] = {}
    for path in sorted((host / "configs" / "datasets").glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
        except yaml.YAMLError:
            continue
        if not isinstance(data, dict) or not isinstance(data.get("DATASET"), dict):
            continue
        flat, stack = {}, [("", data)]
        while stack:
            prefix, node = stack.pop()
            for key, value in node.items():
                if isinstance(value, dict):
                    stack.append((f"{prefix}{key}.", value))
                else:
                    flat[f"{prefix}{key}"] = value
        found[str(data["DATASET"].get("NAME", path.stem))] = {"file": path.name, **flat}
    return found


def dataset_values_report(host: Path) -> list[str]:
    """What the drop-in does about DAPT's per-dataset LR and betas in ``host``, and what the
    user must do, if anything: one line per data set whose config sets another value."""
    values = _dapt_values()
    configs = _dataset_configs(host)
    lines = [f"data set values: runs of the {len(values.DAPT_VALUES)} data sets DAPT published "
             "values for (trainers/dapt_init/dapt_values.py) train with DAPT's OPTIM.LR and "
             "betas wherever neither their dataset config nor the command sets them (the log "
             "says so in one line); nothing to do"]
    for name, flat in sorted(configs.items()):
        published = values.dapt_values(name)
        if published is None:
            continue
        own = []
        for key, dapt in published.items():
            value = flat.get(key)
            if (isinstance(value, (int, float)) and not isinstance(value, bool)
                    and not math.isclose(float(value), dapt)):
                own.append(f"{key} {value:g} (DAPT: {dapt:g})")
        if own:
            lines.append(f"data set values: configs/datasets/{flat['file']} sets "
                         f"{'; '.join(own)}: it trains with that; delete "
                         f"{'it' if len(own) == 1 else 'them'} there (or set DAPT's value on "
                         "the command line) to train DAPT's study")
    if len(lines) > 1:  # something to do after all
        lines[0] = lines[0].removesuffix("; nothing to do")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host", type=Path, help="root of the CoOp-family codebase")
    parser.add_argument("--check", action="store_true", help="report only, change nothing")
    parser.add_argument("--replace-link", action="store_true",
                        help="train.py is a symlink: write the edited file in its place (the "
                             "link's target is left as it is)")
    args = parser.parse_args(argv)
    try:
        if args.check:
            missing = missing_steps(args.host)
            for line in missing:
                print(f"missing: {line}")
            print("DAPT_Init is in place" if not missing else "run without --check to apply")
            return 1 if missing else 0
        changed = apply(args.host, args.replace_link)
    except BrokenPipeError:  # the reader of stdout went away: study.entry ends it quietly
        raise
    except (DropInError, SyntaxError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for line in changed:
        print(line)
    print("DAPT_Init is in place: run train.py ... --trainer DAPT_Init" if changed
          else "nothing to do: DAPT_Init is in place")
    for line in dataset_values_report(args.host):
        print(line)
    return 0


if __name__ == "__main__":
    from study.entry import run_main

    sys.exit(run_main(main))
