"""UCF101 (101 actions, middle video frames), CoOp's layout and split."""
from dassl.data.datasets import DATASET_REGISTRY, DatasetBase

from .fewshot import FewShotDataset


@DATASET_REGISTRY.register()
class UCF101(FewShotDataset, DatasetBase):
    dataset_dir = "ucf101"
    image_folder = "UCF-101-midframes"
    split_file = "split_zhou_UCF101.json"
