"""tools/dropin.py on hosts that could be damaged: a symlinked, CRLF, BOM or non-UTF-8
train.py, a host with a DAPT_Init of its own, a failed, concurrent or killed copy. Each either
edits exactly as asked, keeping the file's own form, or refuses with one line and changes
nothing (issue 25, family 4)."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.integration import REPO
from tools.dropin import CONFIG_LINES, IMPORT_LINE, TRAINER_DIR, copy_folder

HOST = "import argparse\nimport trainers.coop\n\ndef extend_cfg(cfg):\n    cfg.X = 1\n"


def tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "tools" / "dropin.py"), *args],
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every file (bytes) and link (target) under ``root``."""
    return {str(p.relative_to(root)): os.readlink(p) if p.is_symlink() else p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_symlink() or p.is_file()}


def make_host(tmp_path: Path, train_py: bytes | None = HOST.encode()) -> Path:
    host = tmp_path / "host"
    (host / "trainers").mkdir(parents=True)
    (host / "trainers" / "__init__.py").write_text("")
    if train_py is not None:
        (host / "train.py").write_bytes(train_py)
    return host


def linked_host(tmp_path: Path) -> Path:
    host = make_host(tmp_path, None)
    (tmp_path / "other_tree").mkdir()
    (tmp_path / "other_tree" / "train.py").write_text(HOST)
    (host / "train.py").symlink_to(tmp_path / "other_tree" / "train.py")
    return host


def own_dapt_init_host(tmp_path: Path) -> Path:
    host = make_host(tmp_path)
    (host / "trainers" / "mine.py").write_text(
        "from dassl.engine import TRAINER_REGISTRY\n\n@TRAINER_REGISTRY.register()\n"
        "class DAPT_Init:\n    pass\n")
    return host


# (host maker, words of the one error line): refused with nothing changed anywhere in tmp_path
REFUSED = {
    "symlinked-train-py": (linked_host, "is a symlink to"),
    "non-utf8-train-py": (lambda t: make_host(t, b"import trainers.coop\n# caf\xe9\n"
                                                b"def extend_cfg(cfg):\n    pass\n"),
                          "is not UTF-8 (byte 26)"),
    "utf16-train-py": (lambda t: make_host(t, HOST.encode("utf-16")), "is not UTF-8 (byte 0)"),
    "own-dapt-init": (own_dapt_init_host, "trainers/mine.py defines a trainer class DAPT_Init"),
    "no-train-py": (lambda t: make_host(t, None), "has no train.py"),
    "train-py-a-folder": (lambda t: (make_host(t, None) / "train.py").mkdir() or t / "host",
                          "has no train.py"),
}


@pytest.mark.parametrize("case", REFUSED)
@pytest.mark.parametrize("check", [False, True], ids=["apply", "check"])
def test_a_host_it_cannot_edit_safely_is_refused_with_one_line_and_left_as_it_was(
        tmp_path, case, check):
    make, words = REFUSED[case]
    host = make(tmp_path)
    before = snapshot(tmp_path)
    done = tool(*(["--check"] if check else []), str(host))
    if check and case == "symlinked-train-py":  # --check only reads: it says what apply needs
        assert done.returncode == 1 and "apply with --replace-link" in done.stdout
        assert snapshot(tmp_path) == before
        return
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], lines
    assert snapshot(tmp_path) == before


# (train.py bytes, what the edited file must still be): the file's own form is kept
FORMS = {
    "crlf": (HOST.replace("\n", "\r\n").encode(), lambda b: b.count(b"\n") == b.count(b"\r\n")),
    "cr-only": (HOST.replace("\n", "\r").encode(), lambda b: b"\n" not in b),
    "utf8-bom": (b"\xef\xbb\xbf" + HOST.encode(), lambda b: b.startswith(b"\xef\xbb\xbfimport")
                 and b.count(b"\xef\xbb\xbf") == 1),
    "bom-and-crlf": (b"\xef\xbb\xbf" + HOST.replace("\n", "\r\n").encode(),
                     lambda b: b.startswith(b"\xef\xbb\xbf") and b"\r\n" in b
                     and b.count(b"\n") == b.count(b"\r\n")),
    "utf8-names": (("# Crédits: équipe\n" + HOST).encode(),
                   lambda b: b.startswith("# Crédits: équipe\n".encode())),
    "no-final-newline": (HOST.rstrip("\n").encode(), lambda b: b.endswith(b"\n")),
}


