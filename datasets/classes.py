"""Importing this module registers the fifteen CoOp-family data set classes with Dassl, under
CoOp's names, so a config selects one by ``DATASET.NAME`` (train.py imports it)."""
from . import (caltech101, dtd, eurosat, fgvc_aircraft, food101, imagenet,  # noqa: F401
               imagenet_a, imagenet_r, imagenet_sketch, imagenetv2, oxford_flowers,
               oxford_pets, stanford_cars, sun397, ucf101)
