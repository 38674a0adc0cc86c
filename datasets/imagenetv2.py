"""ImageNetV2 matched-frequency (test only): folders are named by label, 0 to 999, in the order
of classnames.txt."""
from pathlib import Path

from dassl.data.datasets import DATASET_REGISTRY, DatasetBase

from .fewshot import ClassFolderTestSet, DatasetError, read_classnames


@DATASET_REGISTRY.register()
class ImageNetV2(ClassFolderTestSet, DatasetBase):
    dataset_dir = "imagenetv2"
    image_folder = "imagenetv2-matched-frequency-format-val"

    def folder_classnames(self, image_root: Path, classnames_path: Path) -> dict[str, str]:
        # Folder "<label>" holds the class on line <label> of classnames.txt.
        classnames = list(read_classnames(classnames_path, "ImageNetV2").values())
        names = {str(label): classname for label, classname in enumerate(classnames)}
        missing = [folder for folder in names if not (image_root / folder).is_dir()]
        if missing:
            raise DatasetError(
                f"ImageNetV2: {len(missing)} label folder(s) missing under {image_root} "
                f"(first: {missing[0]}/) for the {len(names)} classes of classnames.txt. "
                "Fix: extract imagenetv2-matched-frequency.tar.gz again."
            )
        return names
