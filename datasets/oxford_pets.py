"""Oxford-IIIT Pets (37 breeds), CoOp's layout and split."""
from dassl.data.datasets import DATASET_REGISTRY, DatasetBase

from .fewshot import FewShotDataset


@DATASET_REGISTRY.register()
class OxfordPets(FewShotDataset, DatasetBase):
    dataset_dir = "oxford_pets"
    image_folder = "images"
    split_file = "split_zhou_OxfordPets.json"
