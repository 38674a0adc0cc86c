"""What the prompt analyses share: reading a run folder's prompts and record, building the
initial prompts a run starts from, and the command-line pieces several commands take.

This module imports none of the commands (init_stats, tsne, nearest_words, losses): they
import it, and tools/analyze_prompts.py imports them, so there is no cycle.
"""
from __future__ import annotations

import argparse
import math
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from trainers.dapt_init.checkpoint import load_run_prompts, prompt_epochs, run_prompts_path
from trainers.dapt_init.config import (INIT_METHODS, MAX_NOISE_SCALE, MAX_TXT_TOKENS,
                                       MAX_VIS_TOKENS)
from trainers.dapt_init.runstate import PROMPT_MODEL
from trainers.dapt_init.errors import DaptInitError

TABLE_FORMATS = ("github", "plain", "csv")
DEFAULT_BACKBONE = "ViT-B/16"
# Lines this project's train.py / trainer write to every run's log.txt.
LOGGED_INIT = re.compile(r"text prompt init: (\w+)")
LOGGED_SEED = re.compile(r"^SEED: (-?\d+)\s*$", re.MULTILINE)


# ============================================================================ runs' prompts
def check_init_name(name: str, where: str) -> str:
    if name not in INIT_METHODS:
        raise DaptInitError(
            f"{where}: unknown init method {name!r}; valid values are {', '.join(INIT_METHODS)}."
        )
    return name


def saved_epochs(run_dir: Path) -> list[int]:
    """Epochs whose prompts a run holds (kept prompts files or checkpoints), ascending."""
    return prompt_epochs(str(run_dir))


def chosen_epoch(run_dir: Path, epoch: int | None) -> int:
    """``epoch`` (None: the last saved) if the run holds its prompts, else a clear error."""
    if not run_dir.is_dir():
        raise DaptInitError(f"run folder {run_dir} does not exist.")
    epochs = saved_epochs(run_dir)
    if not epochs:
        raise DaptInitError(
            f"run folder {run_dir} holds no checkpoint ({PROMPT_MODEL}/model.pth.tar-<epoch>) "
            f"and no kept prompts ({PROMPT_MODEL}/prompts-epoch<epoch>.pt). Give the folder "
            "train.py wrote with --output-dir."
        )
    chosen = epochs[-1] if epoch is None else epoch
    if chosen not in epochs:
        raise DaptInitError(
            f"run folder {run_dir} has no checkpoint for epoch {chosen}; saved epochs: "
            f"{', '.join(map(str, epochs))}. Pass one of them with --epoch (train.py keeps "
            "epochs 0 and 1, those in TRAINER.DAPT_INIT.KEEP_EPOCHS, the last epoch and every "
            "TRAIN.CHECKPOINT_FREQ-th)."
        )
    return chosen


def checkpoint_path(run_dir: Path, epoch: int | None) -> Path:
    """The file holding ``epoch``'s prompts (kept prompts first, else the checkpoint)."""
    return Path(run_prompts_path(str(run_dir), chosen_epoch(run_dir, epoch)))


def run_text_prompts(run_dir: Path, epoch: int) -> torch.Tensor:
    """The text prompt tokens of a run after ``epoch``, (K, width), in fp32."""
    return load_run_prompts(str(run_dir), epoch)["txt_ctx"].float()


@dataclass(frozen=True)
class RunInfo:
    """What a run's log.txt says about it; None where the log is missing or silent."""
    init: str | None
    seed: int | None


def logged_run_info(run_dir: Path) -> RunInfo:
    log = run_dir / "log.txt"
    text = log.read_text(errors="replace") if log.is_file() else ""
    init, seed = LOGGED_INIT.search(text), LOGGED_SEED.search(text)
    return RunInfo(init.group(1) if init else None, int(seed.group(1)) if seed else None)


def check_width(prompts: torch.Tensor, clip_width: int, path: Path, clip_source: str) -> None:
    if prompts.shape[-1] != clip_width:
        raise DaptInitError(
            f"checkpoint {path} has txt_ctx of shape {tuple(prompts.shape)}, but the CLIP "
            f"({clip_source}) has token width {clip_width}, i.e. text prompts of shape "
            f"(K, {clip_width}). The run used another CLIP: pass its weights with "
            "--clip-weights / --backbone, or --no-initial to skip the initial rows."
        )


# ===================================================================== the initial prompts
@dataclass(frozen=True)
class InitSettings:
    """What the initial text prompts depend on besides the seed (must match the training run)."""
    backbone: str = DEFAULT_BACKBONE
    clip_weights: str = ""
    txt_tokens: int = 16
    vis_tokens: int = 16  # visual prompts are drawn first, so their count shifts the text draw
    noise_scale: float = 0.1
    prec: str = "fp32"

    @property
    def clip_source(self) -> str:
        return self.clip_weights or self.backbone


