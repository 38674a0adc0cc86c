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
import sys
import warnings
from pathlib import Path
from typing import Callable, Sequence

# The shared split-file code lives in
# datasets/, the marker, the images and the per-layout makers in tools/tiny/.
# Importing datasets imports the toolbox, whose dependency 'outdated' warns that pkg_resources
# is deprecated: not the user's concern. A lasting filter, not catch_warnings(): leaving that
# block would also drop the filter 'outdated' sets on import for its own (offline) warnings.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
from tools.tiny.list_and_folder_sets import (  # noqa: E402
    make_tiny_fgvc_aircraft, make_tiny_imagenet, make_tiny_imagenet_a, make_tiny_imagenet_r,
    make_tiny_imagenet_sketch, make_tiny_imagenetv2)
from tools.tiny.images import IMAGES_PER_CLASS  # noqa: E402
from tools.tiny.marker import FolderNotOurs  # noqa: E402
from tools.tiny.split_file_sets import (  # noqa: E402
    make_tiny_caltech101, make_tiny_dtd, make_tiny_eurosat, make_tiny_food101,
    make_tiny_oxford_flowers, make_tiny_oxford_pets, make_tiny_stanford_cars, make_tiny_sun397,
    make_tiny_ucf101)

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
    from study.entry import run_main

    sys.exit(run_main(main))
