"""ImageNet-R (test only, 200 ImageNet classes): one folder per class under imagenet-r/."""
from dassl.data.datasets import DATASET_REGISTRY, DatasetBase

from .fewshot import ClassFolderTestSet


@DATASET_REGISTRY.register()
class ImageNetR(ClassFolderTestSet, DatasetBase):
    dataset_dir = "imagenet-rendition"
    image_folder = "imagenet-r"
