"""SUN397 (397 scenes), CoOp's layout and split."""
from dassl.data.datasets import DATASET_REGISTRY, DatasetBase

from .fewshot import FewShotDataset


@DATASET_REGISTRY.register()
class SUN397(FewShotDataset, DatasetBase):
    dataset_dir = "sun397"
    image_folder = "SUN397"
    split_file = "split_zhou_SUN397.json"
