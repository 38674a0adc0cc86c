"""Records and splits of the CoOp-family data sets: the ``Record``/``Splits`` types, the
``DatasetError`` every data check raises, the data root and layout checks, and CoOp's split
files (read, write, class renames). Imports no toolbox, so tools that only read or write split
files work without Dassl."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

# One atomic writer for the repository (the drop-in unit carries it).
from trainers.dapt_init.atomic import write_atomically
from trainers.dapt_init.errors import DaptInitError

FEWSHOT_FOLDER = "split_fewshot"
MAX_NAMED = 10  # how many bad files a message lists before summarising


class DatasetError(DaptInitError):
    """Data on disk or a data set setting is wrong; the message names the problem and the fix.

    A ``DaptInitError``, so one ``except DaptInitError`` catches every user error."""


class Record(NamedTuple):
    """One image: path relative to the data set's image folder, 0-based label, class name.

    Dassl's few-shot sampler only reads ``.label``, so it samples these as it samples ``Datum``.
    """

    path: str
    label: int
    classname: str


@dataclass
class Splits:
    """Full train / val / test lists; ``val`` is None where the data set validates on test."""

    train: list[Record]
    val: list[Record] | None
    test: list[Record]


# ----------------------------------------------------------------------------------------------
# Messages
# ----------------------------------------------------------------------------------------------


def prepare_command(root: Path | str, name: str, download: bool = False) -> str:
    """The command that checks (and where possible downloads) one data set."""
    command = f"python tools/prepare_data.py --root {root} --dataset {name}"
    return command + " --download" if download else command


def _name_some(paths: Sequence[str]) -> str:
    shown = "\n".join(f"  {path}" for path in paths[:MAX_NAMED])
    more = len(paths) - MAX_NAMED
    return shown + (f"\n  ... and {more} more" if more > 0 else "")


# ----------------------------------------------------------------------------------------------
# Data root and layout
# ----------------------------------------------------------------------------------------------


def data_root(cfg: Any, name: str) -> Path:
    """``DATASET.ROOT`` as an absolute path; an empty setting is an error, not the cwd."""
    root = str(cfg.DATASET.ROOT).strip()
    if not root:
        raise DatasetError(
            f"{name}: DATASET.ROOT is empty. Set it to the folder that holds your data sets "
            f"(e.g. '--root /data' or 'DATASET.ROOT /data'); check that folder with "
            f"'{prepare_command('/data', name)}'."
        )
    return Path(os.path.abspath(os.path.expanduser(root)))


def _entry_present(dataset_dir: Path, entry: str) -> bool:
    # An entry ending in "/" is a folder, anything else a file.
    path = dataset_dir / entry
    return path.is_dir() if entry.endswith("/") else path.is_file()


def layout_text(folder: str, entries: Sequence[str]) -> str:
    """The expected layout, drawn like CoOp's DATASETS.md."""
    return "\n".join([f"  {folder}/"] + [f"  |-- {entry}" for entry in entries])


def require_layout(name: str, root: Path, folder: str, entries: Sequence[str]) -> Path:
    """Return ``root/folder`` or raise naming what is missing and how to prepare it."""
    dataset_dir = root / folder
    if dataset_dir.is_dir():
        missing = [entry for entry in entries if not _entry_present(dataset_dir, entry)]
    else:
        missing = [f"{folder}/ (the data set folder itself)"]
    if missing:
        raise DatasetError(
            f"{name}: data not found or laid out wrongly under DATASET.ROOT={root}.\n"
            f"Missing:\n{_name_some(missing)}\n"
            f"Expected layout (as in CoOp's DATASETS.md):\n{layout_text(folder, entries)}\n"
            f"Fix: run '{prepare_command(root, name)}' to see what is present and the next "
            f"step (add --download where the sources are public), or point DATASET.ROOT at "
            f"the folder that holds {folder}/."
        )
    return dataset_dir


# ----------------------------------------------------------------------------------------------
# Split files
# ----------------------------------------------------------------------------------------------


def _bad_split(name: str, path: Path, problem: str) -> DatasetError:
    return DatasetError(
        f"{name}: split file {path} is corrupt or truncated ({problem}).\n"
        f"Fix: delete it and fetch it again ('{prepare_command(path.parent.parent, name, True)}'"
        f" or the link in CoOp's DATASETS.md)."
    )


def _parse_records(name: str, path: Path, data: Any, split: str) -> list[Record]:
    if not isinstance(data, dict) or not isinstance(data.get(split), list):
        raise _bad_split(name, path, f"no '{split}' list")
    records = []
    for index, item in enumerate(data[split]):
        ok = isinstance(item, (list, tuple)) and len(item) == 3
        if not ok or not isinstance(item[0], str) or not isinstance(item[2], str):
            raise _bad_split(name, path, f"'{split}' entry {index} is {item!r}, "
                             "not [relative path, label, class name]")
        try:
            label = int(item[1])
        except (TypeError, ValueError):
            raise _bad_split(name, path, f"'{split}' entry {index} has label {item[1]!r}") from None
        records.append(Record(item[0], label, item[2]))
    return records


def read_split_file(path: Path, name: str) -> Splits:
    """Read a CoOp ``split_zhou_*.json``: train/val/test lists of [path, label, classname]."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _bad_split(name, Path(path), f"not valid JSON: {error}") from None
    except OSError as error:
        raise DatasetError(f"{name}: cannot read split file {path} ({error}).") from None
    splits = [_parse_records(name, Path(path), data, split) for split in ("train", "val", "test")]
    return Splits(*splits)


def write_json_atomically(obj: Any, path: Path) -> None:
    """Write JSON so that a killed process leaves the old file or the new one, never half."""
    write_atomically(str(path), lambda tmp: Path(tmp).write_text(json.dumps(obj), encoding="utf-8"))


def write_split_file(splits: Splits, path: Path) -> None:
    """Write ``splits`` in CoOp's split-file format (val None is written as an empty list)."""
    data = {
        "train": [list(record) for record in splits.train],
        "val": [list(record) for record in splits.val or []],
        "test": [list(record) for record in splits.test],
    }
    write_json_atomically(data, path)


def rename_classes(records: Iterable[Record], renames: Mapping[str, str]) -> list[Record]:
    """Apply a data set's class-name rule (e.g. EuroSAT's ``AnnualCrop -> Annual Crop Land``)."""
    return [record._replace(classname=renames.get(record.classname, record.classname))
            for record in records]

