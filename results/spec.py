"""A run's own record of what it is: ``result.json``'s "spec" -> RunKey.

train.py records {"kind", "dataset", "init", "vis_init", "config", "shots", "seed", "tag",
"grid"} in result.json. Where that record is there it places the run, whatever the folders
are called (a renamed or moved tree still lands in the right cell); the folder names
(layout.py) place only runs without one (CoOp-family trees, older DAPT_Init runs).
"""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import PurePath
from typing import Any, Mapping

from trainers.dapt_init.config import INIT_METHODS

from .layout import RunKey, canonical_dataset, normalized_dataset

SPEC_KEY = "spec"
# spec "kind" -> (RunKey kind, base2new split)
SPEC_KINDS = {
    "train": ("fewshot", None),
    "eval": ("dg", None),
    "base2new_train": ("base2new", "base"),
    "base2new_test": ("base2new", "new"),
}
DEFAULT_TRAINER = "DAPT_Init"  # the trainer that writes specs, when the record names none
# RunKey fields a spec decides; a folder saying otherwise is noted (the spec is used).
COMPARED_FIELDS = ("kind", "dataset", "init", "vis_init", "config", "shots", "seed", "split",
                   "tag")


class SpecError(ValueError):
    """A "spec" in result.json that cannot place the run (then the folder names do)."""


def grid_items(grid: Any) -> tuple[tuple[str, str], ...]:
    """{"OPTIM.MAX_EPOCH": 50} -> (("OPTIM.MAX_EPOCH", "50"),): hashable, in key order."""
    if grid is None:
        return ()
    if not isinstance(grid, Mapping):
        raise SpecError(f"grid is {type(grid).__name__}, not an object")
    # Strings as they are, other values as JSON text (lists, numbers, booleans).
    return tuple(sorted((str(key), value if isinstance(value, str) else json.dumps(value))
                        for key, value in grid.items()))


def grid_text(grid: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{key}={value}" for key, value in grid)


def _whole(spec: Mapping[str, Any], name: str) -> int:
    value = spec.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{name} is {value!r}, not a whole number")
    return value


def _text(spec: Mapping[str, Any], name: str, choices: tuple[str, ...] | None = None,
          optional: bool = False) -> str | None:
    value = spec.get(name)
    if value is None or value == "":
        if optional:
            return None
        raise SpecError(f"{name} is missing")
    if not isinstance(value, str) or (choices is not None and value not in choices):
        wanted = f"one of {', '.join(choices)}" if choices else "a string"
        raise SpecError(f"{name} is {value!r}, not {wanted}")
    return value


def key_from_spec(spec: Any, trainer: str | None = None,
                  folder_key: RunKey | None = None) -> RunKey:
    """RunKey of a recorded spec (raises SpecError). ``trainer`` is the record's; the folder
    key, when the path has one, gives only what a spec does not record (the trainer when the
    record names none, the folders between config and seed)."""
    if not isinstance(spec, Mapping):
        raise SpecError(f"it is {type(spec).__name__}, not an object")
    kind, split = SPEC_KINDS[_text(spec, "kind", tuple(SPEC_KINDS))]
    dataset = _text(spec, "dataset")
    # One dataset spelt two ways ('OxfordPets' recorded, 'oxford_pets' folder) is one column,
    # named as the folders of runs without a spec name it.
    same_dataset = (folder_key is not None
                    and normalized_dataset(folder_key.dataset) == normalized_dataset(dataset))
    dataset = folder_key.dataset if same_dataset else canonical_dataset(dataset)
    # A config given as a file ('configs/trainers/DAPT_Init/vit_b16_ep50.yaml') is its name.
    config = PurePath(_text(spec, "config")).name.removesuffix(".yaml")
    return RunKey(
        kind=kind, split=split,
        dataset=dataset,
        trainer=trainer or (folder_key.trainer if folder_key else DEFAULT_TRAINER),
        init=_text(spec, "init", INIT_METHODS),
        vis_init=_text(spec, "vis_init", INIT_METHODS, optional=True),
        config=config,
        extra=folder_key.extra if folder_key else "",
        shots=_whole(spec, "shots"), seed=_whole(spec, "seed"),
        tag=_text(spec, "tag", optional=True) or "",
        grid=grid_items(spec.get("grid")))


def disagreements(spec_key: RunKey, folder_key: RunKey) -> list[str]:
    """'init diff (folders: same)' for each field where the folder names say otherwise.
    A folder without a visual init says nothing about it (the scripts omit random)."""
    found = []
    for name in (field.name for field in fields(RunKey) if field.name in COMPARED_FIELDS):
        recorded, named = getattr(spec_key, name), getattr(folder_key, name)
        if name == "vis_init" and named is None:
            continue
        if recorded != named:
            found.append(f"{name} {recorded} (folders: {named})")
    return found
