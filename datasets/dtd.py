"""Describable Textures (DTD, 47 textures), CoOp's layout and split."""
from dassl.data.datasets import DATASET_REGISTRY, DatasetBase

from .fewshot import FewShotDataset


@DATASET_REGISTRY.register()
class DescribableTextures(FewShotDataset, DatasetBase):
    dataset_dir = "dtd"
    image_folder = "images"
    split_file = "split_zhou_DescribableTextures.json"
