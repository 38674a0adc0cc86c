"""CoOp-family data sets as Dassl ``DatasetBase`` classes, registered under CoOp's names.

``import datasets`` registers all fifteen, so a config selects one by ``DATASET.NAME``. The
shared code (split files, few-shot subsets and their cache, base/new classes, input checks) is
in ``datasets.fewshot``. Where Dassl is not installed nothing is registered, so the shared
module still imports for tools that only read or write split files.
"""
import importlib.util

if importlib.util.find_spec("dassl") is not None:
    from . import (caltech101, dtd, eurosat, fgvc_aircraft, food101, imagenet,  # noqa: F401
                   imagenet_a, imagenet_r, imagenet_sketch, imagenetv2, oxford_flowers,
                   oxford_pets, stanford_cars, sun397, ucf101)
