"""The tiny data generator: exact CoOp layouts, class-dependent images, deterministic.

Needs no toolbox: it only writes files.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tools.tiny.split_file_sets import EUROSAT_CLASSES
from tools.tiny_data import MAKERS, make_tiny, make_tiny_eurosat

REPO = Path(__file__).resolve().parents[2]


def test_tiny_eurosat_has_coop_layout_and_split_file(tmp_path: Path):
    dataset_dir = make_tiny_eurosat(tmp_path, images_per_class=6, image_size=32, seed=0)
    assert dataset_dir == tmp_path / "eurosat"
    split = json.loads((dataset_dir / "split_zhou_EuroSAT.json").read_text())
    assert set(split) == {"train", "val", "test"}
    assert [len(split[s]) for s in ("train", "val", "test")] == [30, 10, 20]  # 50/20/30 of 6 x 10
    path, label, classname = split["train"][0]
    assert (path, label, classname) == ("AnnualCrop/AnnualCrop_1.jpg", 0, "Annual Crop Land")
    for folder in EUROSAT_CLASSES:
        images = sorted((dataset_dir / "2750" / folder).iterdir())
        assert [p.name for p in images] == sorted(f"{folder}_{n}.jpg" for n in range(1, 7))
    with Image.open(dataset_dir / "2750" / path) as image:
        assert image.format == "JPEG" and image.size == (32, 32) and image.mode == "RGB"


def _mean_colour(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image, dtype=np.float64).reshape(-1, 3).mean(axis=0)


def test_tiny_images_are_learnable_by_class_colour(tmp_path: Path):
    dataset_dir = make_tiny_eurosat(tmp_path, images_per_class=6)
    split = json.loads((dataset_dir / "split_zhou_EuroSAT.json").read_text())
    centroids = {}
    for path, label, _ in split["train"]:
        centroids.setdefault(label, []).append(_mean_colour(dataset_dir / "2750" / path))
    centres = {label: np.mean(colours, axis=0) for label, colours in centroids.items()}
    def nearest(colour: np.ndarray) -> int:
        return min(centres, key=lambda label: np.linalg.norm(centres[label] - colour))

    correct = sum(nearest(_mean_colour(dataset_dir / "2750" / p)) == label
                  for p, label, _ in split["test"])
    assert correct == len(split["test"])  # nearest class-mean colour classifies every test image


def test_tiny_data_is_deterministic_for_a_seed(tmp_path: Path):
    first = make_tiny("dtd", tmp_path / "a", seed=3)
    second = make_tiny("dtd", tmp_path / "b", seed=3)
    other = make_tiny("dtd", tmp_path / "c", seed=4)
    name = Path("images") / "banded" / "banded_0001.jpg"
    assert (first / name).read_bytes() == (second / name).read_bytes()
    assert (first / name).read_bytes() != (other / name).read_bytes()


@pytest.mark.parametrize("name, expected", [
    ("oxford_pets", ["images/Abyssinian_1.jpg", "annotations/trainval.txt",
                     "split_zhou_OxfordPets.json"]),
    ("dtd", ["images/banded/banded_0001.jpg", "labels/train1.txt", "imdb",
             "split_zhou_DescribableTextures.json"]),
    ("food101", ["images/apple_pie/100001.jpg", "meta/classes.txt", "split_zhou_Food101.json"]),
    ("fgvc_aircraft", ["images/1000001.jpg", "variants.txt", "images_variant_train.txt",
                       "images_variant_val.txt", "images_variant_test.txt"]),
    ("imagenet", ["images/train/n01440764/n01440764_1.JPEG",
                  "images/val/n01440764/ILSVRC2012_val_00000001.JPEG", "classnames.txt"]),
    ("imagenetv2", ["imagenetv2-matched-frequency-format-val/0/tiny0001.jpeg", "classnames.txt"]),
    ("imagenet_a", ["imagenet-a/n01440764/0.000001.jpg", "imagenet-a/README.txt"]),
])
def test_tiny_layouts_match_the_real_ones(tmp_path: Path, name, expected):
    dataset_dir = make_tiny(name, tmp_path)
    for entry in expected:
        assert (dataset_dir / entry).exists(), entry


def test_fgvc_lists_hold_image_id_then_variant(tmp_path: Path):
    dataset_dir = make_tiny("fgvc_aircraft", tmp_path, images_per_class=6)
    lines = (dataset_dir / "images_variant_test.txt").read_text().splitlines()
    assert "1000005 707-320" in lines  # class 0: ids 1-3 train, 4 val, 5-6 test
    assert any(line.endswith(" Cessna 172") for line in lines)


def test_too_few_images_per_class_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="at least 3"):
        make_tiny_eurosat(tmp_path, images_per_class=2)


def test_cli_writes_eurosat(tmp_path: Path):
    result = subprocess.run([sys.executable, str(REPO / "tools" / "tiny_data.py"), "eurosat",
                             "--root", str(tmp_path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "eurosat" / "split_zhou_EuroSAT.json").is_file()
    assert "Wrote tiny eurosat" in result.stdout


def test_every_config_name_has_a_maker():
    configs = {p.stem for p in (REPO / "configs" / "datasets").glob("*.yaml")}
    assert configs == set(MAKERS)


def test_the_default_tiny_eurosat_has_four_training_images_a_class(tmp_path: Path):
    # The README's examples and TRIAL=1 sweeps ask for up to 4 shots: no class may fall short.
    dataset_dir = make_tiny_eurosat(tmp_path)
    split = json.loads((dataset_dir / "split_zhou_EuroSAT.json").read_text())
    per_class = [sum(1 for _, label, _ in split["train"] if label == c) for c in range(10)]
    assert per_class == [4] * 10


def test_tiny_data_and_the_demos_preparation_print_no_warnings(tmp_path: Path):
    # Both import the toolbox (through datasets/), whose dependencies warn about pkg_resources
    # and try to reach PyPI; a newcomer's first commands should print only what they did.
    import os
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "OUTDATED_IGNORE")}
    for command in (["tools/tiny_data.py", "eurosat", "--root", str(tmp_path / "data")],
                    ["tools/demo.py", "--prepare-only", "--workdir", str(tmp_path / "demo")]):
        result = subprocess.run([sys.executable, *command], cwd=REPO, env=env,
                                capture_output=True, text=True, check=False, timeout=120)
        assert result.returncode == 0 and result.stderr == "", result.stderr
    assert (tmp_path / "demo" / "small_clip.pt").is_file()
    assert (tmp_path / "demo" / "data" / "eurosat" / "split_zhou_EuroSAT.json").is_file()
