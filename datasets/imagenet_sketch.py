"""ImageNet-Sketch (test only): one folder per ImageNet class under images/."""
from dassl.data.datasets import DATASET_REGISTRY, DatasetBase

from .fewshot import ClassFolderTestSet


@DATASET_REGISTRY.register()
class ImageNetSketch(ClassFolderTestSet, DatasetBase):
    dataset_dir = "imagenet-sketch"
    image_folder = "images"
