"""Fetching and laying out for prepare_data.py --download: download to a partial file and
rename, verify size and published checksum, extract into a temporary folder and rename the
parts into place (never half-extracted, never overwriting)."""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Sequence

from .check import check_entries
from .specs import Download, Spec


class PrepareError(Exception):
    """A download or extraction failed; the message says what to do."""


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, download: Download) -> None:
    """Raise if the size or the published checksum is known and does not match."""
    size = path.stat().st_size
    if download.size is not None and size != download.size:
        raise PrepareError(f"{path} is {size:,} bytes, expected {download.size:,}: incomplete or "
                           f"a different file. Delete it and run again.")
    if download.md5:
        actual = file_md5(path)
        if actual != download.md5:
            raise PrepareError(f"{path} has md5 {actual}, the published checksum is "
                               f"{download.md5}. Delete it and run again.")
        print(f"   verified {path.name}: md5 matches")
    else:
        print(f"   {path.name}: {download.verification}")


def fetch(download: Download, target: Path) -> None:
    """Download to ``target.part`` and rename once complete."""
    partial = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"   downloading {download.source} -> {target}")
    try:
        if download.gdrive_id:
            import gdown  # installed with Dassl

            if gdown.download(id=download.gdrive_id, output=str(partial), quiet=False) is None:
                raise PrepareError("gdown could not fetch it")
        else:
            urllib.request.urlretrieve(download.url, partial)
    except PrepareError:
        raise
    except Exception as error:  # network errors come in many types
        raise PrepareError(f"could not download {download.source} ({error}). Download it by hand "
                           f"and put it at {target}, then run again with --download.") from None
    os.replace(partial, target)


def _open_archive(archive: Path):
    if zipfile.is_zipfile(archive):
        return zipfile.ZipFile(archive)
    return tarfile.open(archive)


def _sources(tmp: Path, source: str) -> list[tuple[Path, str]]:
    """(path in the extracted tree, name under the destination) for one move."""
    if source.endswith("/*"):
        folder = tmp / source[:-2]
        if not folder.is_dir():
            return []
        return [(child, child.name) for child in sorted(folder.iterdir())]
    return [(tmp / source, "")] if (tmp / source).exists() else []


def extract(archive: Path, dataset_dir: Path, moves: Sequence[tuple[str, str]]) -> list[Path]:
    """Extract into a temporary folder beside the destination, then rename the parts into place.

    Renames within one file system are atomic, so a killed run leaves either nothing or whole
    folders (plus a hidden temporary folder that the next run removes). Existing destinations
    are kept, never overwritten.
    """
    dataset_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dataset_dir, prefix=".extract-"))
    placed = []
    try:
        print(f"   extracting {archive.name} ...")
        with _open_archive(archive) as opened:
            if isinstance(opened, tarfile.TarFile):
                opened.extractall(tmp, filter="data")  # refuses absolute paths and links out
            else:
                opened.extractall(tmp)
        plan = []
        for source, destination in moves:
            found = _sources(tmp, source)
            if not found:
                top = sorted(p.name for p in tmp.iterdir())
                raise PrepareError(f"{archive} has no {source} (its top level holds {top}); "
                                   "it is not the expected archive. Delete it and run again.")
            plan += [(path, dataset_dir / destination / name if name else dataset_dir / destination)
                     for path, name in found]
        for path, destination in plan:
            if destination.exists():
                print(f"   kept existing {destination}")
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, destination)
            placed.append(destination)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return placed


def _remove_stale_temporaries(dataset_dir: Path) -> None:
    # Left by a run that was killed mid-extraction; never part of the layout.
    for stale in dataset_dir.glob(".extract-*"):
        shutil.rmtree(stale, ignore_errors=True)


def _copy_imagenet_classnames(spec: Spec, root: Path) -> None:
    source, target = root / "imagenet" / "classnames.txt", root / spec.folder / "classnames.txt"
    if "classnames.txt" in spec.required and spec.name != "ImageNet" and not target.exists():
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            print(f"   copied {source} -> {target}")


def prepare(spec: Spec, root: Path) -> None:
    """Fetch (or take from the data set folder) and lay out every missing public part."""
    dataset_dir = root / spec.folder
    if dataset_dir.is_dir():
        _remove_stale_temporaries(dataset_dir)
    _, missing, _ = check_entries(spec, dataset_dir)
    for download in spec.downloads:
        if download.provides not in missing:
            continue
        target = dataset_dir / download.file
        if target.exists():
            print(f"   using {target} already present")
        else:
            fetch(download, target)
        verify(target, download)
        if download.moves:
            extract(target, dataset_dir, download.moves)
    _copy_imagenet_classnames(spec, root)
