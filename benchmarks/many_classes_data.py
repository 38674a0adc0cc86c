"""Generated ImageNet-layout data with any number of classes, for ImageNet-size train.py runs.

``<root>/imagenet/images/{train,val}/<wnid>/*.JPEG`` plus ``classnames.txt``, as
``datasets/imagenet.py`` reads it; class names of one to four words (different token lengths),
images of class-tinted noise from tools/tiny_data.py. Its accuracy means nothing.

    python benchmarks/many_classes_data.py /tmp/data --classes 1000 --image-size 224
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


from benchmarks.bench_train_step import class_names  # noqa: E402
from tools.tiny.images import class_image, write_image, write_lines


def make_imagenet_layout(root: Path, classes: int, train_per_class: int = 1,
                         val_per_class: int = 1, image_size: int = 224, seed: int = 0) -> Path:
    """Write the data set; returns ``<root>/imagenet`` (pass ``root`` as ``--root``)."""
    dataset_dir = Path(root) / "imagenet"
    rng = np.random.default_rng(seed)
    wnids = [f"n{label:08d}" for label in range(classes)]
    for label, wnid in enumerate(wnids):
        for split, count in (("train", train_per_class), ("val", val_per_class)):
            for n in range(count):
                write_image(dataset_dir / "images" / split / wnid / f"{wnid}_{split}_{n}.JPEG",
                            class_image(rng, label, classes, image_size))
    write_lines(dataset_dir / "classnames.txt",
                [f"{wnid} {name}" for wnid, name in zip(wnids, class_names(classes))])
    return dataset_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--train-per-class", type=int, default=1)
    parser.add_argument("--val-per-class", type=int, default=1)
    parser.add_argument("--image-size", type=int, default=224)
    args = parser.parse_args()
    print(make_imagenet_layout(Path(args.root), args.classes, args.train_per_class,
                               args.val_per_class, args.image_size))


if __name__ == "__main__":
    main()