def initial_text_prompts(init: str, seed: int, settings: InitSettings) -> torch.Tensor:
    """The text prompts a training run with this seed starts from, (K, width), in fp32.

    Same order as train.py: seed torch, build CLIP (which draws from torch's
    generator while initialising), then the PromptLearner (visual, then text prompts). The
    caller's random state is left as it was.
    """
    from trainers.dapt_init.clip_loading import load_clip
    from trainers.dapt_init.model import PromptLearner, PromptSettings

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the torch part of dassl's set_random_seed
        clip_model = load_clip(settings.backbone, settings.clip_weights)
        if settings.prec == "fp32":  # as the trainer does for fp32 / amp and on the CPU
            clip_model.float()
        prompt_settings = PromptSettings(vis_tokens=settings.vis_tokens,
                                         txt_tokens=settings.txt_tokens, init_method=init,
                                         noise_scale=settings.noise_scale)
        learner = PromptLearner(clip_model, ["placeholder"], prompt_settings)
    return learner.txt_ctx.detach().float()


# ================================================================= a run's CLIP and settings
def recorded_settings(run_dir: Path) -> InitSettings | None:
    """The CLIP and prompt settings ``run_dir``'s run used, from its own record (result.json,
    else the command in log.txt); None when it records neither."""
    from study.config import recorded_cfg

    cfg = recorded_cfg(str(run_dir))
    if cfg is None:
        return None
    node = cfg.TRAINER.DAPT_INIT
    return InitSettings(cfg.MODEL.BACKBONE.NAME, node.CLIP_WEIGHTS, node.TXT_NUM_TOKENS,
                        node.VIS_NUM_TOKENS, node.INIT_NOISE_SCALE)


def resolved_settings(args: argparse.Namespace, run_dir: Path | None) -> InitSettings:
    """The options of ``add_clip_options``: those given win; the others come from
    ``run_dir``'s record when there is one, else the defaults."""
    recorded = recorded_settings(run_dir) if run_dir is not None else None
    settings = recorded or InitSettings()
    if args.backbone is not None or args.clip_weights is not None:
        # A CLIP given on the command line replaces the run's CLIP whole (name and file).
        settings = replace(settings, backbone=args.backbone or DEFAULT_BACKBONE,
                           clip_weights=args.clip_weights or "")
    elif settings.clip_weights and not os.path.isfile(settings.clip_weights):
        # A moved weights file: the check by sha256 needs the bytes, so ask for the new path.
        raise DaptInitError(
            f"{run_dir} was trained with the CLIP weights file {settings.clip_weights}, which "
            "is not there any more; give its new path with --clip-weights (its sha256 is "
            "checked)."
        )
    given = {option: getattr(args, option) for option in
             ("txt_tokens", "vis_tokens", "noise_scale") if getattr(args, option) is not None}
    return replace(settings, prec=args.prec, **given)


def check_weights(run_dir: Path, settings: InitSettings) -> None:
    """The runs' prompts are read only with the CLIP they were trained with."""
    from trainers.dapt_init.runstate import check_run_weights

    check_run_weights(str(run_dir), settings.backbone, settings.clip_weights)


# ============================================================================ command line
def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:  # nan passes every comparison: named here
        raise argparse.ArgumentTypeError(f"must be a finite number of at least 0, got {value}")
    return value


def positive_float(text: str) -> float:
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be more than 0, got 0")
    return value


def int_up_to(high: int) -> Callable[[str], int]:
    """A positive int no larger than the trainer's own bound for the key (checked here, before
    a CLIP is loaded or a tensor of that size allocated)."""
    def parse(text: str) -> int:
        value = positive_int(text)
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high} (the trainer's bound), "
                                             f"got {value}")
        return value
    return parse


def float_up_to(high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = non_negative_float(text)
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high:g} (the trainer's bound), "
                                             f"got {value}")
        return value
    return parse


def add_clip_options(parser: argparse.ArgumentParser, title: str, note: str = "") -> None:
    """The CLIP to load and the prompt settings initial prompts are built with (``note``
    prefixes the prompt settings' help, e.g. the option they apply to). Each defaults to
    None, so a command can tell "not given" (take the run's own) from a value."""
    clip = parser.add_argument_group(title)
    clip.add_argument("--backbone", default=None,
                      help="CLIP backbone clip downloads (MODEL.BACKBONE.NAME); default: the "
                           "run's own, else ViT-B/16")
    clip.add_argument("--clip-weights", default=None, metavar="FILE",
                      help="local CLIP file (JIT archive or state dict), as "
                           "TRAINER.DAPT_INIT.CLIP_WEIGHTS; overrides --backbone; default: "
                           "the file the run recorded in result.json")
    clip.add_argument("--txt-tokens", type=int_up_to(MAX_TXT_TOKENS), default=None,
                      help=f"{note}TRAINER.DAPT_INIT.TXT_NUM_TOKENS (default: the run's, else "
                           "16)")
    clip.add_argument("--vis-tokens", type=int_up_to(MAX_VIS_TOKENS), default=None,
                      help=f"{note}TRAINER.DAPT_INIT.VIS_NUM_TOKENS (default: the run's, else "
                           "16); visual prompts are drawn before the text prompts, so this "
                           "changes them too")
    clip.add_argument("--noise-scale", type=float_up_to(MAX_NOISE_SCALE), default=None,
                      help=f"{note}TRAINER.DAPT_INIT.INIT_NOISE_SCALE for same/diff (default: "
                           "the run's, else 0.1)")
    clip.add_argument("--prec", choices=("fp32", "fp16"), default="fp32",
                      help=f"{note}dtype the prompts are stored in: fp32 (CPU, PREC fp32/amp; "
                           "default) or fp16 (a GPU run with PREC fp16)")


def first_or_none(items: Sequence[Any] | None) -> Any:
    return items[0] if items else None
