"""DAPT's published per-dataset learning rate and loss weights, in one place.

``configs/datasets/*.yaml`` carry the same values (a test checks they agree). A host codebase
that copies only the trainer keeps the toolbox's LR and the keys' betas, which trains
silently with other settings than DAPT's: ``stale_defaults_warning`` names DAPT's values.
"""
from __future__ import annotations

import math
from typing import Any

LR, VIS_BETA, TXT_BETA = "OPTIM.LR", "TRAINER.DAPT_INIT.VIS_BETA", "TRAINER.DAPT_INIT.TXT_BETA"

# The toolbox's OPTIM.LR default and the keys' beta defaults (config.py, as DAPT's own).
DEFAULTS: dict[str, float] = {LR: 0.0003, VIS_BETA: 0.1, TXT_BETA: 0.1}

# DATASET.NAME -> (OPTIM.LR, VIS_BETA, TXT_BETA), from DAPT's configs/datasets/*.yaml. The
# test-only ImageNet variants take ImageNet's values, as DAPT's configs do.
_IMAGENET = (2.0, 0.01, 0.01)
DAPT_VALUES: dict[str, tuple[float, float, float]] = {
    "Caltech101": (0.2, 10.0, 0.01),
    "DescribableTextures": (20.0, 100.0, 0.01),
    "EuroSAT": (20.0, 100.0, 10.0),
    "FGVCAircraft": (2.0, 100.0, 0.01),
    "Food101": (20.0, 10.0, 0.01),
    "ImageNet": _IMAGENET,
    "ImageNetA": _IMAGENET,
    "ImageNetR": _IMAGENET,
    "ImageNetSketch": _IMAGENET,
    "ImageNetV2": _IMAGENET,
    "OxfordFlowers": (0.002, 10.0, 0.01),
    "OxfordPets": (0.02, 10.0, 0.1),
    "StanfordCars": (0.002, 100.0, 0.1),
    "SUN397": (20.0, 100.0, 0.01),
    "UCF101": (20.0, 0.1, 0.1),
}


def dapt_values(dataset: str) -> dict[str, float] | None:
    """{config key: DAPT's value} for ``dataset``, or None where DAPT published none."""
    values = DAPT_VALUES.get(dataset)
    return None if values is None else dict(zip((LR, VIS_BETA, TXT_BETA), values))


def _lookup(cfg: Any, key: str) -> Any:
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def stale_defaults_warning(cfg: Any) -> str | None:
    """One warning line when a key DAPT sets for this data set still has its default value."""
    dataset = cfg.DATASET.NAME
    values = dapt_values(dataset)
    if values is None:
        return None
    stale = [key for key, dapt in values.items()
             if math.isclose(float(_lookup(cfg, key)), DEFAULTS[key])
             and not math.isclose(dapt, DEFAULTS[key])]
    if not stale:
        return None
    wanted = ", ".join(f"{key} {value:g}" for key, value in values.items())
    return (f"Warning: {' and '.join(stale)} still {'has' if len(stale) == 1 else 'have'} the "
            f"default value; DAPT trains {dataset} with {wanted}. Set them in the dataset "
            "config or on the command line (DAPT_Init's configs/datasets/*.yaml carry them).")
