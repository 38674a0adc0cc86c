"""Data set classes built the way Dassl builds them, on tiny data in the real layouts."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.support.toolbox import HAVE_TOOLBOX, requires_toolbox
from tools.tiny_data import make_tiny

pytestmark = requires_toolbox

if HAVE_TOOLBOX:
    from dassl.config import get_cfg_default
    from dassl.data.datasets import DatasetBase, Datum, build_dataset
    from dassl.utils import set_random_seed

    import datasets.classes  # noqa: F401  (registers the data set classes)
    from datasets.fewshot import DatasetError, fewshot_cache_path


def make_cfg(root: Path, name: str, shots: int = -1, seed: int = 1, subsample: str = "all"):
    cfg = get_cfg_default()
    cfg.DATASET.ROOT = str(root)
    cfg.DATASET.NAME = name
    cfg.DATASET.NUM_SHOTS = shots
    cfg.SEED = seed
    cfg.DATASET.SUBSAMPLE_CLASSES = subsample  # added by the trainer's config function in train.py
    return cfg


def build(root: Path, name: str, shots: int = -1, seed: int = 1, subsample: str = "all",
          reseed: bool = True):
    """As train.py does: seed the global RNGs, then let Dassl build the data set."""
    if reseed:
        set_random_seed(seed)
    return build_dataset(make_cfg(root, name, shots, seed, subsample))


def impaths(items) -> list[str]:
    return [item.impath for item in items]


def labels(items) -> set[int]:
    return {item.label for item in items}


def independent_draw(split_items, shots: int, seed: int, val_items=None):
    """Dassl's own sampler and seeding, called directly on the full split, as CoOp's classes do."""
    set_random_seed(seed)
    sampler = DatasetBase.__new__(DatasetBase)
    train = sampler.generate_fewshot_dataset(split_items, num_shots=shots)
    val = None if val_items is None else sampler.generate_fewshot_dataset(
        val_items, num_shots=min(shots, 4))
    return train, val


def split_datums(dataset_dir: Path, image_folder: str, split_file: str, split: str):
    data = json.loads((dataset_dir / split_file).read_text())
    return [Datum(impath=str(dataset_dir / image_folder / path), label=label, classname=name)
            for path, label, name in data[split]]


@pytest.fixture
def eurosat(tmp_path: Path) -> Path:
    make_tiny("eurosat", tmp_path, images_per_class=10)  # 5 train, 2 val, 3 test per class
    return tmp_path


# ----------------------------------------------------------------------------------------------
# Splits and class names as each layout defines them
# ----------------------------------------------------------------------------------------------


def test_eurosat_reads_split_file_with_coop_class_names(eurosat: Path):
    dataset = build(eurosat, "EuroSAT")
    split = json.loads((eurosat / "eurosat" / "split_zhou_EuroSAT.json").read_text())
    assert [len(dataset.train_x), len(dataset.val), len(dataset.test)] == \
        [len(split["train"]), len(split["val"]), len(split["test"])]
    assert dataset.classnames[0] == "Annual Crop Land"
    assert dataset.classnames[9] == "Sea or Lake"
    assert dataset.num_classes == 10
    assert dataset.train_x[0].impath == str(eurosat / "eurosat" / "2750" / split["train"][0][0])


def test_eurosat_maps_raw_folder_names_in_a_split_file(eurosat: Path):
    split_path = eurosat / "eurosat" / "split_zhou_EuroSAT.json"
    split = json.loads(split_path.read_text())
    for part in split.values():
        for item in part:
            item[2] = item[0].split("/")[0]  # e.g. "AnnualCrop"
    split_path.write_text(json.dumps(split))
    assert build(eurosat, "EuroSAT").classnames[2] == "Herbaceous Vegetation Land"


@pytest.mark.parametrize("maker, name, expected", [
    ("oxford_pets", "OxfordPets", ["abyssinian", "american_bulldog", "american_pit_bull_terrier",
                                   "basset_hound", "beagle"]),
    ("dtd", "DescribableTextures", ["banded", "blotchy", "braided", "bubbly", "bumpy"]),
    ("food101", "Food101", ["apple_pie", "baby_back_ribs", "baklava", "beef_carpaccio"]),
    ("fgvc_aircraft", "FGVCAircraft", ["707-320", "727-200", "A300B4", "Cessna 172", "DC-10"]),
    ("caltech101", "Caltech101", ["accordion", "airplane", "anchor", "face"]),
    ("sun397", "SUN397", ["abbey", "airport terminal", "shop bakery", "bathroom"]),
    ("stanford_cars", "StanfordCars", ["2000 AM General Hummer SUV", "2012 Acura RL Sedan",
                                       "2012 Acura TL Sedan", "2007 Acura TL Type-S"]),
])
def test_split_layouts_give_real_class_names_and_all_images(tmp_path, maker, name, expected):
    make_tiny(maker, tmp_path, images_per_class=6)  # 3 train, 1 val, 2 test per class
    dataset = build(tmp_path, name)
    assert dataset.classnames == expected
    n = len(expected)
    assert (len(dataset.train_x), len(dataset.val), len(dataset.test)) == (3 * n, n, 2 * n)
    assert all(Path(item.impath).is_file() for item in dataset.train_x + dataset.test)


def test_fgvc_labels_follow_variants_txt(tmp_path):
    dataset_dir = make_tiny("fgvc_aircraft", tmp_path)
    variants = (dataset_dir / "variants.txt").read_text().splitlines()
    dataset = build(tmp_path, "FGVCAircraft")
    assert all(variants[item.label] == item.classname for item in dataset.test)


def test_imagenet_reads_class_folders_and_validates_on_val(tmp_path):
    make_tiny("imagenet", tmp_path, images_per_class=6)
    dataset = build(tmp_path, "ImageNet")
    assert dataset.classnames == ["tench", "goldfish", "great white shark", "tiger shark",
                                  "hammerhead shark"]
    assert len(dataset.train_x) == 30 and len(dataset.test) == 10
    assert dataset.val is dataset.test  # CoOp: the ImageNet val set is the test set
    assert all("/images/val/" in item.impath for item in dataset.test)


@pytest.mark.parametrize("maker, name", [("imagenetv2", "ImageNetV2"),
                                         ("imagenet_sketch", "ImageNetSketch"),
                                         ("imagenet_a", "ImageNetA"), ("imagenet_r", "ImageNetR")])
def test_imagenet_variants_are_test_only_with_imagenet_names(tmp_path, maker, name):
    make_tiny(maker, tmp_path, images_per_class=3)
    dataset = build(tmp_path, name, shots=4)
    assert dataset.classnames[:2] == ["tench", "goldfish"]
    assert len(dataset.test) == 15 and dataset.train_x == dataset.test


@pytest.mark.parametrize("maker, name", [("oxford_flowers", "OxfordFlowers"),
                                         ("ucf101", "UCF101")])
def test_other_split_layouts_build_few_shot(tmp_path, maker, name):
    make_tiny(maker, tmp_path, images_per_class=6)
    dataset = build(tmp_path, name, shots=2)
    assert len(dataset.train_x) == 2 * dataset.num_classes
    assert len(dataset.val) == dataset.num_classes  # min(K, 4) = 2 asked, 1 image per class


# ----------------------------------------------------------------------------------------------
# Few-shot subsets: CoOp's draw, cached
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shots, seed", [(1, 1), (2, 3), (4, 2)])
def test_fewshot_subset_equals_dassl_draw_for_the_seed(eurosat: Path, shots, seed):
    dataset = build(eurosat, "EuroSAT", shots=shots, seed=seed)
    dataset_dir = eurosat / "eurosat"
    train, val = independent_draw(
        split_datums(dataset_dir, "2750", "split_zhou_EuroSAT.json", "train"), shots, seed,
        split_datums(dataset_dir, "2750", "split_zhou_EuroSAT.json", "val"))
    assert impaths(dataset.train_x) == impaths(train)
    assert impaths(dataset.val) == impaths(val)
    assert len(dataset.train_x) == 10 * shots


def test_imagenet_fewshot_draws_train_only(tmp_path: Path):
    make_tiny("imagenet", tmp_path, images_per_class=6)
    dataset = build(tmp_path, "ImageNet", shots=2, seed=5)
    full = build(tmp_path, "ImageNet", shots=-1)
    train, _ = independent_draw(full.train_x, 2, 5)
    assert impaths(dataset.train_x) == impaths(train)
    assert len(dataset.test) == len(full.test)


def test_cache_is_reused_whatever_the_global_random_state(eurosat: Path, capsys):
    first = build(eurosat, "EuroSAT", shots=2, seed=1)
    cache = fewshot_cache_path(eurosat / "eurosat", 2, 1, "all")
    assert cache.is_file()
    random.seed(12345)  # a redraw now would pick other images
    again = build(eurosat, "EuroSAT", shots=2, seed=1, reseed=False)
    assert impaths(again.train_x) == impaths(first.train_x)
    assert "Loading few-shot subset from" in capsys.readouterr().out
    cache.unlink()
    random.seed(12345)
    redrawn = build(eurosat, "EuroSAT", shots=2, seed=1, reseed=False)
    assert impaths(redrawn.train_x) != impaths(first.train_x)  # so reuse above was the cache


def test_cache_is_plain_json_holding_its_key(eurosat: Path):
    build(eurosat, "EuroSAT", shots=2, seed=1, subsample="base")
    cache_dir = eurosat / "eurosat" / "split_fewshot"
    data = json.loads(fewshot_cache_path(eurosat / "eurosat", 2, 1, "base").read_text())
    assert data["key"]["num_shots"] == 2 and data["key"]["seed"] == 1
    assert data["key"]["subsample"] == "base" and data["key"]["val_shots"] == 2
    assert len(data["train"]) == 10  # 5 base classes x 2 shots
    assert not [p for p in cache_dir.iterdir() if p.name.startswith(".tmp-")]


def test_different_shots_seed_or_subset_use_different_caches(eurosat: Path):
    settings = [(2, 1, "all"), (4, 1, "all"), (2, 2, "all"), (2, 1, "new")]
    for shots, seed, subsample in settings:
        build(eurosat, "EuroSAT", shots=shots, seed=seed, subsample=subsample)
    files = {fewshot_cache_path(eurosat / "eurosat", *s) for s in settings}
    assert len(files) == 4 and all(f.is_file() for f in files)
    a = json.loads(fewshot_cache_path(eurosat / "eurosat", 2, 1, "all").read_text())
    b = json.loads(fewshot_cache_path(eurosat / "eurosat", 2, 2, "all").read_text())
    assert a["train"] != b["train"]


def test_cache_with_a_different_key_is_ignored_and_redrawn(eurosat: Path, capsys):
    dataset_dir = eurosat / "eurosat"
    build(eurosat, "EuroSAT", shots=2, seed=1)
    # A seed-1 subset sitting under the seed-2 name must not be taken for seed 2.
    fewshot_cache_path(dataset_dir, 2, 2, "all").write_text(
        fewshot_cache_path(dataset_dir, 2, 1, "all").read_text())
    dataset = build(eurosat, "EuroSAT", shots=2, seed=2)
    out = capsys.readouterr().out
    assert "Ignoring few-shot cache" in out and "seed: 1 -> 2" in out
    train, _ = independent_draw(
        split_datums(dataset_dir, "2750", "split_zhou_EuroSAT.json", "train"), 2, 2)
    assert impaths(dataset.train_x) == impaths(train)
    stored = json.loads(fewshot_cache_path(dataset_dir, 2, 2, "all").read_text())
    assert stored["key"]["seed"] == 2  # rewritten for the right key


def test_cache_is_redrawn_when_the_split_file_changes(eurosat: Path, capsys):
    build(eurosat, "EuroSAT", shots=2, seed=1)
    split_path = eurosat / "eurosat" / "split_zhou_EuroSAT.json"
    split = json.loads(split_path.read_text())
    split["train"] = split["train"][1:]
    split_path.write_text(json.dumps(split))
    build(eurosat, "EuroSAT", shots=2, seed=1)
    assert "source_sha256" in capsys.readouterr().out


def test_truncated_cache_is_ignored_and_redrawn(eurosat: Path, capsys):
    first = build(eurosat, "EuroSAT", shots=2, seed=1)
    cache = fewshot_cache_path(eurosat / "eurosat", 2, 1, "all")
    cache.write_text(cache.read_text()[:50])
    again = build(eurosat, "EuroSAT", shots=2, seed=1)
    assert "Ignoring few-shot cache" in capsys.readouterr().out
    assert impaths(again.train_x) == impaths(first.train_x)
    json.loads(cache.read_text())  # rewritten whole


def test_unfixed_seed_draws_without_caching(eurosat: Path):
    build(eurosat, "EuroSAT", shots=2, seed=-1, reseed=False)
    assert not list((eurosat / "eurosat" / "split_fewshot").glob("*.json"))


# ----------------------------------------------------------------------------------------------
# Base / new classes
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("maker, name, n_base, n_new", [("eurosat", "EuroSAT", 5, 5),
                                                        ("dtd", "DescribableTextures", 3, 2)])
@pytest.mark.parametrize("shots", [-1, 2])
def test_base_and_new_split_classes_like_cocoop(tmp_path, maker, name, n_base, n_new, shots):
    make_tiny(maker, tmp_path)
    every = build(tmp_path, name, shots=shots)
    base = build(tmp_path, name, shots=shots, subsample="base")
    new = build(tmp_path, name, shots=shots, subsample="new")
    assert base.classnames == every.classnames[:n_base]
    assert new.classnames == every.classnames[n_base:]
    assert len(new.classnames) == n_new
    for part, count in ((base, n_base), (new, n_new)):
        for split in (part.train_x, part.val, part.test):
            assert labels(split) == set(range(count))  # relabelled from 0
    # Base/new few-shot subsets are the all-class subset restricted to those classes.
    assert set(impaths(base.train_x)) | set(impaths(new.train_x)) == set(impaths(every.train_x))
    assert not set(impaths(base.test)) & set(impaths(new.test))


# ----------------------------------------------------------------------------------------------
# Bad input: one clear message naming the problem and the fix
# ----------------------------------------------------------------------------------------------


def test_missing_data_folder_names_layout_and_prepare_command(tmp_path: Path):
    with pytest.raises(DatasetError) as error:
        build(tmp_path, "EuroSAT", shots=1)
    message = str(error.value)
    assert "eurosat/" in message and "2750/" in message and "split_zhou_EuroSAT.json" in message
    assert f"python tools/prepare_data.py --root {tmp_path} --dataset EuroSAT" in message


def test_unrenamed_zenodo_folder_is_reported_as_wrong_layout(eurosat: Path):
    (eurosat / "eurosat" / "2750").rename(eurosat / "eurosat" / "EuroSAT_RGB")
    with pytest.raises(DatasetError, match=r"(?s)Missing:.*2750/.*prepare_data.py"):
        build(eurosat, "EuroSAT", shots=1)


def test_empty_root_is_an_error_not_the_working_directory():
    with pytest.raises(DatasetError, match="DATASET.ROOT is empty"):
        build_dataset(make_cfg("", "EuroSAT"))


def test_truncated_split_file_is_named(eurosat: Path):
    split_path = eurosat / "eurosat" / "split_zhou_EuroSAT.json"
    split_path.write_text(split_path.read_text()[:200])
    with pytest.raises(DatasetError) as error:
        build(eurosat, "EuroSAT", shots=1)
    assert str(split_path) in str(error.value) and "corrupt or truncated" in str(error.value)


def test_split_file_with_wrong_entries_is_named(eurosat: Path):
    split_path = eurosat / "eurosat" / "split_zhou_EuroSAT.json"
    split_path.write_text(json.dumps({"train": [["a.jpg", 0]], "val": [], "test": []}))
    with pytest.raises(DatasetError, match=r"'train' entry 0"):
        build(eurosat, "EuroSAT")


def test_missing_listed_image_is_named_before_any_loader_runs(eurosat: Path):
    missing = eurosat / "eurosat" / "2750" / "Forest" / "Forest_9.jpg"
    missing.unlink()
    with pytest.raises(DatasetError) as error:
        build(eurosat, "EuroSAT", shots=1)
    assert str(missing) in str(error.value) and "1 image(s)" in str(error.value)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_undecodable_fewshot_image_is_named(eurosat: Path, damage):
    split = json.loads((eurosat / "eurosat" / "split_zhou_EuroSAT.json").read_text())
    image_dir = eurosat / "eurosat" / "2750"
    forest_train = [image_dir / p for p, label, _ in split["train"] if label == 1]
    for path in forest_train:  # whichever Forest image is drawn is bad
        data = path.read_bytes()
        path.write_bytes(b"not an image" if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(DatasetError) as error:
        build(eurosat, "EuroSAT", shots=1)
    message = str(error.value)
    assert "cannot be decoded" in message and "/2750/Forest/Forest_" in message


def test_class_with_fewer_images_than_shots_uses_all_and_warns(eurosat: Path, capsys):
    dataset = build(eurosat, "EuroSAT", shots=8)  # 5 training images per class
    out = capsys.readouterr().out
    assert "class 'Forest' (label 1) has 5 training image(s), fewer than the 8 shots" in out
    per_class = [sum(item.label == c for item in dataset.train_x) for c in range(10)]
    assert per_class == [5] * 10  # all of them, none repeated
    assert len(set(impaths(dataset.train_x))) == 50


def test_bad_subsample_value_names_the_choices(eurosat: Path):
    with pytest.raises(DatasetError, match="valid values are all, base, new"):
        build(eurosat, "EuroSAT", subsample="half")


def test_host_config_without_subsample_key_uses_all_classes(eurosat: Path):
    cfg = make_cfg(eurosat, "EuroSAT", shots=1)
    del cfg.DATASET["SUBSAMPLE_CLASSES"]
    set_random_seed(1)
    assert build_dataset(cfg).num_classes == 10


def test_test_only_set_refuses_base_new_split(tmp_path: Path):
    make_tiny("imagenet_a", tmp_path, images_per_class=3)
    with pytest.raises(DatasetError, match="test-only"):
        build(tmp_path, "ImageNetA", subsample="base")


def test_imagenet_flat_val_folder_is_explained(tmp_path: Path):
    dataset_dir = make_tiny("imagenet", tmp_path)
    val = dataset_dir / "images" / "val"
    for image in list(val.rglob("*.JPEG")):
        image.rename(val / image.name)
    for folder in [p for p in val.iterdir() if p.is_dir()]:
        folder.rmdir()
    with pytest.raises(DatasetError, match="validation archive is flat"):
        build(tmp_path, "ImageNet")


def test_imagenet_variant_folder_missing_from_classnames_is_named(tmp_path: Path):
    dataset_dir = make_tiny("imagenet_r", tmp_path, images_per_class=3)
    lines = (dataset_dir / "classnames.txt").read_text().splitlines()
    (dataset_dir / "classnames.txt").write_text("\n".join(lines[1:]) + "\n")
    with pytest.raises(DatasetError, match="n01440764"):
        build(tmp_path, "ImageNetR")
