"""Class-tinted noise images and the writers every tiny layout shares: images per class split
as CoOp splits (50% / 20% / 30%), the resulting ``Splits``, and plain list files."""
from __future__ import annotations

import colorsys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from datasets.fewshot import Record, Splits

SPLITS = ("train", "val", "test")

# Images per class for the demo's EuroSAT and the command line: 4 train, 2 val, 2 test, so
# the README's 4-shot examples (and TRIAL=1 sweeps of 1, 2, 4 shots) find enough images.
IMAGES_PER_CLASS = 8

# path_of(split, class key, index within class, running index over the data set) -> path
PathOf = Callable[[str, str, int, int], str]


def class_image(rng: np.random.Generator, class_index: int, n_classes: int,
                image_size: int) -> Image.Image:
    """Noise around a class colour (hues spread evenly), so classes differ in mean colour."""
    hue = class_index / max(n_classes, 1)
    tint = np.array(colorsys.hsv_to_rgb(hue, 0.8, 0.9)) * 255.0
    pixels = tint + rng.normal(0.0, 40.0, size=(image_size, image_size, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")


def write_image(path: Path, image: Image.Image) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="JPEG", quality=90)


def split_counts(images_per_class: int) -> tuple[int, int, int]:
    """CoOp's 50% / 20% / 30% split of one class, at least one image in each part."""
    if images_per_class < 3:
        raise ValueError(f"images_per_class is {images_per_class}; it must be at least 3 "
                         "(one train, one val and one test image per class)")
    n_train = max(1, round(images_per_class * 0.5))
    n_val = max(1, round(images_per_class * 0.2))
    return n_train, n_val, images_per_class - n_train - n_val


def write_class_images(
    image_root: Path, classes: Sequence[tuple[str, str]], path_of: PathOf,
    images_per_class: int, image_size: int, seed: int,
) -> Splits:
    """Write every class's images and return the splits; labels follow ``classes`` order."""
    rng = np.random.default_rng(seed)
    parts = dict(zip(SPLITS, split_counts(images_per_class)))
    records: dict[str, list[Record]] = {split: [] for split in SPLITS}
    running = 0
    for label, (key, classname) in enumerate(classes):
        index = 0
        for split in SPLITS:
            for _ in range(parts[split]):
                index, running = index + 1, running + 1
                path = path_of(split, key, index, running)
                write_image(image_root / path, class_image(rng, label, len(classes), image_size))
                records[split].append(Record(path, label, classname))
    return Splits(records["train"], records["val"], records["test"])


def write_lines(path: Path, lines: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
