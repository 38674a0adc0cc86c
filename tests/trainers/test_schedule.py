"""The per-epoch learning rate equals the toolbox's schedule; its state is weights_only-safe."""
from __future__ import annotations

import io
import math

import pytest
import torch
from yacs.config import CfgNode

from tests.support.toolbox import requires_toolbox
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
@pytest.mark.parametrize("changes", [
    {}, {"WARMUP_EPOCH": 2, "WARMUP_RECOUNT": False}, {"MAX_EPOCH": 50, "LR": 20.0},
    {"WARMUP_TYPE": "linear", "WARMUP_EPOCH": 3, "WARMUP_MIN_LR": 1e-4},
    {"WARMUP_TYPE": "linear", "WARMUP_EPOCH": 2, "WARMUP_RECOUNT": False},
    {"LR_SCHEDULER": "single_step", "STEPSIZE": 3, "GAMMA": 0.5},
    {"LR_SCHEDULER": "single_step", "STEPSIZE": (4,), "WARMUP_EPOCH": 5, "WARMUP_RECOUNT": False},
    {"LR_SCHEDULER": "single_step", "STEPSIZE": 3, "WARMUP_EPOCH": 0},
    {"LR_SCHEDULER": "multi_step", "STEPSIZE": (2, 5, 5), "GAMMA": 0.1},
    {"LR_SCHEDULER": "multi_step", "STEPSIZE": (3, 6), "WARMUP_TYPE": "linear",
     "WARMUP_EPOCH": 2, "WARMUP_RECOUNT": False},
])
def test_lr_per_epoch_matches_the_toolboxs_own_scheduler_classes(changes, monkeypatch):
    """Against Dassl's warm-up schedulers and torch's cosine / step schedulers themselves.

    They pass ``verbose`` positionally, which torch >= 2.7 no longer accepts; a shim that
    drops that argument lets the toolbox's own classes run unchanged.
    """
    from torch.optim import lr_scheduler

    from dassl.optim import build_lr_scheduler

    original_init = lr_scheduler.LRScheduler.__init__

    def init_ignoring_verbose(self, optimizer, last_epoch=-1, verbose=None):
        original_init(self, optimizer, last_epoch)

    monkeypatch.setattr(lr_scheduler.LRScheduler, "__init__", init_ignoring_verbose)
    cfg = optim_cfg(**{"WARMUP_MIN_LR": 1e-5, **changes})
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=cfg.LR)
    toolbox = build_lr_scheduler(optimizer, cfg)
    toolbox_lrs = []
    for _ in range(cfg.MAX_EPOCH):
        toolbox_lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        toolbox.step()
    assert run_epochs(cfg) == pytest.approx(toolbox_lrs, rel=1e-9, abs=1e-12)


def lr_list(cfg: CfgNode) -> list[float]:
    return [float(lr) for lr in run_epochs(cfg)]


def test_linear_warm_up_ramps_from_the_minimum_to_the_base_lr():
    # Dassl's linear warm-up: WARMUP_MIN_LR at epoch 0, then base * e / W, then the base LR.
    cfg = optim_cfg(WARMUP_EPOCH=4, WARMUP_TYPE="linear", WARMUP_MIN_LR=1e-4, LR=2.0,
                    MAX_EPOCH=6, WARMUP_RECOUNT=True)
    lrs = lr_list(cfg)
    assert lrs[:5] == pytest.approx([1e-4, 0.5, 1.0, 1.5, 2.0], rel=1e-12)
    # Recounted cosine: the epoch after the base LR has taken one cosine step over 6.
    assert lrs[5] == pytest.approx(2.0 * (1 + math.cos(math.pi / 6)) / 2, rel=1e-12)


@pytest.mark.parametrize("stepsize, expected_factors", [
    (3, [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]),
    ((2,), [1, 1, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125]),
    (-1, [1] * 8),  # stepsize <= 0: one step at MAX_EPOCH, i.e. never within the run
])
def test_single_step_decays_by_gamma_every_stepsize_epochs(stepsize, expected_factors):
    cfg = optim_cfg(LR_SCHEDULER="single_step", STEPSIZE=stepsize, GAMMA=0.5, WARMUP_EPOCH=0,
                    MAX_EPOCH=8, LR=4.0)
    assert lr_list(cfg) == pytest.approx([4.0 * f for f in expected_factors], rel=1e-12)


def test_multi_step_decays_by_gamma_at_each_milestone():
    cfg = optim_cfg(LR_SCHEDULER="multi_step", STEPSIZE=(2, 5, 5), GAMMA=0.1, WARMUP_EPOCH=0,
                    MAX_EPOCH=7, LR=1.0)
    # Milestone 2 once, milestone 5 twice (listed twice: gamma squared there).
    assert lr_list(cfg) == pytest.approx([1, 1, 0.1, 0.1, 0.1, 0.001, 0.001], rel=1e-12)


def test_step_schedules_after_a_warm_up_without_recount_skip_the_warm_up_epochs():
    # WARMUP_RECOUNT False: the step schedule's counter starts at W = 3 and the base LR holds
    # there, although 3 is past the first step (2): torch's chained StepLR only decays when
    # its counter reaches a multiple of the step size, at 4 and 6.
    cfg = optim_cfg(LR_SCHEDULER="single_step", STEPSIZE=2, GAMMA=0.5, WARMUP_EPOCH=3,
                    WARMUP_TYPE="constant", WARMUP_CONS_LR=1e-3, WARMUP_RECOUNT=False,
                    MAX_EPOCH=8, LR=4.0)
    assert lr_list(cfg) == pytest.approx([1e-3, 1e-3, 1e-3, 4.0, 2.0, 2.0, 1.0, 1.0], rel=1e-12)
