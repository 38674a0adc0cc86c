"""Folder names -> where a run sits in the study (RunKey): the few-shot, dg and base2new
layouts of the scripts, the dataset names, and whether DIR is one output root.

Used for runs that did not record their spec in result.json (CoOp-family trees, older runs);
``spec.py`` reads the record of the others."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .logs import natural_key

SEED_DIR = re.compile(r"seed(\d+)$")
# "<cfg>_<shots>shots" or, for runs given a TAG by the scripts, "<cfg>_<shots>shots_<TAG>".
SHOTS_DIR = re.compile(r"(.+?)_(\d+)shots(?:_(.+))?$")
# "<init>_vis-<visinit>": the scripts' init folder when the visual init is not random.
VIS_INIT_DIR = re.compile(r"(.+)_vis-([^/]+)$")
DEFAULT_VIS_INIT = "random"
BASE2NEW_SHOTS_DIR = re.compile(r"shots_(\d+)$")
BASE2NEW_SPLITS = {"train_base": "base", "test_new": "new"}

# The 15 CoOp datasets, in column order: (folder name used by the scripts, display name).
KNOWN_DATASETS = (
    ("eurosat", "EuroSAT"),
    ("oxford_pets", "OxfordPets"),
    ("food101", "Food101"),
    ("fgvc_aircraft", "FGVCAircraft"),
    ("dtd", "DTD"),
    ("caltech101", "Caltech101"),
    ("stanford_cars", "StanfordCars"),
    ("oxford_flowers", "OxfordFlowers"),
    ("sun397", "SUN397"),
    ("ucf101", "UCF101"),
    ("imagenet", "ImageNet"),
    ("imagenetv2", "ImageNetV2"),
    ("imagenet_sketch", "ImageNetSketch"),
    ("imagenet_a", "ImageNetA"),
    ("imagenet_r", "ImageNetR"),
)


class LayoutError(ValueError):
    """A run folder whose path matches none of the known layouts."""


@dataclass(frozen=True)
class RunKey:
    """Where a run sits in the study: from its recorded spec (spec.py), else its path."""

    kind: str  # "fewshot", "dg" or "base2new"
    dataset: str  # folder name (a spec's dataset mapped to it: canonical_dataset)
    trainer: str
    init: str | None  # None when the path has no init level (other trainers)
    config: str
    extra: str  # folders between the config folder and the seed folder, '/'-joined
    shots: int
    seed: int
    split: str | None = None  # "base" or "new" for base2new
    vis_init: str | None = None  # from "<init>_vis-<v>" or result.json; None: not recorded
    tag: str = ""  # the scripts' TAG ("<cfg>_<shots>shots_<TAG>"); "" when none
    # Sweep settings a run recorded in its spec ((KEY, VALUE) pairs, sorted); () from folders.
    grid: tuple[tuple[str, str], ...] = ()


def find_seed_folders(root: Path) -> list[Path]:
    """Every 'seed<k>' folder under root (not descending into them), in natural order."""
    found = []
    for folder, child_names, _ in os.walk(root):
        child_names[:] = sorted((name for name in child_names if not name.startswith(".")),
                                key=natural_key)
        for name in [name for name in child_names if SEED_DIR.match(name)]:
            found.append(Path(folder) / name)
            child_names.remove(name)
    return sorted(found, key=lambda path: [natural_key(part) for part in path.parts])


def parse_run_path(relative_parts: Sequence[str]) -> RunKey:
    """RunKey from a seed folder's path relative to the output root (raises LayoutError)."""
    *parents, seed_folder = relative_parts
    seed = int(SEED_DIR.match(seed_folder).group(1))
    if len(parents) >= 2 and parents[0] == "base2new" and parents[1] in BASE2NEW_SPLITS:
        return parse_base2new_path(parents[2:], BASE2NEW_SPLITS[parents[1]], seed)
    if parents and parents[0] == "evaluation":
        return parse_fewshot_path(parents[1:], "dg", seed)
    return parse_fewshot_path(parents, "fewshot", seed)


def parse_fewshot_path(parts: Sequence[str], kind: str, seed: int) -> RunKey:
    """<dataset>/<trainer>/[<init>/]<cfg>_<shots>shots/[<extra>/]"""
    shots_index = next((index for index, part in enumerate(parts)
                        if index >= 2 and SHOTS_DIR.match(part)), None)
    if shots_index is None:
        raise LayoutError("expected <dataset>/<trainer>/[<init>/]<cfg>_<N>shots/.../seed<k>")
    config, shots, tag = SHOTS_DIR.match(parts[shots_index]).groups()
    init, vis_init = split_vis_init("/".join(parts[2:shots_index]) or None)
    return RunKey(kind=kind, dataset=parts[0], trainer=parts[1], init=init, config=config,
                  extra="/".join(parts[shots_index + 1:]), shots=int(shots), seed=seed,
                  vis_init=vis_init, tag=tag or "")


