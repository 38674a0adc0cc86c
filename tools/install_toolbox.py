"""Install the Dassl toolbox at the pinned upstream commit, once, from GitHub or a local copy.

    python tools/install_toolbox.py                       # upstream, pinned commit
    TOOLBOX_SRC=Dassl.pytorch-c61a1b5.tar.gz python tools/install_toolbox.py   # offline
    TOOLBOX_SRC=../Dassl.pytorch python tools/install_toolbox.py    # a clone at that commit

Called by ``scripts/setup.sh`` after the requirements are installed. The toolbox's own
requirements pin tools that no longer install, so it goes in with ``--no-deps`` (what it
imports is in ``requirements-toolbox.txt``). A local archive must have the pinned archive's
sha256 (``TOOLBOX_SHA256`` to accept another); a local git clone must be at the pinned commit.
When the installed toolbox already came from the same source (pip's ``direct_url.json``), it
installs nothing: running it twice changes nothing. Errors are one ``error:`` line, exit 2
(a failed pip run: exit 1 after pip's own output).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

PINNED_COMMIT = "c61a1b570ac6333bd50fb5ae06aea59002fb20bb"
PINNED_VERSION = "0.6.3"
UPSTREAM = "https://github.com/KaiyangZhou/Dassl.pytorch.git"
# sha256 of `git archive --prefix=Dassl.pytorch-c61a1b5/` at PINNED_COMMIT (as CI holds it).
PINNED_ARCHIVE_SHA256 = "0a5106d6097511fbe43d802c97f29cd075fd5dda52b500ee4f25d4023ce7838b"


class SetupError(Exception):
    """A problem the user can fix; printed as one line."""


@dataclass(frozen=True)
class Source:
    """Where the toolbox comes from and what pip records for it once installed."""
    requirement: str  # what to hand pip
    kind: str  # "vcs", "archive" or "dir"
    identity: str  # commit id, archive sha256, or folder URL
    label: str  # for messages


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_head(folder: Path) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"],
                              capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def resolve_source(spec: str, expected_sha256: str = PINNED_ARCHIVE_SHA256) -> Source:
    """The pinned upstream commit when ``spec`` is empty, else a checked local archive/folder."""
    if not spec:
        return Source(f"git+{UPSTREAM}@{PINNED_COMMIT}", "vcs", PINNED_COMMIT,
                      f"upstream at {PINNED_COMMIT[:7]}")
    path = Path(spec).expanduser().resolve()
    if path.is_file():
        found = sha256_of(path)
        if found != expected_sha256:
            raise SetupError(
                f"TOOLBOX_SRC {spec} has sha256 {found}, not the pinned archive's "
                f"{expected_sha256}: it is another version or a damaged copy. Use the archive of "
                f"commit {PINNED_COMMIT[:7]} (or set TOOLBOX_SHA256 to accept this one)."
            )
        return Source(str(path), "archive", found, f"archive {path.name} (sha256 verified)")
    if path.is_dir():
        if not (path / "setup.py").is_file() or not (path / "dassl").is_dir():
            raise SetupError(f"TOOLBOX_SRC {spec} is a folder but not a Dassl.pytorch checkout "
                             "(no setup.py and dassl/ in it).")
        head = git_head(path)
        if head is not None and head != PINNED_COMMIT:
            raise SetupError(
                f"TOOLBOX_SRC {spec} is at commit {head[:7]}, not the pinned {PINNED_COMMIT[:7]}: "
                f"run 'git -C {spec} checkout {PINNED_COMMIT}' first."
            )
        note = "commit verified" if head else "not a git clone: commit not verified"
        return Source(str(path), "dir", path.as_uri(), f"folder {path} ({note})")
    raise SetupError(f"TOOLBOX_SRC {spec} does not exist: give the toolbox archive "
                     f"(Dassl.pytorch-{PINNED_COMMIT[:7]}.tar.gz) or a clone of it.")


def installed_identity() -> dict[str, Any] | None:
    """pip's record of where the installed ``dassl`` came from, with its version; None if absent."""
    try:
        dist = metadata.distribution("dassl")
    except metadata.PackageNotFoundError:
        return None
    record = json.loads(dist.read_text("direct_url.json") or "{}")
    record["version"] = dist.version
    return record


def already_installed(source: Source, record: dict[str, Any] | None) -> bool:
    """Whether pip's record shows this very source installed at the pinned version."""
    if not record or record.get("version") != PINNED_VERSION:
        return False
    if source.kind == "vcs":
        return record.get("vcs_info", {}).get("commit_id") == source.identity
    if source.kind == "archive":
        hashes = record.get("archive_info", {}).get("hashes", {})
        return hashes.get("sha256") == source.identity
    return record.get("url") == source.identity and "dir_info" in record


def pip_install(source: Source) -> None:
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check",
               "--no-build-isolation", "--no-deps", "--force-reinstall", source.requirement]
    print("+ " + " ".join(command), flush=True)
    status = subprocess.call(command)
    if status != 0:
        where = ("GitHub (no network? set TOOLBOX_SRC to a local archive or clone)"
                 if source.kind == "vcs" else source.label)
        print(f"error: installing the toolbox from {where} failed (pip exit {status}; "
              "its output is above)", file=sys.stderr)
        raise SystemExit(1)


def main() -> int:
    try:
        source = resolve_source(os.environ.get("TOOLBOX_SRC", ""),
                                os.environ.get("TOOLBOX_SHA256") or PINNED_ARCHIVE_SHA256)
    except SetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if already_installed(source, installed_identity()):
        print(f"Toolbox: dassl {PINNED_VERSION} from {source.label} already installed; "
              "nothing to do")
        return 0
    print(f"Toolbox: installing dassl from {source.label}")
    pip_install(source)
    return 0


if __name__ == "__main__":
    sys.exit(main())
