"""Config keys of the DAPT_Init trainer and their validation.

``add_dapt_init_config`` is the one public entry point for host codebases: call it where
their ``train.py`` extends the toolbox config. ``validate_config`` runs before any data or
weights are loaded (the trainer calls it from Dassl's ``check_cfg`` hook).
"""
from __future__ import annotations

import math
import os
from typing import Any

from .errors import DaptInitError
from .toolbox_keys import validate_toolbox_keys

INIT_METHODS = ("random", "same", "diff")
PRECISIONS = ("fp16", "fp32", "amp")
PROTOTYPE_VIEWS = ("dapt", "test")
SUBSAMPLE_CHOICES = ("all", "base", "new")
TEXT_ENCODERS = ("shared_prefix", "full")

# Input resolution of each CLIP vision transformer that clip can download. DAPT puts
# visual prompts between the CLS token and the patches, so only ViT backbones qualify.
VIT_RESOLUTIONS = {
    "ViT-B/32": 224,
    "ViT-B/16": 224,
    "ViT-L/14": 224,
    "ViT-L/14@336px": 336,
}


# ------------------------------------------------------------------ yacs, as users type
# yacs refuses an integer for a decimal key ('OPTIM.LR 20' is a "Type mismatch" traceback),
# yet every tool of this field takes 20 for 20.0, and DAPT's own numbers are written so. The
# coercion yacs calls for every merged key (merge_from_list, merge_from_file,
# merge_from_other_cfg) is wrapped once, when this module is first imported (a host's
# train.py imports the trainer before it builds its config): an int (never a bool) for a
# float key becomes that float; every other rule of yacs stands.
#
# The same wrappers record which keys a merge set (a config file or the command line), on
# the config itself: the data set's DAPT values are applied only to keys nobody set
# (dapt_values.apply_dapt_values), so a command's own 'OPTIM.LR 0.0003' is kept.
SET_KEYS_ATTR = "_dapt_init_set_keys"


def _install_yacs_wrappers() -> None:
    import yacs.config as yacs_config

    if getattr(yacs_config, "_dapt_init_wrapped", False):
        return  # a second import (or a second copy of this unit) wraps nothing twice
    coerce = yacs_config._check_and_coerce_cfg_value_type
    merge_into = yacs_config._merge_a_into_b
    merge_list = yacs_config.CfgNode.merge_from_list

    def coerce_int_to_float(replacement: Any, original: Any, key: str, full_key: str) -> Any:
        if (isinstance(original, float) and isinstance(replacement, int)
                and not isinstance(replacement, bool)):
            return float(replacement)
        return coerce(replacement, original, key, full_key)

    def merge_a_into_b(a: Any, b: Any, root: Any, key_list: list) -> None:
        merge_into(a, b, root, key_list)  # raises before recording on a bad key or type
        if not key_list:  # the outermost call: every leaf of a was merged into root
            _record_set_keys(root, leaf_keys(a))

    def merge_from_list(self: Any, cfg_list: list) -> None:
        merge_list(self, cfg_list)
        _record_set_keys(self, [str(key) for key in cfg_list[0::2]])

    yacs_config._check_and_coerce_cfg_value_type = coerce_int_to_float
    yacs_config._merge_a_into_b = merge_a_into_b
    yacs_config.CfgNode.merge_from_list = merge_from_list
    yacs_config._dapt_init_wrapped = True


def leaf_keys(node: Any, prefix: str = "") -> list[str]:
    """Every leaf key of a (yacs) config as "A.B.C"."""
    keys = []
    for key, value in node.items():
        keys += (leaf_keys(value, f"{prefix}{key}.") if isinstance(value, dict)
                 else [f"{prefix}{key}"])
    return keys


def _record_set_keys(cfg: Any, keys: list[str]) -> None:
    # In the instance's __dict__, not as a key: yacs' attribute setter would make it a config
    # key (and refuse it on a frozen config); clone()'s deepcopy carries it along.
    cfg.__dict__.setdefault(SET_KEYS_ATTR, set()).update(keys)


def set_keys(cfg: Any) -> set[str]:
    """The full keys that a config file or a KEY VALUE list merged into ``cfg``."""
    return set(cfg.__dict__.get(SET_KEYS_ATTR, ()))


_install_yacs_wrappers()


