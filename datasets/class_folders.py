"""Folder-per-class data sets (ImageNet and its variants): CoOp's ``classnames.txt``, the
class folders and the records read from them."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from .splits import DatasetError, Record, _name_some


def read_classnames(path: Path, name: str) -> dict[str, str]:
    """CoOp's ``classnames.txt``: one ``<folder> <class name>`` per line, in label order."""
    classnames: dict[str, str] = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        folder, _, classname = line.strip().partition(" ")
        if not line.strip():
            continue
        if not classname:
            raise DatasetError(
                f"{name}: {path} line {number} is {line!r}, not '<folder> <class name>'. "
                "Fix: fetch classnames.txt again (link in CoOp's DATASETS.md)."
            )
        classnames[folder] = classname
    return classnames


def class_folders(folder: Path) -> list[str]:
    """Sorted names of the visible sub-folders (files such as README.txt are skipped)."""
    return sorted(entry.name for entry in os.scandir(folder)
                  if entry.is_dir() and not entry.name.startswith("."))


def require_classnames(name: str, folders: Iterable[str], classnames: Mapping[str, str],
                       path: Path) -> None:
    """Every class folder needs a line in ``classnames.txt``."""
    unknown = [folder for folder in folders if folder not in classnames]
    if unknown:
        raise DatasetError(
            f"{name}: {len(unknown)} class folder(s) have no line in {path}:\n"
            f"{_name_some(unknown)}\nFix: use CoOp's classnames.txt (all 1000 ImageNet classes; "
            f"link in CoOp's DATASETS.md), copied from imagenet/ for the ImageNet variants."
        )


def read_class_folders(
    image_root: Path, split_folder: str, folders: Sequence[str], classnames: Mapping[str, str]
) -> list[Record]:
    """Records of ``image_root/split_folder/<folder>/*``, label = position in ``folders``.

    Images keep ``os.listdir`` order, as CoOp's readers do: few-shot draws then match CoOp's
    on the same file system.
    """
    records = []
    for label, folder in enumerate(folders):
        class_dir = os.path.join(image_root, split_folder, folder)
        for image_name in os.listdir(class_dir):
            if not image_name.startswith("."):
                path = os.path.join(split_folder, folder, image_name)
                records.append(Record(path, label, classnames[folder]))
    return records

