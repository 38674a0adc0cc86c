"""ImageNet-A (test only, 200 ImageNet classes): one folder per class under imagenet-a/."""
from dassl.data.datasets import DATASET_REGISTRY, DatasetBase

from .fewshot import ClassFolderTestSet


@DATASET_REGISTRY.register()
class ImageNetA(ClassFolderTestSet, DatasetBase):
    dataset_dir = "imagenet-adversarial"
    image_folder = "imagenet-a"
