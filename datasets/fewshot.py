"""Shared code of the CoOp-family data sets: split files, few-shot subsets and their cache,
base/new class subsampling, and the input checks that turn bad data into one clear message.

A data set file in this package holds only what is particular to its data set (folder names,
split file, class-name rules) and mixes ``FewShotDataset`` into Dassl's ``DatasetBase``::

    @DATASET_REGISTRY.register()
    class EuroSAT(FewShotDataset, DatasetBase):
        dataset_dir = "eurosat"
        image_folder = "2750"
        split_file = "split_zhou_EuroSAT.json"

Few-shot subsets are drawn exactly as CoOp, CoCoOp and DAPT draw them (Dassl's
``generate_fewshot_dataset`` on the full train split, then on the full val split with
``min(K, 4)`` shots, relying on the global ``random`` that the entry point seeded), then cached
as JSON keyed by everything the draw depends on.

The toolbox is imported only where a ``Datum`` is built, so tools that merely read or write
split files (``tools/tiny_data.py``) work where Dassl is absent.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Sequence

# One atomic writer and one list of class subsets for the repository (the drop-in unit
# carries both).
from trainers.dapt_init.atomic import write_atomically
from trainers.dapt_init.config import SUBSAMPLE_CHOICES
from trainers.dapt_init.errors import DaptInitError

FEWSHOT_FOLDER = "split_fewshot"
CACHE_FORMAT = "dapt_init.fewshot/1"
MAX_VAL_SHOTS = 4  # CoOp draws min(K, 4) validation images per class
MAX_NAMED = 10  # how many bad files a message lists before summarising
DECODED_FOLDER = "decoded"  # split_fewshot/decoded/<split>-<files digest>: lists that decoded
DECODED_FORMAT = "dapt_init.decoded/1"


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


# ----------------------------------------------------------------------------------------------
# Folder-per-class data sets (ImageNet and its variants)
# ----------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------
# Image checks (main process, before any loader worker sees a path)
# ----------------------------------------------------------------------------------------------


def require_images(name: str, root: Path, image_root: Path, splits: Splits, source: str) -> None:
    """Raise naming every image that ``source`` lists but that is not on disk."""
    missing = []
    for split, records in (("train", splits.train), ("val", splits.val), ("test", splits.test)):
        for record in records or []:
            if not os.path.isfile(os.path.join(image_root, record.path)):
                missing.append(f"{split}: {os.path.join(image_root, record.path)}")
    if missing:
        raise DatasetError(
            f"{name}: {len(missing)} image(s) listed in {source} are missing:\n"
            f"{_name_some(missing)}\n"
            f"Fix: extract the image archive again ('{prepare_command(root, name)}' says what "
            f"is expected where), or point DATASET.ROOT at a complete copy."
        )


def _decode_problem(path: str) -> str | None:
    from PIL import Image

    try:
        with Image.open(path) as image:
            # Draft mode decodes JPEGs at reduced scale: the whole file is still read (so a
            # truncated one fails) at a fraction of the cost of a full decode.
            image.draft("RGB", (64, 64))
            image.load()
    except Exception as error:  # PIL raises many types for bad files; all mean "unreadable"
        return f"{type(error).__name__}: {error}"
    return None


def decode_marker(dataset_dir: Path, split: str, paths: Sequence[str]) -> Path:
    """Where a decode check that passed is remembered: keyed by the split's exact files (path,
    size and modification time, so a replaced or damaged file is checked again)."""
    digest = hashlib.sha256()
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{path}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    folder = Path(dataset_dir) / FEWSHOT_FOLDER / DECODED_FOLDER
    return folder / f"{split}-{digest.hexdigest()[:32]}"


def require_decodable(name: str, root: Path, dataset_dir: Path, image_root: Path,
                      splits: Mapping[str, Sequence[Record] | None]) -> None:
    """Decode-check every image the run reads, train, val and test, before any training:
    threads (PIL releases the GIL), and once per split: a list that passed leaves a marker
    keyed by its files, so the next run with the same list (the test split, a cached few-shot
    draw) pays only a stat per image."""
    bad: list[str] = []
    workers = max(1, min(8, os.cpu_count() or 1))
    for split, records in splits.items():
        paths = [os.path.join(image_root, record.path) for record in records or []]
        marker = decode_marker(dataset_dir, split, paths)
        if not paths or marker.is_file():
            continue
        with ThreadPoolExecutor(max_workers=workers) as pool:
            problems = list(pool.map(_decode_problem, paths))
        split_bad = [f"{split}: {path} ({problem})"
                     for path, problem in zip(paths, problems) if problem]
        bad += split_bad
        if not split_bad:
            try:
                write_json_atomically({"format": DECODED_FORMAT, "images": len(paths)}, marker)
            except OSError:  # a read-only data root: the check is simply repeated next time
                pass
    if bad:
        raise DatasetError(
            f"{name}: {len(bad)} image(s) this run would read cannot be decoded:\n"
            f"{_name_some(bad)}\nFix: replace these files with good copies (extract the archive "
            f"again); '{prepare_command(root, name)}' names the expected sources."
        )


def require_every_class_trained(name: str, root: Path, splits: Splits, source: str) -> None:
    """Each class needs a training image: prompts are trained on them, DAPT's prototypes average
    them, and Dassl counts classes from the training labels."""
    names: dict[int, str] = {}
    for record in [*splits.train, *(splits.val or []), *splits.test]:
        names.setdefault(record.label, record.classname)
    trained = {record.label for record in splits.train}
    missing = sorted(set(range(max(names, default=-1) + 1)) - trained)
    if missing:
        shown = [f"{label} ({names.get(label, 'no image in any split')})" for label in missing]
        raise DatasetError(
            f"{name}: {len(missing)} class(es) have no training image in {source}: "
            f"{', '.join(shown[:MAX_NAMED])}{' ...' if len(shown) > MAX_NAMED else ''}. "
            f"Fix: fetch the split file again ('{prepare_command(root, name, True)}'), or drop "
            "these labels from every split and number the classes from 0 without gaps."
        )


# ----------------------------------------------------------------------------------------------
# Base / new classes (CoCoOp's protocol)
# ----------------------------------------------------------------------------------------------


def subsample_setting(cfg: Any) -> str:
    """``DATASET.SUBSAMPLE_CLASSES``, "all" where the host config lacks the key."""
    value = str(getattr(cfg.DATASET, "SUBSAMPLE_CLASSES", "all"))
    if value not in SUBSAMPLE_CHOICES:
        raise DatasetError(
            f"DATASET.SUBSAMPLE_CLASSES is {value!r}; valid values are "
            f"{', '.join(SUBSAMPLE_CHOICES)} (all classes, the first half, the second half)."
        )
    return value


def subsample_classes(
    subsample: str, *splits: list[Record] | None
) -> list[list[Record] | None]:
    """Keep the base (first ceil(n/2) sorted labels of the first split) or new classes, relabelled
    from 0, as CoCoOp does; ``all`` returns the splits unchanged; None splits stay None."""
    if subsample == "all":
        return list(splits)
    relabel = _subsample_relabel(subsample, splits[0])
    labels = {record.label for record in splits[0] or []}
    print(f"Subsampling {subsample} classes: {len(relabel)} of {len(labels)}")
    return [None if split is None else _keep_classes(split, relabel) for split in splits]


def _subsample_relabel(subsample: str, records: Sequence[Record] | None) -> dict[int, int]:
    """Old label -> new label of the base or new half (CoCoOp's rule)."""
    labels = sorted({record.label for record in records or []})
    half = math.ceil(len(labels) / 2)
    selected = labels[:half] if subsample == "base" else labels[half:]
    return {label: new_label for new_label, label in enumerate(selected)}


def _keep_classes(records: list[Record], relabel: Mapping[int, int]) -> list[Record]:
    return [record._replace(label=relabel[record.label])
            for record in records if record.label in relabel]


# ----------------------------------------------------------------------------------------------
# Few-shot subsets and their cache
# ----------------------------------------------------------------------------------------------


def records_digest(*splits: Sequence[Record] | None) -> str:
    """Fingerprint of the full lists a draw samples from: order matters to the sampler."""
    digest = hashlib.sha256()
    for split in splits:
        digest.update(json.dumps([list(record) for record in split or []]).encode())
        digest.update(b"\0")
    return digest.hexdigest()


def fewshot_key(
    name: str, num_shots: int, seed: int, subsample: str, splits: Splits
) -> dict[str, Any]:
    """Everything a few-shot subset depends on; a cache is reused only when all of it matches."""
    return {
        "format": CACHE_FORMAT,
        "dataset": name,
        "num_shots": num_shots,
        "val_shots": None if splits.val is None else min(num_shots, MAX_VAL_SHOTS),
        "seed": seed,
        "subsample": subsample,
        "sampler": "dassl.DatasetBase.generate_fewshot_dataset(repeat=False), train then val",
        "source_sha256": records_digest(splits.train, splits.val),
    }


def fewshot_cache_path(dataset_dir: Path, num_shots: int, seed: int, subsample: str) -> Path:
    """``<dataset_dir>/split_fewshot/shot_<K>-seed_<S>-<subset>.json`` (beside CoOp's pickles,
    never colliding with them)."""
    return Path(dataset_dir) / FEWSHOT_FOLDER / f"shot_{num_shots}-seed_{seed}-{subsample}.json"


def _key_changes(stored: Any, key: Mapping[str, Any]) -> list[str]:
    if not isinstance(stored, dict):
        return ["no key stored"]
    return [f"{field}: {stored.get(field)!r} -> {value!r}"
            for field, value in key.items() if stored.get(field) != value]


def load_fewshot_cache(
    path: Path, key: Mapping[str, Any],
    check: Callable[[list[Record], list[Record] | None], str | None] | None = None,
) -> tuple[list[Record], list[Record] | None] | None:
    """The cached (train, val) if ``path`` holds exactly ``key`` and ``check`` finds nothing
    wrong with its content; else None, saying why in one line (the caller draws again and
    replaces the file atomically)."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        changes = _key_changes(data.get("key"), key)
        if not changes:
            train = [Record(*item) for item in data["train"]]
            val = None if data["val"] is None else [Record(*item) for item in data["val"]]
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        changes = [f"unreadable ({type(error).__name__}: {error})"]
    if changes:
        print(f"Ignoring few-shot cache {path}: it does not match this setting "
              f"({'; '.join(changes)}). Drawing the subset again.")
        return None
    # A right key does not make right content (a hand-edited or foreign file): the records
    # must be a draw the sampler could have made from this split.
    problem = check(train, val) if check is not None else None
    if problem:
        print(f"Ignoring few-shot cache {path}: its content is not a draw from this split "
              f"({problem}). Drawing the subset again and replacing it.")
        return None
    print(f"Loading few-shot subset from {path}")
    return train, val


def draw_problem(records: Sequence[Record], source: Sequence[Record], shots: int,
                 what: str) -> str | None:
    """What makes ``records`` impossible as a draw of ``shots`` per class from ``source``
    (an image not in it, hence possibly outside the data root or missing; a label or class
    name that is not the split's; a repeat; a class with the wrong count), else None."""
    pool = set(source)
    available: dict[int, int] = {}
    for record in source:
        available[record.label] = available.get(record.label, 0) + 1
    counts: dict[int, int] = {}
    seen: set[Record] = set()
    for record in records:
        if record not in pool:
            return (f"{what} entry [{record.path!r}, {record.label!r}, {record.classname!r}] "
                    "is not an image of the split with that label and class name")
        if record in seen:
            return f"{what} lists {record.path!r} twice"
        seen.add(record)
        counts[record.label] = counts.get(record.label, 0) + 1
    for label, count in sorted(available.items()):
        expected = min(shots, count)
        if counts.get(label, 0) != expected:
            return (f"{what} has {counts.get(label, 0)} image(s) of class {label}; a draw of "
                    f"{shots} shot(s) has {expected}")
    return None


def save_fewshot_cache(
    path: Path, key: Mapping[str, Any], train: list[Record], val: list[Record] | None
) -> None:
    """Write the cache atomically; a read-only data root costs a redraw next time, not the run."""
    data = {
        "key": dict(key),
        "train": [list(record) for record in train],
        "val": None if val is None else [list(record) for record in val],
    }
    try:
        write_json_atomically(data, path)
    except OSError as error:
        print(f"Warning: could not save the few-shot subset to {path} ({error}); it will be "
              "drawn again (identically, for the same seed) next time.")
        return
    print(f"Saved few-shot subset to {path}")


def draw_fewshot(
    sampler: Any, splits: Splits, num_shots: int
) -> tuple[list[Record], list[Record] | None]:
    """CoOp's draw: K per class from train, then min(K, 4) per class from val, in that order.

    ``sampler`` is the Dassl ``DatasetBase`` being built; its ``generate_fewshot_dataset`` uses
    the global ``random`` the entry point seeded (``set_random_seed(cfg.SEED)``).
    """
    train = sampler.generate_fewshot_dataset(splits.train, num_shots=num_shots)
    val = None
    if splits.val is not None:
        val = sampler.generate_fewshot_dataset(splits.val, num_shots=min(num_shots, MAX_VAL_SHOTS))
    return list(train), None if val is None else list(val)


def warn_short_classes(name: str, full_train: Sequence[Record], num_shots: int) -> None:
    """Name each class with fewer training images than the shots asked (all of them are used)."""
    counts: dict[tuple[int, str], int] = {}
    for record in full_train:
        name_key = (record.label, record.classname)
        counts[name_key] = counts.get(name_key, 0) + 1
    for (label, classname), count in sorted(counts.items()):
        if count < num_shots:
            print(f"Warning: {name} class '{classname}' (label {label}) has {count} training "
                  f"image(s), fewer than the {num_shots} shots asked; using all {count} "
                  "(no repetition, as CoOp and Dassl do).")


def select_fewshot(
    sampler: Any, name: str, dataset_dir: Path, splits: Splits,
    num_shots: int, seed: int, subsample: str,
) -> Splits:
    """Few-shot train/val (cached when the seed is fixed) and the test split, subsampled."""
    warn_short_classes(name, splits.train, num_shots)
    key = fewshot_key(name, num_shots, seed, subsample, splits)
    cache = fewshot_cache_path(dataset_dir, num_shots, seed, subsample)
    train_source, val_source = splits.train, splits.val
    if subsample != "all":  # the cache holds the relabelled half
        relabel = _subsample_relabel(subsample, splits.train)
        train_source = _keep_classes(splits.train, relabel)
        val_source = None if splits.val is None else _keep_classes(splits.val, relabel)

    def check(train: list[Record], val: list[Record] | None) -> str | None:
        if (val is None) != (val_source is None):
            return "val is missing" if val is None else "val is given for a split without one"
        return (draw_problem(train, train_source, num_shots, "train")
                or (draw_problem(val, val_source, min(num_shots, MAX_VAL_SHOTS), "val")
                    if val is not None and val_source is not None else None))

    cached = load_fewshot_cache(cache, key, check) if seed >= 0 else None
    if cached is not None:
        train, val = cached
        # Base/new classes are decided by the training labels (CoCoOp); the full train split has
        # the same labels as any few-shot draw from it.
        _, test = subsample_classes(subsample, splits.train, splits.test)
        return Splits(train, val, test)
    train, val = draw_fewshot(sampler, splits, num_shots)
    _, train, val, test = subsample_classes(subsample, splits.train, train, val, splits.test)
    if seed >= 0:
        save_fewshot_cache(cache, key, train, val)
    else:
        print(f"SEED is {seed} (not fixed): the few-shot subset is drawn afresh and not cached.")
    return Splits(train, val, test)


# ----------------------------------------------------------------------------------------------
# The mixin that gives each data set class CoOp's flow
# ----------------------------------------------------------------------------------------------


def to_datums(image_root: Path, records: Sequence[Record] | None) -> list[Any] | None:
    """Dassl ``Datum`` objects with absolute paths (existence was checked before)."""
    if records is None:
        return None
    from dassl.data.datasets import Datum  # imported here so this module works without Dassl

    return [Datum(impath=os.path.join(image_root, record.path), label=record.label,
                  classname=record.classname) for record in records]


class FewShotDataset:
    """Mix into Dassl's ``DatasetBase`` (listed first) to read, check, sample and cache a data set.

    Class attributes a data set sets: ``dataset_dir`` (folder under ``DATASET.ROOT``, as in
    CoOp), ``image_folder`` (split paths are relative to it; "" = ``dataset_dir``),
    ``split_file`` (CoOp's ``split_zhou_*.json``), ``class_renames`` (class-name rule) and
    ``test_only`` (ImageNet variants: every image is a test image). Data sets without a split
    file override ``layout`` and ``read_splits``.

    After construction the instance has absolute ``dataset_dir``, ``image_dir`` and
    ``split_fewshot_dir`` like CoOp's classes.
    """

    dataset_dir: str = ""
    image_folder: str = ""
    split_file: str = ""
    class_renames: Mapping[str, str] = {}
    test_only: bool = False

    @classmethod
    def layout(cls) -> tuple[str, ...]:
        """Entries that must exist under ``dataset_dir`` ("x/" = folder)."""
        entries = (f"{cls.image_folder}/",) if cls.image_folder else ()
        return entries + ((cls.split_file,) if cls.split_file else ())

    def read_splits(self, dataset_dir: Path) -> Splits:
        """Full train/val/test records; the default reads ``split_file``."""
        print(f"Reading split from {dataset_dir / self.split_file}")
        splits = read_split_file(dataset_dir / self.split_file, type(self).__name__)
        if self.class_renames:
            splits = Splits(*(rename_classes(s, self.class_renames)
                              for s in (splits.train, splits.val, splits.test)))
        return splits

    def __init__(self, cfg: Any) -> None:
        name = type(self).__name__
        root = data_root(cfg, name)
        dataset_dir = require_layout(name, root, type(self).dataset_dir, self.layout())
        image_root = dataset_dir / self.image_folder
        splits = self.read_splits(dataset_dir)
        require_images(name, root, image_root, splits, self.split_file or "the data set folders")
        self.dataset_dir = str(dataset_dir)
        self.image_dir = str(image_root)
        self.split_fewshot_dir = str(dataset_dir / FEWSHOT_FOLDER)
        splits = self._select(cfg, name, root, dataset_dir, image_root, splits)
        test = to_datums(image_root, splits.test)
        # Where val (ImageNet) or train (test-only sets) is the test split, keep one list, as CoOp.
        val = test if splits.val is splits.test else to_datums(image_root, splits.val)
        train = test if splits.train is splits.test else to_datums(image_root, splits.train)
        super().__init__(train_x=train, val=val, test=test)  # type: ignore[call-arg]

    def _select(self, cfg: Any, name: str, root: Path, dataset_dir: Path, image_root: Path,
                splits: Splits) -> Splits:
        subsample = subsample_setting(cfg)
        if self.test_only:
            selected = self._test_only(name, subsample, splits)
            require_decodable(name, root, dataset_dir, image_root, {"test": selected.test})
            return selected
        require_every_class_trained(name, root, splits, self.split_file or "the data set folders")
        num_shots = int(cfg.DATASET.NUM_SHOTS)
        if num_shots < 1:  # full data; NUM_SHOTS < 1 while training is the trainer's to refuse
            train, val, test = subsample_classes(subsample, splits.train, splits.val, splits.test)
            # Only evaluation runs get here, and they read the test split alone.
            require_decodable(name, root, dataset_dir, image_root, {"test": test})
            return Splits(train, val if splits.val is not None else test, test)
        seed = int(cfg.SEED)
        chosen = select_fewshot(self, name, dataset_dir, splits, num_shots, seed, subsample)
        require_decodable(name, root, dataset_dir, image_root,
                          {"train": chosen.train, "val": chosen.val, "test": chosen.test})
        # Where a data set has no val split (ImageNet), CoOp validates on the test split.
        val = chosen.val if splits.val is not None else chosen.test
        return Splits(chosen.train, val, chosen.test)

    @staticmethod
    def _test_only(name: str, subsample: str, splits: Splits) -> Splits:
        if subsample != "all":
            raise DatasetError(
                f"{name} is a test-only target set; base/new class splits are defined on the "
                f"source data sets only. Set DATASET.SUBSAMPLE_CLASSES all for {name}."
            )
        return Splits(splits.test, None, splits.test)


class ClassFolderTestSet(FewShotDataset):
    """A test-only ImageNet variant: one folder per class under ``image_folder``, class names
    from ``classnames.txt`` (CoOp's ImageNet file, copied beside it), labels = sorted folders."""

    test_only = True

    @classmethod
    def layout(cls) -> tuple[str, ...]:
        return (f"{cls.image_folder}/", "classnames.txt")

    def folder_classnames(self, image_root: Path, classnames_path: Path) -> dict[str, str]:
        """Class folder -> class name, in label order (sorted folders, as in CoOp)."""
        classnames = read_classnames(classnames_path, type(self).__name__)
        folders = class_folders(image_root)
        require_classnames(type(self).__name__, folders, classnames, classnames_path)
        return {folder: classnames[folder] for folder in folders}

    def read_splits(self, dataset_dir: Path) -> Splits:
        image_root = dataset_dir / self.image_folder
        names = self.folder_classnames(image_root, dataset_dir / "classnames.txt")
        print(f"Reading images from {image_root}")
        data = read_class_folders(image_root, "", list(names), names)
        return Splits(train=data, val=None, test=data)
