"""Base / new classes, CoCoOp's protocol: ``DATASET.SUBSAMPLE_CLASSES`` and keeping the first
or second half of the classes, relabelled from 0."""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

# One list of class subsets for the repository (the drop-in unit carries it).
from trainers.dapt_init.config import SUBSAMPLE_CHOICES

from .splits import DatasetError, Record


def subsample_setting(cfg: Any) -> str:
    """``DATASET.SUBSAMPLE_CLASSES``, "all" where the host config lacks the key."""
    value = str(getattr(cfg.DATASET, "SUBSAMPLE_CLASSES", "all"))
    if value not in SUBSAMPLE_CHOICES:
        raise DatasetError(
            f"DATASET.SUBSAMPLE_CLASSES is {value!r}; valid values are "
            f"{', '.join(SUBSAMPLE_CHOICES)} (all classes, the first half, the second half)."
        )
    return value


def subsample_classes(
    subsample: str, *splits: list[Record] | None
) -> list[list[Record] | None]:
    """Keep the base (first ceil(n/2) sorted labels of the first split) or new classes, relabelled
    from 0, as CoCoOp does; ``all`` returns the splits unchanged; None splits stay None."""
    if subsample == "all":
        return list(splits)
    relabel = _subsample_relabel(subsample, splits[0])
    labels = {record.label for record in splits[0] or []}
    print(f"Subsampling {subsample} classes: {len(relabel)} of {len(labels)}")
    return [None if split is None else _keep_classes(split, relabel) for split in splits]


def _subsample_relabel(subsample: str, records: Sequence[Record] | None) -> dict[int, int]:
    """Old label -> new label of the base or new half (CoCoOp's rule)."""
    labels = sorted({record.label for record in records or []})
    half = math.ceil(len(labels) / 2)
    selected = labels[:half] if subsample == "base" else labels[half:]
    return {label: new_label for new_label, label in enumerate(selected)}


def _keep_classes(records: list[Record], relabel: Mapping[int, int]) -> list[Record]:
    return [record._replace(label=relabel[record.label])
            for record in records if record.label in relabel]

