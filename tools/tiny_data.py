"""Generate tiny data sets in the exact on-disk layouts CoOp's data set readers expect.

Each maker writes a few small JPEGs per class (class-tinted noise, so a model could in principle
tell the classes apart) plus the split or list files the real data set ships, and returns the
data set folder (``<root>/<folder>``). Pass ``root`` as ``DATASET.ROOT``. Deterministic for a
given seed; the global ``random`` state is never touched.

    python tools/tiny_data.py eurosat --root /tmp/data
    python tools/tiny_data.py all --root /tmp/data --images-per-class 8
"""
from __future__ import annotations

import argparse
import colorsys
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

# Run as a script, the repository root is not on sys.path; the shared split-file code lives in
# datasets/fewshot.py.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# Importing datasets imports the toolbox, whose dependency 'outdated' warns that pkg_resources
# is deprecated: not the user's concern. A lasting filter, not catch_warnings(): leaving that
# block would also drop the filter 'outdated' sets on import for its own (offline) warnings.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
from datasets.fewshot import Record, Splits, write_split_file  # noqa: E402

SPLITS = ("train", "val", "test")

# Real class folders / names (a subset where the data set is large).
EUROSAT_CLASSES = {
    "AnnualCrop": "Annual Crop Land", "Forest": "Forest",
    "HerbaceousVegetation": "Herbaceous Vegetation Land", "Highway": "Highway or Road",
    "Industrial": "Industrial Buildings", "Pasture": "Pasture Land",
    "PermanentCrop": "Permanent Crop Land", "Residential": "Residential Buildings",
    "River": "River", "SeaLake": "Sea or Lake",
}
PETS_BREEDS = ["Abyssinian", "american_bulldog", "american_pit_bull_terrier", "basset_hound",
               "beagle"]
DTD_CLASSES = ["banded", "blotchy", "braided", "bubbly", "bumpy"]
FOOD_CLASSES = ["apple_pie", "baby_back_ribs", "baklava", "beef_carpaccio"]
AIRCRAFT_VARIANTS = ["707-320", "727-200", "A300B4", "Cessna 172", "DC-10"]
CALTECH_CLASSES = {"accordion": "accordion", "airplanes": "airplane", "anchor": "anchor",
                   "Faces": "face"}
FLOWER_CLASSES = ["pink primrose", "hard-leaved pocket orchid", "canterbury bells", "sweet pea"]
CAR_CLASSES = ["2000 AM General Hummer SUV", "2012 Acura RL Sedan", "2012 Acura TL Sedan",
               "2007 Acura TL Type-S"]
SUN_CLASSES = {"a/abbey": "abbey", "a/airport_terminal": "airport terminal",
               "b/bakery/shop": "shop bakery", "b/bathroom": "bathroom"}
UCF_CLASSES = ["Apply_Eye_Makeup", "Apply_Lipstick", "Archery", "Baby_Crawling"]
IMAGENET_CLASSES = {"n01440764": "tench", "n01443537": "goldfish",
                    "n01484850": "great white shark", "n01491361": "tiger shark",
                    "n01494475": "hammerhead shark"}

# Images per class for the demo's EuroSAT and the command line: 4 train, 2 val, 2 test, so
# the README's 4-shot examples (and TRIAL=1 sweeps of 1, 2, 4 shots) find enough images.
IMAGES_PER_CLASS = 8

# path_of(split, class key, index within class, running index over the data set) -> path
PathOf = Callable[[str, str, int, int], str]


# ----------------------------------------------------------------------------------------------
# The generator writes only into folders it made
# ----------------------------------------------------------------------------------------------

# A data set folder this tool made holds this file; one without it may hold a real data set.
MARKER = ".made_by_tiny_data"


class FolderNotOurs(Exception):
    """The target data set folder exists and was not made by this tool: nothing is written."""


def claim_dataset_dir(dataset_dir: Path) -> Path:
    """``dataset_dir``, made and marked as this tool's; refused (nothing written) when it exists
    without the marker, so a real data set under the same root is never overwritten. An empty
    folder is taken over; a folder this tool made may be regenerated."""
    dataset_dir = Path(dataset_dir)
    if dataset_dir.exists() and not (dataset_dir / MARKER).is_file():
        if not dataset_dir.is_dir() or any(dataset_dir.iterdir()):
            raise FolderNotOurs(
                f"{dataset_dir} already exists and was not made by tools/tiny_data.py (it has "
                f"no {MARKER}): refusing to write a tiny data set over it. Give --root a folder "
                "that holds no real data set (e.g. --root /tmp/tiny_data)."
            )
    dataset_dir.mkdir(parents=True, exist_ok=True)
    # Written before any image, so an interrupted generation can be run again.
    (dataset_dir / MARKER).write_text("tools/tiny_data.py\n", encoding="utf-8")
    return dataset_dir


# ----------------------------------------------------------------------------------------------
# Images
# ----------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------
# Data sets with a CoOp split file
# ----------------------------------------------------------------------------------------------


