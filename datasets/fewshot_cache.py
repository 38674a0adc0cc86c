"""Few-shot subsets and their JSON cache: the draw (CoOp's, through Dassl's sampler), the key
a cache is reused under, the check that a cached file's content is a possible draw, and
``select_fewshot``, which ties them together with base/new subsampling."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .splits import FEWSHOT_FOLDER, Record, Splits, write_json_atomically
from .subsample import _keep_classes, _subsample_relabel, subsample_classes

CACHE_FORMAT = "dapt_init.fewshot/1"
MAX_VAL_SHOTS = 4  # CoOp draws min(K, 4) validation images per class


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

