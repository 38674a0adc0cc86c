"""Oxford Flowers-102, CoOp's layout and split (class names come from the split file)."""
from dassl.data.datasets import DATASET_REGISTRY, DatasetBase

from .fewshot import FewShotDataset


@DATASET_REGISTRY.register()
class OxfordFlowers(FewShotDataset, DatasetBase):
    dataset_dir = "oxford_flowers"
    image_folder = "jpg"
    split_file = "split_zhou_OxfordFlowers.json"
