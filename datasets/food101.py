"""Food-101 (101 dishes), CoOp's layout and split."""
from dassl.data.datasets import DATASET_REGISTRY, DatasetBase

from .fewshot import FewShotDataset


@DATASET_REGISTRY.register()
class Food101(FewShotDataset, DatasetBase):
    dataset_dir = "food-101"
    image_folder = "images"
    split_file = "split_zhou_Food101.json"
