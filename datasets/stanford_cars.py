"""Stanford Cars (196 models), CoOp's layout and split."""
from dassl.data.datasets import DATASET_REGISTRY, DatasetBase

from .fewshot import FewShotDataset


@DATASET_REGISTRY.register()
class StanfordCars(FewShotDataset, DatasetBase):
    dataset_dir = "stanford_cars"
    image_folder = ""  # split paths start with cars_train/ or cars_test/
    split_file = "split_zhou_StanfordCars.json"

    @classmethod
    def layout(cls) -> tuple[str, ...]:
        return ("cars_train/", "cars_test/", cls.split_file)
