"""FGVC-Aircraft 2013b (100 variants): CoOp reads the data set's own split lists, no split_zhou
file."""
from pathlib import Path

from dassl.data.datasets import DATASET_REGISTRY, DatasetBase

from .fewshot import DatasetError, FewShotDataset, Record, Splits

SPLIT_LISTS = {split: f"images_variant_{split}.txt" for split in ("train", "val", "test")}


def _read_variant_list(path: Path, labels: dict[str, int]) -> list[Record]:
    # Each line is '<image id> <variant name, may hold spaces>'.
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        image_id, _, variant = line.strip().partition(" ")
        if not line.strip():
            continue
        if variant not in labels:
            raise DatasetError(
                f"FGVCAircraft: {path} line {number} is {line!r}: the variant is not in "
                f"variants.txt. Fix: extract data/ of fgvc-aircraft-2013b.tar.gz again."
            )
        records.append(Record(f"{image_id}.jpg", labels[variant], variant))
    return records


@DATASET_REGISTRY.register()
class FGVCAircraft(FewShotDataset, DatasetBase):
    dataset_dir = "fgvc_aircraft"
    image_folder = "images"

    @classmethod
    def layout(cls) -> tuple[str, ...]:
        return ("images/", "variants.txt") + tuple(SPLIT_LISTS.values())

    def read_splits(self, dataset_dir: Path) -> Splits:
        variants = (dataset_dir / "variants.txt").read_text(encoding="utf-8").splitlines()
        names = [variant.strip() for variant in variants if variant.strip()]
        labels = {variant: label for label, variant in enumerate(names)}
        print(f"Reading split from {dataset_dir / SPLIT_LISTS['train']} (and val, test)")
        return Splits(*(_read_variant_list(dataset_dir / SPLIT_LISTS[split], labels)
                        for split in ("train", "val", "test")))