@pytest.mark.parametrize("case", FORMS)
def test_the_edit_keeps_line_ends_bom_and_text_and_a_second_run_changes_nothing(tmp_path, case):
    raw, kept = FORMS[case]
    host = make_host(tmp_path, raw)
    (host / "train.py").chmod(0o755)
    assert tool(str(host)).returncode == 0
    edited = (host / "train.py").read_bytes()
    assert kept(edited), edited
    text = edited.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    assert all(line in text.splitlines() for line in (IMPORT_LINE, "    " + CONFIG_LINES[0],
                                                      "    " + CONFIG_LINES[1]))
    original = raw.decode("utf-8-sig").replace("\r\n", "\n").replace("\r", "\n")
    assert [l for l in text.splitlines() if "DAPT_Init" not in l] == original.splitlines()
    assert (host / "train.py").stat().st_mode & 0o777 == 0o755  # still executable
    again = tool(str(host))
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert (host / "train.py").read_bytes() == edited


def test_replace_link_writes_a_file_in_place_of_the_link_and_leaves_its_target(tmp_path):
    host = linked_host(tmp_path)
    target = tmp_path / "other_tree" / "train.py"
    done = tool("--replace-link", str(host))
    assert done.returncode == 0, done.stderr
    assert "a file in place of the symlink" in done.stdout
    assert not (host / "train.py").is_symlink()
    assert IMPORT_LINE in (host / "train.py").read_text()
    assert target.read_text() == HOST  # the other tree's file is untouched


def test_a_failed_copy_leaves_the_old_folder_whole_and_no_partial_one(tmp_path):
    source = tmp_path / "new_trainer"
    source.mkdir()
    (source / "a.py").write_text("new\n")
    os.mkfifo(source / "z_fifo")  # copytree refuses a named pipe: the copy fails half done
    target = tmp_path / "trainers" / "dapt_init"
    target.mkdir(parents=True)
    (target / "a.py").write_text("old\n")
    (target / "old_only.py").write_text("old\n")
    before = snapshot(tmp_path / "trainers")
    with pytest.raises(Exception):
        copy_folder(source, target)
    assert snapshot(tmp_path / "trainers") == before  # no .dropin-* temp folder left either
    (source / "z_fifo").unlink()
    copy_folder(source, target)  # and one that works replaces the folder whole
    assert snapshot(target) == {"a.py": b"new\n"}


def test_a_concurrent_drop_in_is_refused_and_a_killed_ones_leftovers_are_cleared(tmp_path):
    host = make_host(tmp_path)
    before = snapshot(tmp_path)
    lock = os.open(host / "trainers", os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another dropin.py at work on this host
        done = tool(str(host))
    finally:
        os.close(lock)
    assert done.returncode == 2
    assert done.stderr.startswith("error: another tools/dropin.py is working on ")
    assert snapshot(tmp_path) == before
    # What a killed run leaves: a half copy and a half-written train.py, both temporary.
    (host / "trainers" / ".dropin-abc123" / "new").mkdir(parents=True)
    (host / "trainers" / ".dropin-abc123" / "new" / "half.py").write_text("")
    (host / ".dropin-train.py.999").write_text("half")
    assert tool(str(host)).returncode == 0
    assert sorted(p.name for p in (host / "trainers").iterdir()) == ["__init__.py", "dapt_init"]
    assert not (host / ".dropin-train.py.999").exists()
    assert snapshot(host / TRAINER_DIR) == {
        k: v for k, v in snapshot(REPO / TRAINER_DIR).items() if "__pycache__" not in k}
