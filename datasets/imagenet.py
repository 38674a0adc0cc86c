"""ImageNet-1k: class folders under images/train and images/val, class names from CoOp's
classnames.txt. As in CoOp, val is the test set and also serves as validation."""
from pathlib import Path

from dassl.data.datasets import DATASET_REGISTRY, DatasetBase

from .fewshot import (DatasetError, FewShotDataset, Splits, class_folders, read_class_folders,
                      read_classnames, require_classnames)


def _require_val_folders(train_folders: list[str], val_folders: list[str], val_dir: Path) -> None:
    # The raw ILSVRC2012 validation archive is flat; CoOp expects it sorted into class folders.
    if val_folders != train_folders:
        raise DatasetError(
            f"ImageNet: {val_dir} must hold the same class folders as images/train/ "
            f"({len(train_folders)} found there, {len(val_folders)} here). The official "
            f"validation archive is flat: sort its images into one folder per class (e.g. with "
            f"the widely used valprep.sh), then run again."
        )


@DATASET_REGISTRY.register()
class ImageNet(FewShotDataset, DatasetBase):
    dataset_dir = "imagenet"
    image_folder = "images"

    @classmethod
    def layout(cls) -> tuple[str, ...]:
        return ("images/train/", "images/val/", "classnames.txt")

    def read_splits(self, dataset_dir: Path) -> Splits:
        classnames = read_classnames(dataset_dir / "classnames.txt", "ImageNet")
        image_root = dataset_dir / self.image_folder
        train_folders = class_folders(image_root / "train")
        val_folders = class_folders(image_root / "val")
        require_classnames("ImageNet", train_folders, classnames, dataset_dir / "classnames.txt")
        _require_val_folders(train_folders, val_folders, image_root / "val")
        print(f"Reading images from {image_root / 'train'} and {image_root / 'val'}")
        train = read_class_folders(image_root, "train", train_folders, classnames)
        test = read_class_folders(image_root, "val", val_folders, classnames)
        return Splits(train=train, val=None, test=test)
