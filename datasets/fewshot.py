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

The shared code lives in modules of its own, re-exported here: ``splits`` (records, split files,
layout checks, ``DatasetError``), ``class_folders`` (ImageNet-style folders), ``image_checks``,
``subsample`` (base/new classes) and ``fewshot_cache`` (the draw and its cache); this module
holds the mixin.

The toolbox is imported only where a ``Datum`` is built, so tools that merely read or write
split files (``tools/tiny_data.py``) work where Dassl is absent.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

# Re-exported: data set modules, tools and tests import these from datasets.fewshot.
from .class_folders import (class_folders, read_class_folders,  # noqa: F401
                            read_classnames, require_classnames)
from .fewshot_cache import (CACHE_FORMAT, MAX_VAL_SHOTS, draw_fewshot,  # noqa: F401
                            draw_problem, fewshot_cache_path, fewshot_key, load_fewshot_cache,
                            records_digest, save_fewshot_cache, select_fewshot,
                            warn_short_classes)
from .image_checks import (DECODED_FOLDER, DECODED_FORMAT, decode_marker,  # noqa: F401
                           require_decodable, require_every_class_trained, require_images)
from .splits import (FEWSHOT_FOLDER, MAX_NAMED, DatasetError, Record, Splits,  # noqa: F401
                     data_root, layout_text, prepare_command, read_split_file,
                     rename_classes, require_layout, write_json_atomically, write_split_file)
from .subsample import subsample_classes, subsample_setting  # noqa: F401


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
