"""Input checks on images, run in the main process before any loader worker sees a path:
listed images exist, every image a run reads decodes (remembered per split by a marker
file), and every class has a training image."""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Mapping, Sequence

from .splits import (FEWSHOT_FOLDER, MAX_NAMED, DatasetError, Record, Splits, _name_some,
                     prepare_command, write_json_atomically)

DECODED_FOLDER = "decoded"  # split_fewshot/decoded/<split>-<files digest>: lists that decoded
DECODED_FORMAT = "dapt_init.decoded/1"


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

