"""What a run is, and where it lives: the one owner of the run folder layout, both ways.

A ``RunSpec`` names a run by the study's terms (kind, dataset, text and visual init, trainer
config, shots, seed, tag, grid values); its folder under an output root is exactly the layout
the scripts always used. Going back, ``spec_from_path`` reads any seed folder's names (ours,
CoOp's, base-to-new) into a ``RunKey``: where a run of any trainer sits in the study. Reading a
run folder's record (``result.json``) lives beside it in ``study/run_read.py``. The drop-in
package (trainers/dapt_init) knows nothing of this module; train.py records a spec it is given
in ``result.json`` under ``"spec"``.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from trainers.dapt_init.config import INIT_METHODS

TRAINER = "DAPT_Init"
REPO_ROOT = Path(__file__).resolve().parent.parent
# train: few-shot training; eval: cross-dataset test of ImageNet prompts; base2new_*: CoCoOp's
# base-to-new split, trained on the base half and tested on the new half.
KINDS = ("train", "eval", "base2new_train", "base2new_test")
BASE2NEW_SHOTS = 16
BASE2NEW_FOLDER = {"base2new_train": "train_base", "base2new_test": "test_new"}
SUBSAMPLE = {"base2new_train": "base", "base2new_test": "new"}
# RunSpec kind -> (RunKey kind, base-to-new split): the readers' names of the same four kinds.
KEY_KINDS = {"train": ("fewshot", None), "eval": ("dg", None),
             "base2new_train": ("base2new", "base"), "base2new_test": ("base2new", "new")}
EVAL_SOURCE = "imagenet"  # the data set whose prompts eval.sh tests elsewhere
# ImageNet variants with a test split only: targets of the domain-generalisation evaluation.
DG_TARGETS = ("imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r")
TAG_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# DAPT's trainer config per shot count (ImageNet: always vit_b16_ep50).
DAPT_CONFIGS = {1: "vit_b16_ep50", 2: "vit_b16_ep100", 4: "vit_b16_ep100", 8: "vit_b16",
                16: "vit_b16"}
EPOCH_KEY = "OPTIM.MAX_EPOCH"


class StudyError(Exception):
    """A user error of the study's commands: printed as one ``error:`` line, exit status 2."""


