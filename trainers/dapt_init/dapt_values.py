"""DAPT's published per-dataset learning rate and loss weights, in one place.

``configs/datasets/*.yaml`` carry the same values (a test checks they agree). A host codebase
that copies only the trainer keeps the toolbox's LR and the keys' betas, and would train with
other settings than DAPT's: ``apply_dapt_values`` gives such a run DAPT's values for every key
that no config file and no command line set (the trainer calls it before anything loads), and
says so in one line. A value the command sets, even the toolbox's default, is kept.
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


def apply_dapt_values(cfg: Any) -> str | None:
    """Set DAPT's published value of each key that nothing set (``config.set_keys``) and that
    still holds the default, on a data set DAPT published values for; one line saying what was
    set, or None. ``cfg`` must be unfrozen; a second call changes nothing."""
    from .config import set_keys  # config imports nothing of this module

    dataset = cfg.DATASET.NAME
    values = dapt_values(dataset)
    if values is None:
        return None
    chosen = set_keys(cfg)
    applied = {}
    for key, dapt in values.items():
        current = _lookup(cfg, key)
        if (key in chosen or isinstance(current, bool) or not isinstance(current, (int, float))
                or not math.isclose(float(current), DEFAULTS[key])
                or math.isclose(dapt, DEFAULTS[key])):
            continue
        node = cfg
        *groups, leaf = key.split(".")
        for part in groups:
            node = node[part]
        node[leaf] = dapt
        applied[key] = dapt
    if not applied:
        return None
    wanted = " ".join(f"{key} {value:g}" for key, value in applied.items())
    return (f"DAPT_Init: {dataset} trains with DAPT's published {wanted} (no config file and "
            "no command-line value set them; give another value on the command line or in "
            "the dataset config to train with it)")