def make_tiny_eurosat(root: Path, images_per_class: int = IMAGES_PER_CLASS, image_size: int = 32,
                      seed: int = 0) -> Path:
    """``eurosat/2750/<Class>/<Class>_<n>.jpg`` and ``split_zhou_EuroSAT.json`` (10 classes)."""
    dataset_dir = claim_dataset_dir(Path(root) / "eurosat")
    splits = write_class_images(
        dataset_dir / "2750", list(EUROSAT_CLASSES.items()),
        lambda split, key, n, _: os.path.join(key, f"{key}_{n}.jpg"),
        images_per_class, image_size, seed)
    write_split_file(splits, dataset_dir / "split_zhou_EuroSAT.json")
    return dataset_dir


def make_tiny_oxford_pets(root: Path, images_per_class: int = 6, image_size: int = 32,
                          seed: int = 0) -> Path:
    """``oxford_pets/images/<Breed>_<n>.jpg``, ``annotations/`` and the split file."""
    dataset_dir = claim_dataset_dir(Path(root) / "oxford_pets")
    classes = [(breed, breed.lower()) for breed in PETS_BREEDS]
    splits = write_class_images(dataset_dir / "images", classes,
                                lambda split, key, n, _: f"{key}_{n}.jpg",
                                images_per_class, image_size, seed)
    write_split_file(splits, dataset_dir / "split_zhou_OxfordPets.json")
    # The data set's own lists: '<image> <class id> <species: 1 cat, 2 dog> <breed id>'.
    def annotation(record: Record) -> str:
        species = 1 if record.path[0].isupper() else 2
        return f"{Path(record.path).stem} {record.label + 1} {species} {record.label + 1}"
    write_lines(dataset_dir / "annotations" / "trainval.txt",
                [annotation(r) for r in splits.train + (splits.val or [])])
    write_lines(dataset_dir / "annotations" / "test.txt", [annotation(r) for r in splits.test])
    return dataset_dir


def make_tiny_dtd(root: Path, images_per_class: int = 6, image_size: int = 32,
                  seed: int = 0) -> Path:
    """``dtd/images/<class>/<class>_<nnnn>.jpg``, ``labels/``, ``imdb/`` and the split file."""
    dataset_dir = claim_dataset_dir(Path(root) / "dtd")
    splits = write_class_images(dataset_dir / "images", [(c, c) for c in DTD_CLASSES],
                                lambda split, key, n, _: os.path.join(key, f"{key}_{n:04d}.jpg"),
                                images_per_class, image_size, seed)
    write_split_file(splits, dataset_dir / "split_zhou_DescribableTextures.json")
    for split, records in zip(SPLITS, (splits.train, splits.val or [], splits.test)):
        write_lines(dataset_dir / "labels" / f"{split}1.txt", [r.path for r in records])
    (dataset_dir / "imdb").mkdir(exist_ok=True)
    return dataset_dir


def make_tiny_food101(root: Path, images_per_class: int = 6, image_size: int = 32,
                      seed: int = 0) -> Path:
    """``food-101/images/<class>/<id>.jpg``, ``meta/`` and the split file."""
    dataset_dir = claim_dataset_dir(Path(root) / "food-101")
    splits = write_class_images(dataset_dir / "images", [(c, c) for c in FOOD_CLASSES],
                                lambda split, key, n, i: os.path.join(key, f"{100000 + i}.jpg"),
                                images_per_class, image_size, seed)
    write_split_file(splits, dataset_dir / "split_zhou_Food101.json")
    write_lines(dataset_dir / "meta" / "classes.txt", FOOD_CLASSES)
    write_lines(dataset_dir / "meta" / "train.txt",
                [r.path[:-4] for r in splits.train + (splits.val or [])])
    write_lines(dataset_dir / "meta" / "test.txt", [r.path[:-4] for r in splits.test])
    return dataset_dir


def make_tiny_caltech101(root: Path, images_per_class: int = 6, image_size: int = 32,
                         seed: int = 0) -> Path:
    """``caltech-101/101_ObjectCategories/<folder>/image_<nnnn>.jpg`` and the split file."""
    dataset_dir = claim_dataset_dir(Path(root) / "caltech-101")
    splits = write_class_images(dataset_dir / "101_ObjectCategories",
                                list(CALTECH_CLASSES.items()),
                                lambda split, key, n, _: os.path.join(key, f"image_{n:04d}.jpg"),
                                images_per_class, image_size, seed)
    write_split_file(splits, dataset_dir / "split_zhou_Caltech101.json")
    return dataset_dir


def make_tiny_oxford_flowers(root: Path, images_per_class: int = 6, image_size: int = 32,
                             seed: int = 0) -> Path:
    """``oxford_flowers/jpg/image_<nnnnn>.jpg``, ``cat_to_name.json`` and the split file."""
    dataset_dir = claim_dataset_dir(Path(root) / "oxford_flowers")
    splits = write_class_images(dataset_dir / "jpg", [(c, c) for c in FLOWER_CLASSES],
                                lambda split, key, n, i: f"image_{i:05d}.jpg",
                                images_per_class, image_size, seed)
    write_split_file(splits, dataset_dir / "split_zhou_OxfordFlowers.json")
    names = {str(label + 1): name for label, name in enumerate(FLOWER_CLASSES)}
    (dataset_dir / "cat_to_name.json").write_text(json.dumps(names), encoding="utf-8")
    return dataset_dir


