"""The per-epoch learning rate equals the toolbox's schedule; its state is weights_only-safe."""
from __future__ import annotations

import io
import math

import pytest
import torch
from yacs.config import CfgNode

from tests.toolbox import requires_toolbox
from trainers.dapt_init.schedule import EpochLR


def optim_cfg(**changes) -> CfgNode:
    cfg = CfgNode(dict(LR=2.0, MAX_EPOCH=10, LR_SCHEDULER="cosine", STEPSIZE=(-1,), GAMMA=0.1,
                       WARMUP_EPOCH=1, WARMUP_TYPE="constant", WARMUP_CONS_LR=1e-5,
                       WARMUP_MIN_LR=1e-5, WARMUP_RECOUNT=True))
    cfg.update(changes)
    return cfg


def chained_cosine_step(lr: float, counter: int, cfg: CfgNode) -> float:
    """torch's CosineAnnealingLR recursion (eta_min 0): the LR after reaching ``counter``."""
    t = cfg.MAX_EPOCH
    return lr * (1 + math.cos(math.pi * counter / t)) / (1 + math.cos(math.pi * (counter - 1) / t))


def toolbox_schedule(cfg: CfgNode) -> list[float]:
    """Dassl's chained schedulers, replayed step by step.

    The cosine successor is built first (LR = base, counter 0), then its counter is set to W
    unless WARMUP_RECOUNT. The warm-up scheduler starts at step 0 with the warm-up LR; each
    step() while its own counter is below W advances it (at W it reports the successor's
    current LR, the base LR); from then on every step() advances the successor's recursion.
    """
    if cfg.WARMUP_EPOCH <= 0:
        lrs, lr = [cfg.LR], cfg.LR
        for counter in range(1, cfg.MAX_EPOCH):
            lr = chained_cosine_step(lr, counter, cfg)
            lrs.append(lr)
        return lrs
    successor_lr = cfg.LR
    successor_counter = 0 if cfg.WARMUP_RECOUNT else cfg.WARMUP_EPOCH
    warmup_counter, lrs = 0, [cfg.WARMUP_CONS_LR]
    for _ in range(cfg.MAX_EPOCH - 1):
        if warmup_counter < cfg.WARMUP_EPOCH:
            warmup_counter += 1
            lrs.append(cfg.WARMUP_CONS_LR if warmup_counter < cfg.WARMUP_EPOCH else successor_lr)
        else:
            successor_counter += 1
            successor_lr = chained_cosine_step(successor_lr, successor_counter, cfg)
            lrs.append(successor_lr)
    return lrs


def run_epochs(cfg: CfgNode) -> list[float]:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=cfg.LR)
    scheduler = EpochLR(optimizer, cfg)
    lrs = []
    for _ in range(cfg.MAX_EPOCH):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.mark.parametrize("changes", [{}, {"WARMUP_EPOCH": 3}, {"WARMUP_RECOUNT": False},
                                     {"WARMUP_EPOCH": 2, "WARMUP_RECOUNT": False},
                                     {"WARMUP_EPOCH": 0}, {"MAX_EPOCH": 50, "LR": 20.0}])
def test_lr_per_epoch_matches_the_toolbox_schedule(changes):
    cfg = optim_cfg(**changes)
    assert run_epochs(cfg) == pytest.approx(toolbox_schedule(cfg), rel=1e-9, abs=1e-12)


def test_dapt_settings_warm_up_at_1e_5_then_start_cosine_at_the_base_lr():
    lrs = run_epochs(optim_cfg())
    assert lrs[0] == 1e-5 and lrs[1] == 2.0 and lrs[2] < 2.0 and lrs[-1] > 0


def test_scheduler_state_loads_with_weights_only_and_resumes_the_same_schedule():
    cfg = optim_cfg()
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=cfg.LR, momentum=0.9)
    scheduler = EpochLR(optimizer, cfg)
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    buffer = io.BytesIO()
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)

    resumed_param = torch.nn.Parameter(torch.zeros(1))
    resumed_optimizer = torch.optim.SGD([resumed_param], lr=cfg.LR, momentum=0.9)
    resumed = EpochLR(resumed_optimizer, cfg)
    resumed_optimizer.load_state_dict(state["optimizer"])
    resumed.load_state_dict(state["scheduler"])
    assert resumed_optimizer.param_groups[0]["lr"] == pytest.approx(toolbox_schedule(cfg)[4])
    resumed_optimizer.step()
    resumed.step()
    assert resumed_optimizer.param_groups[0]["lr"] == pytest.approx(toolbox_schedule(cfg)[5])


@requires_toolbox
@pytest.mark.parametrize("changes", [{}, {"WARMUP_EPOCH": 2, "WARMUP_RECOUNT": False},
                                     {"MAX_EPOCH": 50, "LR": 20.0}])
def test_lr_per_epoch_matches_the_toolboxs_own_scheduler_classes(changes, monkeypatch):
    """Against Dassl's ConstantWarmupScheduler + CosineAnnealingLR themselves.

    They pass ``verbose`` positionally, which torch >= 2.7 no longer accepts; a shim that
    drops that argument lets the toolbox's own classes run unchanged.
    """
    from torch.optim import lr_scheduler

    from dassl.optim import build_lr_scheduler

    original_init = lr_scheduler.LRScheduler.__init__

    def init_ignoring_verbose(self, optimizer, last_epoch=-1, verbose=None):
        original_init(self, optimizer, last_epoch)

    monkeypatch.setattr(lr_scheduler.LRScheduler, "__init__", init_ignoring_verbose)
    cfg = optim_cfg(**changes)
    cfg.WARMUP_MIN_LR = 1e-5
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=cfg.LR)
    toolbox = build_lr_scheduler(optimizer, cfg)
    toolbox_lrs = []
    for _ in range(cfg.MAX_EPOCH):
        toolbox_lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        toolbox.step()
    assert run_epochs(cfg) == pytest.approx(toolbox_lrs, rel=1e-9, abs=1e-12)