def split_vis_init(init: str | None) -> tuple[str | None, str | None]:
    """'diff_vis-same' -> ('diff', 'same'); an init folder without the suffix -> (init, None)."""
    match = VIS_INIT_DIR.match(init) if init else None
    return (match.group(1), match.group(2)) if match else (init, None)


def parse_base2new_path(parts: Sequence[str], split: str, seed: int) -> RunKey:
    """<dataset>/shots_<K>/<trainer>/[<init>/]<cfg>/[<extra>/]"""
    if len(parts) < 4 or not BASE2NEW_SHOTS_DIR.match(parts[1]):
        raise LayoutError("expected base2new/<split>/<dataset>/shots_<K>/<trainer>/"
                          "[<init>/]<cfg>/seed<k>")
    shots = int(BASE2NEW_SHOTS_DIR.match(parts[1]).group(1))
    after_trainer = parts[3:]
    init, vis_init = split_vis_init(after_trainer[0] if len(after_trainer) >= 2 else None)
    config = after_trainer[1] if len(after_trainer) >= 2 else after_trainer[0]
    return RunKey(kind="base2new", dataset=parts[0], trainer=parts[2], init=init, config=config,
                  extra="/".join(after_trainer[2:]), shots=shots, seed=seed, split=split,
                  vis_init=vis_init)


# ---- Dataset names ---------------------------------------------------------------------------
def normalized_dataset(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


DISPLAY_NAME_BY_NORMALIZED = {normalized_dataset(folder): display
                              for folder, display in KNOWN_DATASETS}
DATASET_RANK = {normalized_dataset(folder): rank
                for rank, (folder, _) in enumerate(KNOWN_DATASETS)}


def dataset_display_name(folder: str) -> str:
    """'oxford_pets' -> 'OxfordPets'; unknown folders keep their name."""
    return DISPLAY_NAME_BY_NORMALIZED.get(normalized_dataset(folder), folder)


def dataset_sort_key(folder: str) -> tuple[int, str]:
    return DATASET_RANK.get(normalized_dataset(folder), len(KNOWN_DATASETS)), folder


def canonical_dataset(name: str) -> str:
    """The scripts' folder name of a known dataset written any other way (a run's spec records
    Dassl's name, 'OxfordPets'), so that recorded and folder-named runs share a column."""
    normalized = normalized_dataset(name)
    return next((folder for folder, _ in KNOWN_DATASETS
                 if normalized_dataset(folder) == normalized), name)


# ---- Is DIR an output root? ------------------------------------------------------------------
KNOWN_DATASET_FOLDERS = {normalized_dataset(folder) for folder, _ in KNOWN_DATASETS}
LAYOUT_TOPS = ("evaluation", "base2new")


def is_layout_top(name: str) -> bool:
    return name in LAYOUT_TOPS or normalized_dataset(name) in KNOWN_DATASET_FOLDERS


def output_root_problem(root: Path, seed_folders: Sequence[Path]) -> str | None:
    """Why DIR is not one output root, naming the folder(s) to give, or None.

    An output root holds <dataset>/, evaluation/ and base2new/ folders. When runs sit below a
    known dataset folder one or more levels down (DIR holds several output roots, or another
    tree), the table would take folder names for datasets: say which folder to give instead.
    """
    roots: list[Path] = []
    for folder in seed_folders:
        parts = folder.relative_to(root).parts[:-1]
        if not parts or is_layout_top(parts[0]):
            continue
        depth = next((index for index, part in enumerate(parts) if is_layout_top(part)), None)
        if depth is not None and root.joinpath(*parts[:depth]) not in roots:
            roots.append(root.joinpath(*parts[:depth]))
    if roots:
        if len(roots) == 1:
            return (f"{root} is not an output root: its runs are under {roots[0]}; give that "
                    f"folder to --study.")
        return (f"{root} holds {len(roots)} output roots ({', '.join(map(str, roots))}); give "
                "one of them to --study.")
    if is_layout_top(root.name) and root.name not in LAYOUT_TOPS and seed_folders:
        return (f"{root} is a dataset folder, not an output root; give its parent "
                f"{root.parent} to --study.")
    return None
