"""What a study run is, and where it lives: the one owner of the run folder layout.

A ``RunSpec`` names a run by the study's terms (kind, dataset, text and visual init, trainer
config, shots, seed, tag, grid values). Its folder under an output root is exactly the layout
the scripts always used, and ``RunSpec.from_folder`` reads a folder back. The drop-in package
(trainers/dapt_init) knows nothing of this module; train.py records a spec it is given in
``result.json`` under ``"spec"``.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

from trainers.dapt_init.config import INIT_METHODS

TRAINER = "DAPT_Init"
REPO_ROOT = Path(__file__).resolve().parent.parent
# train: few-shot training; eval: cross-dataset test of ImageNet prompts; base2new_*: CoCoOp's
# base-to-new split, trained on the base half and tested on the new half.
KINDS = ("train", "eval", "base2new_train", "base2new_test")
BASE2NEW_SHOTS = 16
BASE2NEW_FOLDER = {"base2new_train": "train_base", "base2new_test": "test_new"}
SUBSAMPLE = {"base2new_train": "base", "base2new_test": "new"}
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

    def model_spec(self) -> "RunSpec | None":
        """The training run an evaluation loads its prompts from (None for a training run)."""
        if self.kind == "eval":
            return replace(self, kind="train", dataset=EVAL_SOURCE)
        if self.kind == "base2new_test":
            return replace(self, kind="base2new_train")
        return None

    @classmethod
    def from_folder(cls, path: str | os.PathLike,
                    configs: Iterable[str] | None = None) -> tuple["RunSpec", str]:
        """(spec, output root) of a run folder of the study's layout. Grid values are not in
        a folder's name (only their tag), so ``grid`` comes back empty."""
        parts = Path(os.path.abspath(path)).parts
        match = re.fullmatch(r"seed(\d+)", parts[-1]) if parts else None
        if len(parts) < 6 or not match or parts[-4] != TRAINER:
            raise StudyError(f"{path} is not a run folder of the study's layout "
                             f"(.../<dataset>/{TRAINER}/<init>/<cfg>_<shots>shots/seed<k>)")
        seed, run_name, init_folder = int(match.group(1)), parts[-2], parts[-3]
        init, _, vis_init = init_folder.partition("_vis-")
        vis_init = vis_init or "random"
        shots_match = re.fullmatch(r"shots_(\d+)", parts[-5])
        if shots_match and len(parts) >= 9 and parts[-8] == "base2new" and \
                parts[-7] in BASE2NEW_FOLDER.values():
            kind = {v: k for k, v in BASE2NEW_FOLDER.items()}[parts[-7]]
            config, tag = _split_config(run_name, configs)
            spec = cls(kind, parts[-6], init, vis_init, config, int(shots_match.group(1)), seed,
                       tag)
            root = parts[:-8]
        else:
            match = re.fullmatch(r"(.+?)_(\d+)shots(?:_(.+))?", run_name)
            if not match:
                raise StudyError(f"{path}: '{run_name}' is not <cfg>_<shots>shots[_<tag>]")
            evaluation = len(parts) >= 7 and parts[-6] == "evaluation"
            spec = cls("eval" if evaluation else "train", parts[-5], init, vis_init,
                       match.group(1), int(match.group(2)), seed, match.group(3) or "")
            root = parts[:-6] if evaluation else parts[:-5]
        spec.check()
        return spec, str(Path(*root)) if root else "/"


def _split_config(name: str, configs: Iterable[str] | None) -> tuple[str, str]:
    """'<cfg>[_<tag>]' of a base-to-new folder: the longest known config name that starts it
    (config names and tags both hold underscores)."""
    known = sorted(configs if configs is not None else trainer_configs(), key=len, reverse=True)
    for config in known:
        if name == config or name.startswith(config + "_"):
            return config, name[len(config) + 1:]
    return name, ""


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