def add_dapt_init_config(cfg: Any) -> None:
    """Add ``TRAINER.DAPT_INIT`` (DAPT's keys with DAPT's defaults, plus ours) to a config.

    Also adds ``DATASET.SUBSAMPLE_CLASSES`` (base-to-new splits) when the host lacks it.
    """
    from yacs.config import CfgNode

    node = CfgNode()
    # DAPT's keys, DAPT's defaults.
    node.VIS_NUM_TOKENS = 16  # visual prompt tokens, inserted after CLS
    node.TXT_NUM_TOKENS = 16  # text context tokens between SOS and the class name
    node.VIS_DROPOUT = 0.0  # dropout on the visual prompts
    node.VIS_BETA = 0.1  # weight of the intra-class (visual) dispersion loss
    node.TXT_BETA = 0.1  # weight of the inter-class (text) dispersion loss
    node.TXT_RBF_T = 2.0  # temperature t of exp(-t * ||w_m - w_n||^2)
    # This project's keys.
    node.INIT_METHOD = "random"  # random (DAPT) | same | diff (RPO's ST-initialisation)
    node.INIT_NOISE_SCALE = 0.1  # norm of the noise added to EOS / CLS for same / diff
    node.VIS_INIT_METHOD = "random"  # random (DAPT) | same | diff: visual prompts from CLS
    node.PREC = "fp16"  # fp16 | fp32 | amp (on the CPU see CPU_FP32)
    # On the CPU fp16 / amp are replaced by fp32 (faster there, same code path); False runs
    # the asked precision on the CPU too, as a GPU would (tests, CI, the DAPT comparison).
    node.CPU_FP32 = True
    node.CLIP_WEIGHTS = ""  # local CLIP file (JIT archive or state dict); "" downloads
    node.PROTOTYPE_VIEW = "dapt"  # dapt: DAPT's generator's random views; test: deterministic
    node.PROTOTYPE_CACHE_DIR = ""  # "" = <dataset dir>/split_fewshot/prototypes
    node.LOG_GRAD_NORMS = False  # log each weighted loss term's gradient norm (extra backward)
    node.KEEP_EPOCHS = []  # epochs whose prompts are kept besides 0 and 1 (prompts-epoch<N>.pt)
    # shared_prefix: SOS + context encoded once per step, class tokens up to EOS (same
    # features, far less work); full: every class's 77 tokens, as DAPT encodes them.
    node.TEXT_ENCODER = "shared_prefix"
    cfg.TRAINER.DAPT_INIT = node

    if "SUBSAMPLE_CLASSES" not in cfg.DATASET:
        cfg.DATASET.SUBSAMPLE_CLASSES = "all"


def _choice(value: str, allowed: tuple[str, ...], key: str) -> None:
    if value not in allowed:
        raise DaptInitError(
            f"{key} is {value!r}; valid values are {', '.join(allowed)}. "
            f"Set it in a config file or on the command line, e.g. '{key} {allowed[0]}'."
        )


def _is_number(value: Any) -> bool:
    # bool is an int to Python, never a number to a user; nan and inf pass every comparison
    # test (nan < 0 is False) and would poison the first step, so they are refused here.
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


# Sanity bounds on this trainer's keys: far above any published setting (DAPT: 16 tokens,
# loss weights up to 100, t = 2; RPO: noise 0.1), far below what overflows or fills memory.
# Text prompts share CLIP's 77-token context with SOS, EOS, '.' and at least one name token.
MAX_VIS_TOKENS = 1024
MAX_TXT_TOKENS = 73
MAX_LOSS_WEIGHT = 1e4
MAX_RBF_T = 1e4
MAX_NOISE_SCALE = 100.0


