"""Caltech-101 (100 object classes; CoOp drops BACKGROUND_Google and Faces_easy), CoOp's layout
and split."""
from dassl.data.datasets import DATASET_REGISTRY, DatasetBase

from .fewshot import FewShotDataset

# CoOp's class-name rule; its split file already holds the new names.
NEW_CLASSNAMES = {
    "airplanes": "airplane",
    "Faces": "face",
    "Leopards": "leopard",
    "Motorbikes": "motorbike",
}


@DATASET_REGISTRY.register()
class Caltech101(FewShotDataset, DatasetBase):
    dataset_dir = "caltech-101"
    image_folder = "101_ObjectCategories"
    split_file = "split_zhou_Caltech101.json"
    class_renames = NEW_CLASSNAMES