@dataclass(frozen=True)
class RunSpec:
    kind: str
    dataset: str  # for eval: the target data set
    init: str
    vis_init: str
    config: str
    shots: int
    seed: int
    tag: str = ""
    grid: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The plain record result.json keeps under "spec"."""
        return asdict(self)

    def to_json(self) -> str:  # compact: one word on a command line
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> "RunSpec":
        try:
            spec = cls(kind=str(record["kind"]), dataset=str(record["dataset"]),
                       init=str(record["init"]), vis_init=str(record["vis_init"]),
                       config=str(record["config"]), shots=int(record["shots"]),
                       seed=int(record["seed"]), tag=str(record.get("tag") or ""),
                       grid={str(k): str(v) for k, v in dict(record.get("grid") or {}).items()})
        except (KeyError, TypeError, ValueError) as error:
            raise StudyError(f"not a run spec ({error!r}): {dict(record)!r}") from None
        spec.check()
        return spec

    def check(self) -> None:
        if self.kind not in KINDS:
            raise StudyError(f"unknown run kind '{self.kind}'; valid kinds: {' '.join(KINDS)}")
        for name, value in (("init", self.init), ("visual init", self.vis_init)):
            if value not in INIT_METHODS:
                raise StudyError(f"unknown {name} method '{value}'; valid init methods: "
                                 f"{' '.join(INIT_METHODS)}")
        if self.tag and not TAG_PATTERN.fullmatch(self.tag):
            raise StudyError("TAG must be letters, digits, '.', '_' or '-' (it names a "
                             f"folder), got '{self.tag}'")

    # ------------------------------------------------------------------------- folders
    @property
    def init_folder(self) -> str:
        """INIT, or INIT_vis-<v> (the default visual init leaves DAPT's folder names)."""
        return self.init if self.vis_init == "random" else f"{self.init}_vis-{self.vis_init}"

    def folder(self, output_root: str | os.PathLike) -> str:
        root, tag = os.fspath(output_root).rstrip("/") or "/", f"_{self.tag}" if self.tag else ""
        if self.kind in BASE2NEW_FOLDER:
            return os.path.join(root, "base2new", BASE2NEW_FOLDER[self.kind], self.dataset,
                                f"shots_{self.shots}", TRAINER, self.init_folder,
                                f"{self.config}{tag}", f"seed{self.seed}")
        head = [root, "evaluation"] if self.kind == "eval" else [root]
        return os.path.join(*head, self.dataset, TRAINER, self.init_folder,
                            f"{self.config}_{self.shots}shots{tag}", f"seed{self.seed}")

    def key(self) -> "RunKey":
        """Where this run sits in the study: what the readers (study/run_read.py) make of its
        record."""
        kind, split = KEY_KINDS[self.kind]
        return RunKey(kind=kind, dataset=self.dataset, trainer=TRAINER, init=self.init,
                      config=self.config, extra="", shots=self.shots, seed=self.seed,
                      split=split, vis_init=self.vis_init, tag=self.tag,
                      grid=tuple(sorted((str(k), str(v)) for k, v in self.grid.items())))

    def mismatches(self, datasets: Sequence[str], seed: int, shots: int, init: str,
                   vis_init: str) -> list[str]:
        """What this spec says otherwise than the run's own config (a --spec naming another
        data set or seed would place the run in another cell): 'seed 2 (the run: 1)'.
        ``datasets``: the run's data set by each name it has (config file, DATASET.NAME)."""
        found = []
        if not any(normalized_dataset(self.dataset) == normalized_dataset(name)
                   for name in datasets if name):
            found.append(f"dataset {self.dataset} (the run: {' / '.join(filter(None, datasets))})")
        for name, value in (("seed", seed), ("shots", shots), ("init", init),
                            ("vis_init", vis_init)):
            if getattr(self, name) != value:
                found.append(f"{name} {getattr(self, name)} (the run: {value})")
        return found

    def model_spec(self) -> "RunSpec | None":
        """The training run an evaluation loads its prompts from (None for a training run)."""
        if self.kind == "eval":
            return replace(self, kind="train", dataset=EVAL_SOURCE)
        if self.kind == "base2new_test":
            return replace(self, kind="base2new_train")
        return None


# ----------------------------------------------------------------------- trainer configs

def trainer_configs(codebase: str | os.PathLike = REPO_ROOT) -> list[str]:
    folder = Path(codebase) / "configs" / "trainers" / TRAINER
    return sorted(p.stem for p in folder.glob("*.yaml"))


def choose_config(dataset: str, shots: int, cfg: str = "",
                  codebase: str | os.PathLike = REPO_ROOT) -> str:
    """DAPT's trainer config for a shot count (CFG, when given, wins)."""
    valid = " ".join(trainer_configs(codebase))
    if cfg:
        chosen = cfg
    elif dataset == "imagenet":
        chosen = "vit_b16_ep50"
    elif shots in DAPT_CONFIGS:
        chosen = DAPT_CONFIGS[shots]
    else:
        raise StudyError(f"no default trainer config for {shots} shots (DAPT's: 1 -> "
                         "vit_b16_ep50, 2 and 4 -> vit_b16_ep100, 8 and 16 -> vit_b16); set CFG "
                         f"to one of: {valid}")
    path = Path(codebase) / "configs" / "trainers" / TRAINER / f"{chosen}.yaml"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", chosen) or not path.is_file():
        raise StudyError(f"unknown trainer config CFG='{chosen}'; valid configs (in "
                         f"configs/trainers/{TRAINER}/): {valid}")
    return chosen


def config_epochs(config: str, overrides: Iterable[str] = (), load_epoch: str = "",
                  codebase: str | os.PathLike = REPO_ROOT) -> int:
    """The epoch whose checkpoint an evaluation loads: LOAD_EPOCH, else OPTIM.MAX_EPOCH among
    the overrides (the last one), else the config file's OPTIM.MAX_EPOCH."""
    import yaml

    words, value = list(overrides), load_epoch
    if not value:
        for key, given in zip(words[::2], words[1::2]):
            if key == EPOCH_KEY:
                value = given
    if not value:
        path = Path(codebase) / "configs" / "trainers" / TRAINER / f"{config}.yaml"
        try:
            with open(path, encoding="utf-8") as file:
                loaded = yaml.safe_load(file) or {}
            value = (loaded.get("OPTIM") or {}).get("MAX_EPOCH", "")
        except (OSError, yaml.YAMLError, AttributeError):
            value = ""
    text = str(value)
    if not re.fullmatch(r"[1-9][0-9]*", text):
        raise StudyError(f"cannot tell which epoch to load for config '{config}' (got "
                         f"'{text}'); set LOAD_EPOCH to the trained run's last epoch")
    return int(text)


# --------------------------------------------------------------------------------- grids

def grid_tag(key: str, value: str) -> str:
    """A readable folder tag for one grid value: OPTIM.MAX_EPOCH 25 -> ep25,
    TRAINER.DAPT_INIT.VIS_BETA 10 -> vis_beta10."""
    name = "ep" if key == EPOCH_KEY else key.rsplit(".", 1)[-1].lower()
    return name + re.sub(r"[^A-Za-z0-9._-]", "-", value)


def full_tag(tag: str, grid: Mapping[str, str]) -> str:
    """The user's TAG, then one tag per grid value (the visual init has its own folder)."""
    words = [tag] if tag else []
    words += [grid_tag(k, v) for k, v in grid.items() if k != VIS_INIT_KEY]
    return "_".join(words)


VIS_INIT_KEY = "TRAINER.DAPT_INIT.VIS_INIT_METHOD"


# ===================================================================== reading folders back
def natural_key(name: str) -> list[object]:
    """seed2 before seed10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


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
    """Where a run sits in the study: from its recorded spec (study/run_read.py), else its path."""

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


def find_run_folders(root: Path) -> list[Path]:
    """Every 'seed<k>' folder under root (not descending into them), in natural order."""
    found = []
    for folder, child_names, _ in os.walk(root):
        child_names[:] = sorted((name for name in child_names if not name.startswith(".")),
                                key=natural_key)
        for name in [name for name in child_names if SEED_DIR.match(name)]:
            found.append(Path(folder) / name)
            child_names.remove(name)
    return sorted(found, key=lambda path: [natural_key(part) for part in path.parts])


def spec_from_path(relative_parts: Sequence[str]) -> RunKey:
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
    # A tagged base-to-new folder is '<cfg>_<TAG>', with no shots to split at: config names
    # and tags both hold underscores, so the name stays whole; the run's spec says which is which.
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
