"""Per-epoch learning rate with a warm-up, equal to the toolbox's own schedule.

Dassl's warm-up scheduler fails on current torch (it passes ``verbose`` positionally) and
pickles its successor scheduler into checkpoints, which ``weights_only`` loading refuses.
``EpochLR`` computes the same per-epoch values in closed form and keeps only plain numbers
in its state, so checkpoints load with ``weights_only=True``.

Dassl's semantics, for warm-up length W: epochs 0..W-1 run at the warm-up LR; epoch W runs at
the base LR; each later epoch advances the successor schedule by one step. The successor
starts counting at 0, or at W when ``WARMUP_RECOUNT`` is off; torch's schedulers are chained
(each step scales the current LR), so starting at W from the base LR scales the curve by
1 / factor(W). Cosine anneals over T = MAX_EPOCH steps to 0.
"""
from __future__ import annotations

import bisect
import math
from typing import Any, Mapping

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from .errors import DaptInitError
from .toolbox_keys import SCHEDULERS  # one owner: the toolbox key table


def successor_factor(kind: str, start: int, step: int, max_epoch: int, stepsize: Any,
                     gamma: float) -> float:
    """Multiplier of the base LR after the main schedule moved from ``start`` to ``step``.

    torch's schedulers are chained: from the base LR at counter ``start`` each step applies
    factor(k) / factor(k - 1), so the product telescopes to factor(step) / factor(start).
    """
    if kind == "cosine":
        return (1.0 + math.cos(math.pi * step / max_epoch)) / (
            1.0 + math.cos(math.pi * start / max_epoch))
    if kind == "single_step":
        size = stepsize[-1] if isinstance(stepsize, (list, tuple)) else stepsize
        size = size if size > 0 else max_epoch
        return gamma ** (step // size - start // size)
    if kind == "multi_step":
        milestones = sorted(stepsize)
        return gamma ** (bisect.bisect_right(milestones, step)
                         - bisect.bisect_right(milestones, start))
    raise DaptInitError(f"OPTIM.LR_SCHEDULER is {kind!r}; valid values are {', '.join(SCHEDULERS)}.")


def lr_at_epoch(epoch: int, base_lr: float, optim: Mapping[str, Any]) -> float:
    """Learning rate used during 0-based ``epoch``, as Dassl's build_lr_scheduler gives it.

    ``optim`` maps the OPTIM key names to values (an OPTIM config node or ``EpochLR.settings``).
    """
    warmup = optim["WARMUP_EPOCH"]
    schedule = (optim["LR_SCHEDULER"], optim["MAX_EPOCH"], optim["STEPSIZE"], optim["GAMMA"])
    if warmup <= 0:
        return base_lr * successor_factor(schedule[0], 0, epoch, *schedule[1:])
    if epoch < warmup:
        warmup_type = optim["WARMUP_TYPE"]
        if warmup_type == "constant":
            return optim["WARMUP_CONS_LR"]
        if warmup_type == "linear":
            return optim["WARMUP_MIN_LR"] if epoch == 0 else base_lr * epoch / warmup
        raise DaptInitError(
            f"OPTIM.WARMUP_TYPE is {warmup_type!r}; valid values are constant, linear."
        )
    start = 0 if optim["WARMUP_RECOUNT"] else warmup
    return base_lr * successor_factor(schedule[0], start, start + epoch - warmup, *schedule[1:])


class EpochLR(LRScheduler):
    """Stepped once per epoch; ``last_epoch`` is the epoch about to run."""

    def __init__(self, optimizer: Optimizer, optim_cfg: Any, last_epoch: int = -1):
        # Plain copies of the few settings used, so state_dict() holds no config objects.
        self.settings = {
            "LR_SCHEDULER": optim_cfg.LR_SCHEDULER,
            "MAX_EPOCH": int(optim_cfg.MAX_EPOCH),
            "STEPSIZE": list(optim_cfg.STEPSIZE)
            if isinstance(optim_cfg.STEPSIZE, (list, tuple)) else optim_cfg.STEPSIZE,
            "GAMMA": float(optim_cfg.GAMMA),
            "WARMUP_EPOCH": int(optim_cfg.WARMUP_EPOCH),
            "WARMUP_TYPE": optim_cfg.WARMUP_TYPE,
            "WARMUP_CONS_LR": float(optim_cfg.WARMUP_CONS_LR),
            "WARMUP_MIN_LR": float(optim_cfg.WARMUP_MIN_LR),
            "WARMUP_RECOUNT": bool(optim_cfg.WARMUP_RECOUNT),
        }
        if self.settings["LR_SCHEDULER"] not in SCHEDULERS:
            raise DaptInitError(f"OPTIM.LR_SCHEDULER is {self.settings['LR_SCHEDULER']!r}; "
                                f"valid values are {', '.join(SCHEDULERS)}.")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [lr_at_epoch(self.last_epoch, base, self.settings) for base in self.base_lrs]