def make_tiny_stanford_cars(root: Path, images_per_class: int = 6, image_size: int = 32,
                            seed: int = 0) -> Path:
    """``stanford_cars/cars_train|cars_test/<nnnnn>.jpg``; split paths are relative to the
    data set folder, as in CoOp's file."""
    dataset_dir = claim_dataset_dir(Path(root) / "stanford_cars")
    folder = {"train": "cars_train", "val": "cars_train", "test": "cars_test"}
    splits = write_class_images(
        dataset_dir, [(c, c) for c in CAR_CLASSES],
        lambda split, key, n, i: os.path.join(folder[split], f"{i:05d}.jpg"),
        images_per_class, image_size, seed)
    write_split_file(splits, dataset_dir / "split_zhou_StanfordCars.json")
    (dataset_dir / "devkit").mkdir(exist_ok=True)
    return dataset_dir


def make_tiny_sun397(root: Path, images_per_class: int = 6, image_size: int = 32,
                     seed: int = 0) -> Path:
    """``sun397/SUN397/<letter>/<class>/sun_<id>.jpg``, ``ClassName.txt`` and the split file."""
    dataset_dir = claim_dataset_dir(Path(root) / "sun397")
    splits = write_class_images(dataset_dir / "SUN397", list(SUN_CLASSES.items()),
                                lambda split, key, n, i: os.path.join(key, f"sun_tiny{i:06d}.jpg"),
                                images_per_class, image_size, seed)
    write_split_file(splits, dataset_dir / "split_zhou_SUN397.json")
    write_lines(dataset_dir / "ClassName.txt", [f"/{key}" for key in SUN_CLASSES])
    return dataset_dir


def make_tiny_ucf101(root: Path, images_per_class: int = 6, image_size: int = 32,
                     seed: int = 0) -> Path:
    """``ucf101/UCF-101-midframes/<Action_Name>/v_<ActionName>_gNN_c01.jpg`` and the split."""
    dataset_dir = claim_dataset_dir(Path(root) / "ucf101")
    splits = write_class_images(
        dataset_dir / "UCF-101-midframes", [(c, c) for c in UCF_CLASSES],
        lambda split, key, n, _: os.path.join(key, f"v_{key.replace('_', '')}_g{n:02d}_c01.jpg"),
        images_per_class, image_size, seed)
    write_split_file(splits, dataset_dir / "split_zhou_UCF101.json")
    return dataset_dir


# ----------------------------------------------------------------------------------------------
# Data sets read from their own lists or folders
# ----------------------------------------------------------------------------------------------


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


# Keyed like configs/datasets/<name>.yaml.
MAKERS: dict[str, Callable[..., Path]] = {
    "caltech101": make_tiny_caltech101,
    "dtd": make_tiny_dtd,
    "eurosat": make_tiny_eurosat,
    "fgvc_aircraft": make_tiny_fgvc_aircraft,
    "food101": make_tiny_food101,
    "imagenet": make_tiny_imagenet,
    "imagenet_a": make_tiny_imagenet_a,
    "imagenet_r": make_tiny_imagenet_r,
    "imagenet_sketch": make_tiny_imagenet_sketch,
    "imagenetv2": make_tiny_imagenetv2,
    "oxford_flowers": make_tiny_oxford_flowers,
    "oxford_pets": make_tiny_oxford_pets,
    "stanford_cars": make_tiny_stanford_cars,
    "sun397": make_tiny_sun397,
    "ucf101": make_tiny_ucf101,
}


def make_tiny(name: str, root: Path, images_per_class: int = IMAGES_PER_CLASS, image_size: int = 32,
              seed: int = 0) -> Path:
    """Make one tiny data set by its config name (e.g. ``eurosat``); returns its folder."""
    if name not in MAKERS:
        raise ValueError(f"unknown data set {name!r}; choose from {', '.join(MAKERS)}")
    return MAKERS[name](Path(root), images_per_class=images_per_class,
                        image_size=image_size, seed=seed)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", choices=sorted(MAKERS) + ["all"])
    parser.add_argument("--root", required=True, type=Path, help="folder to use as DATASET.ROOT")
    parser.add_argument("--images-per-class", type=int, default=IMAGES_PER_CLASS,
                        help="half of them (at least one) are training images")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    names = sorted(MAKERS) if args.dataset == "all" else [args.dataset]
    for name in names:
        try:
            folder = make_tiny(name, args.root, args.images_per_class, args.image_size,
                               args.seed)
        except FolderNotOurs as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except OSError as error:  # a root that is a file, read-only, full
            print(f"error: cannot write tiny {name} under {args.root} "
                  f"({error.strerror or error}: {error.filename}). Give --root a folder you can "
                  "write to.", file=sys.stderr)
            return 2
        print(f"Wrote tiny {name} to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
