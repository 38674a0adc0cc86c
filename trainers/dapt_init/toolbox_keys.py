"""The toolbox's config keys a DAPT_Init run reads, each with its type and allowed values.

Dassl reads these keys where it uses them (building the optimizer, the loaders, the
transforms, the test), so a bad value today ends in a traceback deep in torch or, worse, in a
run that finishes with a meaningless number (a negative LR, an infinite LR, zero epochs).
``TOOLBOX_KEYS`` is the one declarative table of them; ``validate_toolbox_keys`` checks it
before anything is loaded or written, naming the key, the value and what is allowed. It imports
nothing heavy (no torch, no toolbox), so the scripts' checks stay fast.

The upper bounds are generous sanity bounds, far above any published recipe (DAPT's largest
LR is 20, its largest loss weight 100): a value beyond them is a typo or an exponent gone
wrong, and would overflow or exhaust memory rather than train.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

from .errors import DaptInitError

# The toolbox's own names (dassl.optim.AVAI_OPTIMS, dassl.data.samplers.build_sampler,
# dassl.data.transforms.AVAI_CHOICES / INTERPOLATION_MODES, SimpleTrainer's COUNT_ITER and
# FINAL_MODEL branches), copied so that checking them needs no torch import.
OPTIMIZERS = ("adam", "amsgrad", "sgd", "rmsprop", "radam", "adamw")
SCHEDULERS = ("cosine", "single_step", "multi_step")  # EpochLR's (schedule.py)
WARMUP_TYPES = ("constant", "linear")
SAMPLERS = ("RandomSampler", "SequentialSampler", "RandomDomainSampler", "SeqDomainSampler",
            "RandomClassSampler")
TRANSFORMS = ("random_flip", "random_resized_crop", "normalize", "instance_norm",
              "random_crop", "random_translation", "center_crop", "cutout", "imagenet_policy",
              "cifar10_policy", "svhn_policy", "randaugment", "randaugment_fixmatch",
              "randaugment2", "gaussian_noise", "colorjitter", "randomgrayscale",
              "gaussian_blur")
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
COUNT_ITER = ("train_x", "train_u", "smaller_one")
FINAL_MODELS = ("last_step", "best_val")
TEST_SPLITS = ("val", "test")

MAX_LR = 1e3
MAX_EPOCHS = 100_000
MAX_BATCH = 65_536
MAX_WORKERS = 256
MAX_IMAGE_SIZE = 4096


@dataclass(frozen=True)
class Rule:
    """What one key takes.

    ``kind``: ``int``, ``float``, ``bool``, ``choice``, ``pair`` (two whole numbers, e.g.
    INPUT.SIZE), ``fraction_pair`` (two numbers low <= high, e.g. RRCROP_SCALE), ``triple``
    (three numbers, e.g. PIXEL_MEAN), ``int_list`` (a whole number or a list of them) or
    ``choice_list`` (a list of ``choices``). Numbers must be finite and within
    [``low``, ``high``]; ``open_low`` makes the lower end exclusive (``> low``), ``open_high``
    the upper one.
    """

    key: str
    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    example: str = ""
    open_low: bool = False
    open_high: bool = False
    note: str = ""

    def number_text(self, whole: bool) -> str:
        noun = "a whole number" if whole else "a finite number"
        if self.low is not None and self.high is not None:
            left, right = "(" if self.open_low else "[", ")" if self.open_high else "]"
            return f"{noun} in {left}{_num(self.low)}, {_num(self.high)}{right}"
        if self.low is not None:
            return f"{noun} {'above' if self.open_low else 'of at least'} {_num(self.low)}"
        return noun

    def allowed(self) -> str:
        if self.kind in ("int", "float"):
            text = self.number_text(self.kind == "int")
        elif self.kind == "bool":
            text = "True or False"
        elif self.kind == "choice":
            text = "one of " + ", ".join(self.choices)
        elif self.kind == "choice_list":
            text = "a list of " + ", ".join(self.choices)
        elif self.kind == "pair":
            text = f"two whole numbers in [{_num(self.low)}, {_num(self.high)}]"
        elif self.kind == "fraction_pair":
            text = (f"two numbers low, high with {_num(self.low)} < low <= high <= "
                    f"{_num(self.high)}")
        elif self.kind == "triple":
            text = "three " + self.number_text(False).replace("a finite number", "numbers", 1)
        else:  # int_list
            text = ("a whole number or a list of them, each "
                    + self.number_text(True).replace("a whole number ", "", 1))
        return text + (f" ({self.note})" if self.note else "")


def _num(value: float) -> str:
    # Whole bounds in full (SEED's 4294967295 must not print as 4.29497e+09).
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# Every toolbox key a DAPT_Init run reads (train or --eval-only), with what it may hold.
# TRAIN_U / domain-generalisation keys are not listed: few-shot data sets have no unlabelled
# split, so the toolbox never reads them for this trainer.
TOOLBOX_KEYS: tuple[Rule, ...] = (
    # Optimizer (dassl.optim.build_optimizer) and schedule (schedule.EpochLR).
    Rule("OPTIM.NAME", "choice", choices=OPTIMIZERS, example="sgd"),
    Rule("OPTIM.LR", "float", 0, MAX_LR, open_low=True, example="0.002"),
    Rule("OPTIM.WEIGHT_DECAY", "float", 0, 1, example="0.0005"),
    Rule("OPTIM.MOMENTUM", "float", 0, 1, example="0.9"),
    Rule("OPTIM.SGD_DAMPNING", "float", 0, 1, example="0"),
    Rule("OPTIM.SGD_NESTEROV", "bool", example="False"),
    Rule("OPTIM.RMSPROP_ALPHA", "float", 0, 1, example="0.99"),
    Rule("OPTIM.ADAM_BETA1", "float", 0, 1, open_high=True, example="0.9"),
    Rule("OPTIM.ADAM_BETA2", "float", 0, 1, open_high=True, example="0.999"),
    Rule("OPTIM.STAGED_LR", "bool", example="False"),
    Rule("OPTIM.BASE_LR_MULT", "float", 0, MAX_LR, example="0.1"),
    Rule("OPTIM.LR_SCHEDULER", "choice", choices=SCHEDULERS, example="cosine"),
    Rule("OPTIM.STEPSIZE", "int_list", -1, MAX_EPOCHS, example="(-1,)",
         note="epochs; -1: MAX_EPOCH"),
    Rule("OPTIM.GAMMA", "float", 0, 1, open_low=True, example="0.1"),
    Rule("OPTIM.MAX_EPOCH", "int", 1, MAX_EPOCHS, example="50"),
    Rule("OPTIM.WARMUP_EPOCH", "int", -1, MAX_EPOCHS, example="1",
         note="-1 or 0: no warm-up"),
    Rule("OPTIM.WARMUP_TYPE", "choice", choices=WARMUP_TYPES, example="constant"),
    Rule("OPTIM.WARMUP_CONS_LR", "float", 0, MAX_LR, example="1e-5"),
    Rule("OPTIM.WARMUP_MIN_LR", "float", 0, MAX_LR, example="1e-5"),
    Rule("OPTIM.WARMUP_RECOUNT", "bool", example="True"),
    # Data loaders (dassl.data.data_manager).
    Rule("DATALOADER.NUM_WORKERS", "int", 0, MAX_WORKERS, example="8"),
    Rule("DATALOADER.TRAIN_X.BATCH_SIZE", "int", 1, MAX_BATCH, example="32"),
    Rule("DATALOADER.TRAIN_X.SAMPLER", "choice", choices=SAMPLERS, example="RandomSampler"),
    Rule("DATALOADER.TRAIN_X.N_DOMAIN", "int", 0, MAX_BATCH, example="0"),
    Rule("DATALOADER.TRAIN_X.N_INS", "int", 1, MAX_BATCH, example="16"),
    Rule("DATALOADER.TEST.BATCH_SIZE", "int", 1, MAX_BATCH, example="100"),
    Rule("DATALOADER.TEST.SAMPLER", "choice", choices=SAMPLERS, example="SequentialSampler"),
    Rule("DATALOADER.K_TRANSFORMS", "int", 1, 64, example="1"),
    Rule("DATALOADER.RETURN_IMG0", "bool", example="False"),
    # Transforms (dassl.data.transforms.build_transform).
    Rule("INPUT.SIZE", "pair", 1, MAX_IMAGE_SIZE, example="(224, 224)"),
    Rule("INPUT.INTERPOLATION", "choice", choices=INTERPOLATIONS, example="bicubic"),
    Rule("INPUT.PIXEL_MEAN", "triple", 0, 1, example="[0.48145466, 0.4578275, 0.40821073]"),
    Rule("INPUT.PIXEL_STD", "triple", 0, 10, open_low=True,
         example="[0.26862954, 0.26130258, 0.27577711]"),
    Rule("INPUT.TRANSFORMS", "choice_list", choices=TRANSFORMS,
         example='["random_resized_crop", "random_flip", "normalize"]'),
    Rule("INPUT.NO_TRANSFORM", "bool", example="False"),
    Rule("INPUT.RRCROP_SCALE", "fraction_pair", 0, 1, example="(0.08, 1.0)"),
    Rule("INPUT.CROP_PADDING", "int", 0, MAX_IMAGE_SIZE, example="4"),
    Rule("INPUT.COLORJITTER_B", "float", 0, 10, example="0.4"),
    Rule("INPUT.COLORJITTER_C", "float", 0, 10, example="0.4"),
    Rule("INPUT.COLORJITTER_S", "float", 0, 10, example="0.4"),
    Rule("INPUT.COLORJITTER_H", "float", 0, 0.5, example="0.1"),
    Rule("INPUT.RGS_P", "float", 0, 1, example="0.2"),
    Rule("INPUT.GB_P", "float", 0, 1, example="0.5"),
    Rule("INPUT.GB_K", "int", 1, 255, example="21"),
    Rule("INPUT.CUTOUT_N", "int", 0, 1000, example="1"),
    Rule("INPUT.CUTOUT_LEN", "int", 0, MAX_IMAGE_SIZE, example="16"),
    Rule("INPUT.RANDAUGMENT_N", "int", 0, 100, example="2"),
    Rule("INPUT.RANDAUGMENT_M", "int", 0, 30, example="10"),
    Rule("INPUT.GN_MEAN", "float", -10, 10, example="0.0"),
    Rule("INPUT.GN_STD", "float", 0, 10, example="0.15"),
    # Training loop, test and run (dassl.engine.SimpleTrainer).
    Rule("TRAIN.PRINT_FREQ", "int", 1, 10**9, example="5"),
    Rule("TRAIN.CHECKPOINT_FREQ", "int", 0, MAX_EPOCHS, example="0", note="0: last epoch only"),
    Rule("TRAIN.COUNT_ITER", "choice", choices=COUNT_ITER, example="train_x"),
    Rule("TEST.FINAL_MODEL", "choice", choices=FINAL_MODELS, example="last_step"),
    Rule("TEST.SPLIT", "choice", choices=TEST_SPLITS, example="test"),
    Rule("TEST.NO_TEST", "bool", example="False"),
    Rule("TEST.PER_CLASS_RESULT", "bool", example="False"),
    Rule("TEST.COMPUTE_CMAT", "bool", example="False"),
    Rule("SEED", "int", -1, 2**32 - 1, example="1", note="-1: not fixed"),
    Rule("USE_CUDA", "bool", example="True"),
    Rule("VERBOSE", "bool", example="True"),
)


def _lookup(cfg: Any, key: str) -> tuple[bool, Any]:
    node = cfg
    for part in key.split("."):
        try:
            if part not in node:
                return False, None
        except TypeError:
            return False, None
        node = node[part]
    return True, node


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    # bool is an int to Python, never a number to a user; nan and inf pass no range honestly.
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _in_range(rule: Rule, value: float) -> bool:
    if rule.low is not None and (value <= rule.low if rule.open_low else value < rule.low):
        return False
    if rule.high is not None and (value >= rule.high if rule.open_high else value > rule.high):
        return False
    return True


def _sequence(value: Any, length: int | None = None) -> bool:
    return isinstance(value, (list, tuple)) and (length is None or len(value) == length)


def value_ok(rule: Rule, value: Any) -> bool:
    """Whether ``value`` is allowed by ``rule``."""
    kind = rule.kind
    if kind == "int":
        return _is_int(value) and _in_range(rule, value)
    if kind == "float":
        return _is_real(value) and _in_range(rule, value)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "choice":
        return isinstance(value, str) and value in rule.choices
    if kind == "choice_list":
        return _sequence(value) and all(isinstance(v, str) and v in rule.choices for v in value)
    if kind == "pair":
        return _sequence(value, 2) and all(_is_int(v) and _in_range(rule, v) for v in value)
    if kind == "fraction_pair":
        return (_sequence(value, 2) and all(_is_real(v) for v in value)
                and rule.low < value[0] <= value[1] <= rule.high)
    if kind == "triple":
        return _sequence(value, 3) and all(_is_real(v) and _in_range(rule, v) for v in value)
    if kind == "int_list":
        items = value if _sequence(value) else [value]
        return len(items) > 0 and all(_is_int(v) and _in_range(rule, v) for v in items)
    raise ValueError(f"unknown rule kind {kind!r}")  # a bug in the table, not a user error


def check_rules(cfg: Any, rules: Iterable[Rule]) -> None:
    """Raise ``DaptInitError`` for the first key whose value ``rules`` do not allow.

    A key the config lacks is skipped: a host's older toolbox, or a partial config in a
    unit test, does not read it either."""
    for rule in rules:
        present, value = _lookup(cfg, rule.key)
        if present and not value_ok(rule, value):
            raise DaptInitError(
                f"{rule.key} is {value!r}; it must be {rule.allowed()}, "
                f"e.g. '{rule.key} {rule.example}'."
            )


def validate_toolbox_keys(cfg: Any) -> None:
    """Check every toolbox key a DAPT_Init run reads (``TOOLBOX_KEYS``), then the rules
    between keys; cheap, loads nothing."""
    check_rules(cfg, TOOLBOX_KEYS)
    present, nesterov = _lookup(cfg, "OPTIM.SGD_NESTEROV")
    if present and nesterov and _lookup(cfg, "OPTIM.NAME")[1] == "sgd":
        # torch refuses Nesterov without momentum or with dampening (a traceback at build).
        momentum, dampening = cfg.OPTIM.MOMENTUM, cfg.OPTIM.SGD_DAMPNING
        if momentum <= 0 or dampening != 0:
            raise DaptInitError(
                f"OPTIM.SGD_NESTEROV is True with OPTIM.MOMENTUM {momentum!r} and "
                f"OPTIM.SGD_DAMPNING {dampening!r}; Nesterov momentum needs a momentum above "
                "0 and a dampening of 0, e.g. 'OPTIM.MOMENTUM 0.9 OPTIM.SGD_DAMPNING 0'."
            )