def _positive_int(value: Any, key: str, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= high:
        raise DaptInitError(f"{key} is {value!r}; it must be a whole number from 1 to {high}, "
                            f"e.g. '{key} 16'.")


def _non_negative(value: Any, key: str, high: float) -> None:
    if not _is_number(value) or not 0 <= value <= high:
        raise DaptInitError(f"{key} is {value!r}; it must be a finite number from 0 to "
                            f"{high:g}, e.g. '{key} 0.1'.")


def _epoch_list(value: Any, key: str) -> None:
    if not isinstance(value, (list, tuple)) or not all(
            isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 1
            for epoch in value):
        raise DaptInitError(
            f"{key} is {value!r}; it must be a list of epochs (whole numbers of at least 1), "
            f"e.g. '{key} [10,50]' (no spaces), or [] to keep only epochs 0 and 1."
        )


def validate_config(cfg: Any, *, training: bool = True) -> None:
    """Raise ``DaptInitError`` naming the first bad value; cheap, loads nothing.

    The toolbox's own keys first (``toolbox_keys.TOOLBOX_KEYS``), then ``TRAINER.DAPT_INIT``."""
    validate_toolbox_keys(cfg)
    node = cfg.TRAINER.DAPT_INIT
    prefix = "TRAINER.DAPT_INIT."
    _choice(node.INIT_METHOD, INIT_METHODS, prefix + "INIT_METHOD")
    _choice(node.VIS_INIT_METHOD, INIT_METHODS, prefix + "VIS_INIT_METHOD")
    _choice(node.PREC, PRECISIONS, prefix + "PREC")
    if node.PROTOTYPE_VIEW == "train":  # the old name, which drew other crops than DAPT
        raise DaptInitError(
            f"{prefix}PROTOTYPE_VIEW 'train' was removed: it did not draw DAPT's views. Use "
            f"'{prefix}PROTOTYPE_VIEW dapt' (DAPT's exact views, the default) or 'test'."
        )
    _choice(node.PROTOTYPE_VIEW, PROTOTYPE_VIEWS, prefix + "PROTOTYPE_VIEW")
    _choice(node.TEXT_ENCODER, TEXT_ENCODERS, prefix + "TEXT_ENCODER")
    if not isinstance(node.get("CPU_FP32", True), bool):
        raise DaptInitError(
            f"{prefix}CPU_FP32 is {node.CPU_FP32!r}; it must be True or False."
        )
    _non_negative(node.INIT_NOISE_SCALE, prefix + "INIT_NOISE_SCALE", MAX_NOISE_SCALE)
    _positive_int(node.VIS_NUM_TOKENS, prefix + "VIS_NUM_TOKENS", MAX_VIS_TOKENS)
    _positive_int(node.TXT_NUM_TOKENS, prefix + "TXT_NUM_TOKENS", MAX_TXT_TOKENS)
    _non_negative(node.VIS_BETA, prefix + "VIS_BETA", MAX_LOSS_WEIGHT)
    _non_negative(node.TXT_BETA, prefix + "TXT_BETA", MAX_LOSS_WEIGHT)
    _non_negative(node.TXT_RBF_T, prefix + "TXT_RBF_T", MAX_RBF_T)
    if not _is_number(node.VIS_DROPOUT) or not 0.0 <= node.VIS_DROPOUT < 1.0:
        raise DaptInitError(
            f"{prefix}VIS_DROPOUT is {node.VIS_DROPOUT!r}; it must be in [0, 1)."
        )
    if not isinstance(node.LOG_GRAD_NORMS, bool):
        raise DaptInitError(
            f"{prefix}LOG_GRAD_NORMS is {node.LOG_GRAD_NORMS!r}; it must be True or False."
        )
    _epoch_list(node.KEEP_EPOCHS, prefix + "KEEP_EPOCHS")
    _choice(cfg.DATASET.get("SUBSAMPLE_CLASSES", "all"), SUBSAMPLE_CHOICES,
            "DATASET.SUBSAMPLE_CLASSES")
    shots = cfg.DATASET.NUM_SHOTS
    if not isinstance(shots, int) or isinstance(shots, bool):
        raise DaptInitError(f"DATASET.NUM_SHOTS is {shots!r}; it must be a whole number of "
                            "images per class, e.g. 'DATASET.NUM_SHOTS 16'.")
    if training and shots < 1:
        raise DaptInitError(
            f"DATASET.NUM_SHOTS is {cfg.DATASET.NUM_SHOTS}; DAPT_Init trains few-shot, so "
            "give at least 1 shot per class (e.g. 'DATASET.NUM_SHOTS 16'), or run "
            "--eval-only with --model-dir to test trained prompts."
        )
    _validate_backbone(cfg)


def _validate_backbone(cfg: Any) -> None:
    weights = cfg.TRAINER.DAPT_INIT.CLIP_WEIGHTS
    name = cfg.MODEL.BACKBONE.NAME
    if weights:
        if not os.path.isfile(weights):
            raise DaptInitError(
                f"TRAINER.DAPT_INIT.CLIP_WEIGHTS is {weights!r}, but no such file exists. "
                "Give the path of a CLIP JIT archive or state dict, or set it to '' to "
                "load MODEL.BACKBONE.NAME through clip's downloader."
            )
        return  # the resolution is checked against the file once it is loaded
    if name not in VIT_RESOLUTIONS:
        raise DaptInitError(
            f"MODEL.BACKBONE.NAME is {name!r}; DAPT_Init needs a CLIP vision transformer: "
            f"{', '.join(VIT_RESOLUTIONS)}. Or point TRAINER.DAPT_INIT.CLIP_WEIGHTS at a "
            "local CLIP file."
        )
    check_input_size(cfg, VIT_RESOLUTIONS[name], name)


def check_input_size(cfg: Any, clip_resolution: int, source: str) -> None:
    """CLIP's positional embedding fixes the input size: the config must agree."""
    size = tuple(cfg.INPUT.SIZE)
    if size != (clip_resolution, clip_resolution):
        raise DaptInitError(
            f"INPUT.SIZE is {size}, but the CLIP model ({source}) takes "
            f"{clip_resolution}x{clip_resolution} images. Set "
            f"'INPUT.SIZE ({clip_resolution}, {clip_resolution})'."
        )
