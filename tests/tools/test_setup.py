"""The one-command set-up: source checks, the "already installed" rule, and a real install.

The real install (a virtual environment that sees this machine's packages, the toolbox
installed into it from a local copy, then a second run that must change nothing) is marked
slow (``python -m pytest -m slow``) and needs the toolbox archive CI holds beside the
repository; CI's own set-up step does the same on a fresh machine.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.support.integration import REPO
from tools import install_toolbox as setup

ARCHIVE = REPO.parent / "shared" / "toolbox" / f"Dassl.pytorch-{setup.PINNED_COMMIT[:7]}.tar.gz"


def test_an_archive_with_another_checksum_is_refused(tmp_path):
    archive = tmp_path / "Dassl.pytorch.tar.gz"
    archive.write_bytes(b"not the toolbox")
    with pytest.raises(setup.SetupError) as error:
        setup.resolve_source(str(archive))
    assert hashlib.sha256(b"not the toolbox").hexdigest() in str(error.value)
    assert setup.PINNED_ARCHIVE_SHA256 in str(error.value)


def test_an_archive_with_the_expected_checksum_is_accepted(tmp_path):
    archive = tmp_path / "Dassl.pytorch.tar.gz"
    archive.write_bytes(b"some bytes")
    expected = hashlib.sha256(b"some bytes").hexdigest()
    source = setup.resolve_source(str(archive), expected)
    assert (source.kind, source.identity, source.requirement) == ("archive", expected, str(archive))


def test_a_clone_at_another_commit_is_refused(tmp_path):
    clone = tmp_path / "Dassl.pytorch"
    (clone / "dassl").mkdir(parents=True)
    (clone / "setup.py").write_text("")
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git[:3] + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "x"], check=True)
    with pytest.raises(setup.SetupError, match="not the pinned c61a1b5"):
        setup.resolve_source(str(clone))


def test_a_missing_source_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TOOLBOX_SRC", str(tmp_path / "nowhere.tar.gz"))
    assert setup.main() == 2
    err = capsys.readouterr().err
    assert err.startswith("error: TOOLBOX_SRC") and err.count("\n") == 1


@pytest.mark.parametrize("kind, record, installed", [
    ("vcs", {"vcs_info": {"commit_id": setup.PINNED_COMMIT}}, True),
    ("vcs", {"vcs_info": {"commit_id": "0" * 40}}, False),
    ("vcs", {"archive_info": {"hashes": {"sha256": setup.PINNED_ARCHIVE_SHA256}}}, False),
    ("archive", {"archive_info": {"hashes": {"sha256": setup.PINNED_ARCHIVE_SHA256}}}, True),
    ("archive", {"archive_info": {"hashes": {"sha256": "f" * 64}}}, False),
    ("dir", {"url": "file:///src/Dassl.pytorch", "dir_info": {}}, True),
    ("dir", {"url": "file:///other/Dassl.pytorch", "dir_info": {}}, False),
])
def test_installed_only_when_pips_record_names_this_source(kind, record, installed):
    identity = {"vcs": setup.PINNED_COMMIT, "archive": setup.PINNED_ARCHIVE_SHA256,
                "dir": "file:///src/Dassl.pytorch"}[kind]
    source = setup.Source("req", kind, identity, "label")
    assert setup.already_installed(source, {**record, "version": "0.6.3"}) is installed
    assert setup.already_installed(source, {**record, "version": "0.6.2"}) is False
    assert setup.already_installed(source, None) is False


@pytest.mark.slow  # about two minutes; CI runs the same two set-up runs as a step of .ci/run
@pytest.mark.skipif(not ARCHIVE.is_file(), reason=f"no toolbox archive at {ARCHIVE} (CI has it)")
def test_setup_installs_the_toolbox_into_a_fresh_environment_and_a_second_run_changes_nothing(
        tmp_path):
    # The archive unpacked outside the repository, as a user's clone would be.
    with tarfile.open(ARCHIVE) as archive:
        archive.extractall(tmp_path / "src", filter="data")
    clone = next((tmp_path / "src").iterdir())
    venv = tmp_path / "venv"
    # System packages visible (torch is GBs), the toolbox installed into the venv itself.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True)
    venv_python = venv / "bin" / "python"
    env = {**os.environ, "PYTHON": str(venv_python), "TOOLBOX_SRC": str(clone)}

    def setup_run() -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(REPO / "scripts/setup.sh")], env=env,
                              capture_output=True, text=True, timeout=600)

    first = setup_run()
    assert first.returncode == 0, first.stderr[-3000:]
    where = subprocess.run([str(venv_python), "-c", "import dassl; print(dassl.__file__, "
                            "dassl.__version__)"], capture_output=True, text=True, check=True)
    path, version = where.stdout.split()
    assert Path(path).is_relative_to(venv) and version == setup.PINNED_VERSION

    site = next(venv.glob("lib/python*/site-packages"))
    before = sorted((p.name, p.stat().st_mtime_ns) for p in site.rglob("*"))
    second = setup_run()
    assert second.returncode == 0, second.stderr[-3000:]
    assert "already installed; nothing to do" in second.stdout
    assert sorted((p.name, p.stat().st_mtime_ns) for p in site.rglob("*")) == before


# ------------------------------------------------------------------ a CPU-only torch
FAKE_PYTHON = """#!/usr/bin/env bash
# Records each call's arguments; every call succeeds (pip, the version checks, the tool).
printf '%s\\n' "$*" >> "$CALLS"
[[ $1 == - ]] && cat > /dev/null
exit 0
"""


def setup_calls(tmp_path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess, list]:
    fake = tmp_path / "python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    calls = tmp_path / "calls"
    base = {k: v for k, v in os.environ.items() if k != "TORCH_INDEX_URL"}
    done = subprocess.run(["bash", str(REPO / "scripts/setup.sh"), *args],
                          env={**base, "PYTHON": str(fake), "CALLS": str(calls), **env},
                          capture_output=True, text=True, timeout=60)
    return done, calls.read_text().splitlines() if calls.exists() else []


def pip_installs(calls: list[str]) -> list[str]:
    return [call for call in calls if call.startswith("-m pip install")]


def requirement(name: str) -> str:
    return next(line for line in (REPO / "requirements.txt").read_text().splitlines()
                if line.startswith(name) and line[len(name)] in "<>=!~ ")


@pytest.mark.parametrize("args,env,index", [
    ((), {}, None),
    (("--cpu",), {}, "https://download.pytorch.org/whl/cpu"),
    ((), {"TORCH_INDEX_URL": "https://mirror.example/whl/cpu"}, "https://mirror.example/whl/cpu"),
    (("--cpu",), {"TORCH_INDEX_URL": "file:///srv/wheels"}, "file:///srv/wheels"),
], ids=["default", "cpu", "index-url", "index-url-wins"])
def test_torch_comes_from_the_index_the_user_names_before_the_requirements(tmp_path, args, env,
                                                                          index):
    done, calls = setup_calls(tmp_path, *args, **env)
    assert done.returncode == 0, done.stderr
    installs = pip_installs(calls)
    if index is None:
        assert not any("--index-url" in call for call in installs)
        assert "-r requirements.txt" in installs[0]
        return
    assert installs[0].endswith(f"--index-url {index} {requirement('torch')} "
                                f"{requirement('torchvision')}")
    assert "-r requirements.txt" in installs[1] and "--index-url" not in installs[1]


@pytest.mark.parametrize("args,env,words", [
    (("--gpu",), {}, "unknown argument '--gpu'"),
    ((), {"TORCH_INDEX_URL": "cpu"}, "TORCH_INDEX_URL must be the URL of a pip index"),
    ((), {"TORCH_INDEX_URL": "https://x/ y"}, "TORCH_INDEX_URL must be the URL"),
])
def test_a_bad_torch_option_is_one_line_and_installs_nothing(tmp_path, args, env, words):
    done, calls = setup_calls(tmp_path, *args, **env)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
    assert words in done.stderr and pip_installs(calls) == []
