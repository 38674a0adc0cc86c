"""Tiny data sets read through a CoOp split file (``split_zhou_*.json``): EuroSAT, Oxford Pets,
DTD, Food-101, Caltech-101, Oxford Flowers, Stanford Cars, SUN397 and UCF101, each with the
extra lists or folders the real data set ships."""
from __future__ import annotations

import json
import os
from pathlib import Path

from datasets.fewshot import Record, write_split_file

from .images import IMAGES_PER_CLASS, SPLITS, write_class_images, write_lines
from .marker import claim_dataset_dir

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
CALTECH_CLASSES = {"accordion": "accordion", "airplanes": "airplane", "anchor": "anchor",
                   "Faces": "face"}
FLOWER_CLASSES = ["pink primrose", "hard-leaved pocket orchid", "canterbury bells", "sweet pea"]
CAR_CLASSES = ["2000 AM General Hummer SUV", "2012 Acura RL Sedan", "2012 Acura TL Sedan",
               "2007 Acura TL Type-S"]
SUN_CLASSES = {"a/abbey": "abbey", "a/airport_terminal": "airport terminal",
               "b/bakery/shop": "shop bakery", "b/bathroom": "bathroom"}
UCF_CLASSES = ["Apply_Eye_Makeup", "Apply_Lipstick", "Archery", "Baby_Crawling"]


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

