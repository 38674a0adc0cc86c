"""Tiny data sets read from their own lists or class folders: FGVC Aircraft (variant lists),
ImageNet (train/val class folders) and the test-only ImageNet variants (V2, Sketch, A, R),
each with CoOp's ``classnames.txt`` where the reader needs it."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from .images import SPLITS, class_image, write_class_images, write_image, write_lines
from .marker import claim_dataset_dir

# Real class folders / names (a subset where the data set is large).
AIRCRAFT_VARIANTS = ["707-320", "727-200", "A300B4", "Cessna 172", "DC-10"]
IMAGENET_CLASSES = {"n01440764": "tench", "n01443537": "goldfish",
                    "n01484850": "great white shark", "n01491361": "tiger shark",
                    "n01494475": "hammerhead shark"}


def make_tiny_fgvc_aircraft(root: Path, images_per_class: int = 6, image_size: int = 32,
                            seed: int = 0) -> Path:
    """``fgvc_aircraft/images/<id>.jpg``, ``variants.txt`` and ``images_variant_<split>.txt``."""
    dataset_dir = claim_dataset_dir(Path(root) / "fgvc_aircraft")
    splits = write_class_images(dataset_dir / "images", [(v, v) for v in AIRCRAFT_VARIANTS],
                                lambda split, key, n, i: f"{1000000 + i:07d}.jpg",
                                images_per_class, image_size, seed)
    write_lines(dataset_dir / "variants.txt", AIRCRAFT_VARIANTS)
    for split, records in zip(SPLITS, (splits.train, splits.val or [], splits.test)):
        write_lines(dataset_dir / f"images_variant_{split}.txt",
                    [f"{Path(r.path).stem} {r.classname}" for r in records])
    return dataset_dir


def _classnames_txt(dataset_dir: Path, classes: dict[str, str]) -> None:
    write_lines(dataset_dir / "classnames.txt", [f"{w} {name}" for w, name in classes.items()])


def make_tiny_imagenet(root: Path, images_per_class: int = 6, image_size: int = 32,
                       seed: int = 0) -> Path:
    """``imagenet/images/train|val/<wnid>/*.JPEG`` and ``classnames.txt`` (5 classes);
    val gets about a third as many images as train."""
    dataset_dir = claim_dataset_dir(Path(root) / "imagenet")
    rng = np.random.default_rng(seed)
    n_val = max(1, images_per_class // 3)
    val_index = 0
    for label, wnid in enumerate(IMAGENET_CLASSES):
        for n in range(1, images_per_class + 1):
            write_image(dataset_dir / "images" / "train" / wnid / f"{wnid}_{n}.JPEG",
                        class_image(rng, label, len(IMAGENET_CLASSES), image_size))
        for _ in range(n_val):
            val_index += 1
            name = f"ILSVRC2012_val_{val_index:08d}.JPEG"
            write_image(dataset_dir / "images" / "val" / wnid / name,
                        class_image(rng, label, len(IMAGENET_CLASSES), image_size))
    _classnames_txt(dataset_dir, IMAGENET_CLASSES)
    return dataset_dir


def _make_class_folder_test_set(
    dataset_dir: Path, image_folder: str, folder_of: Callable[[int, str], str],
    file_of: Callable[[int], str], images_per_class: int, image_size: int, seed: int,
) -> Path:
    rng = np.random.default_rng(seed)
    for label, wnid in enumerate(IMAGENET_CLASSES):
        for n in range(1, images_per_class + 1):
            path = dataset_dir / image_folder / folder_of(label, wnid) / file_of(n)
            write_image(path, class_image(rng, label, len(IMAGENET_CLASSES), image_size))
    _classnames_txt(dataset_dir, IMAGENET_CLASSES)
    return dataset_dir


def make_tiny_imagenetv2(root: Path, images_per_class: int = 6, image_size: int = 32,
                         seed: int = 0) -> Path:
    """``imagenetv2/imagenetv2-matched-frequency-format-val/<label>/*.jpeg`` + classnames.txt."""
    return _make_class_folder_test_set(claim_dataset_dir(Path(root) / "imagenetv2"),
                                       "imagenetv2-matched-frequency-format-val",
                                       lambda label, wnid: str(label),
                                       lambda n: f"tiny{n:04d}.jpeg",
                                       images_per_class, image_size, seed)


def make_tiny_imagenet_sketch(root: Path, images_per_class: int = 6, image_size: int = 32,
                              seed: int = 0) -> Path:
    """``imagenet-sketch/images/<wnid>/sketch_<n>.JPEG`` + classnames.txt."""
    return _make_class_folder_test_set(claim_dataset_dir(Path(root) / "imagenet-sketch"),
                                       "images",
                                       lambda label, wnid: wnid, lambda n: f"sketch_{n}.JPEG",
                                       images_per_class, image_size, seed)


def make_tiny_imagenet_a(root: Path, images_per_class: int = 6, image_size: int = 32,
                         seed: int = 0) -> Path:
    """``imagenet-adversarial/imagenet-a/<wnid>/*.jpg``, its README.txt, classnames.txt."""
    dataset_dir = _make_class_folder_test_set(claim_dataset_dir(Path(root) / "imagenet-adversarial"),
                                              "imagenet-a",
                                              lambda label, wnid: wnid,
                                              lambda n: f"0.{n:06d}.jpg",
                                              images_per_class, image_size, seed)
    write_lines(dataset_dir / "imagenet-a" / "README.txt", ["tiny ImageNet-A"])
    return dataset_dir


def make_tiny_imagenet_r(root: Path, images_per_class: int = 6, image_size: int = 32,
                         seed: int = 0) -> Path:
    """``imagenet-rendition/imagenet-r/<wnid>/art_<n>.jpg``, its README.txt, classnames.txt."""
    dataset_dir = _make_class_folder_test_set(claim_dataset_dir(Path(root) / "imagenet-rendition"),
                                              "imagenet-r",
                                              lambda label, wnid: wnid, lambda n: f"art_{n}.jpg",
                                              images_per_class, image_size, seed)
    write_lines(dataset_dir / "imagenet-r" / "README.txt", ["tiny ImageNet-R"])
    return dataset_dir

