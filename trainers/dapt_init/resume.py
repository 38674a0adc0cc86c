"""Save a run's checkpoints, resume it exactly, and load trained prompts for an evaluation.

A checkpoint holds, besides the toolbox's keys, the run's identity (a resume by another run is
refused, naming the keys that differ) and every random generator's state, so a resumed run
draws the batches, augmentations and dropout an uninterrupted run draws. The file layout is
``checkpoint.py``'s; this module decides what goes in and what a resume restores.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

from .checkpoint import (checkpoint_name, latest_checkpoint, load_prompt_state,
                         read_checkpoint)
from .errors import DaptInitError
from .rng import capture_rng_state, restore_rng_state
from .runstate import RunIdentity, identity_differences, refuse_other_weights, stored_weights

BEST_CHECKPOINT = "model-best.pth.tar"  # the toolbox's name for the best validation epoch
# Names an older checkpoint's "run" record used for config keys.
LEGACY_KEYS = {"INIT_METHOD": "TRAINER.DAPT_INIT.INIT_METHOD"}


def checkpoint_state(module: nn.Module, optim: Any, sched: Any, scaler: Any, epoch: int,
                     val_result: float | None, identity: RunIdentity,
                     device: torch.device) -> dict[str, Any]:
    """What a checkpoint after ``epoch`` epochs holds (tensors and plain values only)."""
    state = {
        "state_dict": module.state_dict(),
        "epoch": epoch,
        "optimizer": optim.state_dict() if optim is not None else None,
        "scheduler": sched.state_dict() if sched is not None else None,
        "val_result": val_result,
        "run": identity.record(),  # what a resumed run must share with this one
        "rng": capture_rng_state(device),  # bit-identical resume
    }
    if scaler is not None:
        state["scaler"] = scaler.state_dict()
    return state


def check_resumable(checkpoint: dict[str, Any], path: str, identity: RunIdentity) -> None:
    """Refuse a checkpoint written by a run of other settings, naming the keys that differ."""
    stored = checkpoint.get("run") or {}
    if "fingerprint_keys" in stored:
        changed = identity_differences(stored, identity)
    else:  # an older checkpoint: compare the few keys it recorded
        keys, changed = identity.keys, []
        for key, value in stored.items():
            name = LEGACY_KEYS.get(key, key)
            if name in keys and keys[name] != value:
                changed.append(f"{name} {value!r} -> {keys[name]!r}")
    if changed:
        raise DaptInitError(
            f"{path} belongs to another run ({'; '.join(changed)}), so it is not resumed. "
            "Give this run its own --output-dir (the scripts name folders by dataset, init, "
            "config, shots, seed and TAG), or use the original settings to finish that run."
        )


def best_val_result(folder: str) -> float | None:
    """The best validation result so far (the toolbox's best checkpoint), kept across a
    resume so that a worse epoch never replaces the best."""
    best = os.path.join(folder, BEST_CHECKPOINT)
    if os.path.isfile(best):
        val = read_checkpoint(best).get("val_result")
        if isinstance(val, (int, float)):
            print(f"Best validation result so far: {val:.1f} ({best})")
            return val
    return None


@dataclass(frozen=True)
class Resumed:
    path: str  # the checkpoint resumed from
    epoch: int  # epochs done
    best_val: float | None  # best validation result so far, if any


def resume_from(folder: str, module: nn.Module, optim: Any, sched: Any, scaler: Any,
                identity: RunIdentity, device: torch.device) -> Resumed | None:
    """Load the latest checkpoint in ``folder`` into the prompts, optimizer, scheduler, loss
    scaler and random generators; None (train from scratch) when there is none."""
    path = latest_checkpoint(folder)
    if path is None:
        print("No checkpoint found, train from scratch")
        return None
    checkpoint = read_checkpoint(path)
    check_resumable(checkpoint, path, identity)
    load_prompt_state(module, checkpoint["state_dict"], path)
    if scaler is not None and checkpoint.get("scaler"):
        scaler.load_state_dict(checkpoint["scaler"])
    best_val = best_val_result(folder)
    if optim is not None and checkpoint.get("optimizer"):
        optim.load_state_dict(checkpoint["optimizer"])
    if sched is not None and checkpoint.get("scheduler"):
        sched.load_state_dict(checkpoint["scheduler"])
    if checkpoint.get("rng"):
        restore_rng_state(checkpoint["rng"], device)
    else:
        print(f"Note: {path} holds no random-generator state (an older checkpoint); "
              "the resumed epochs draw other batches than an uninterrupted run")
    print(f"Resuming from {path} (epoch {checkpoint['epoch']} done)")
    return Resumed(path, checkpoint["epoch"], best_val)


def load_trained_prompts(folder: str, file_name: str, module: nn.Module,
                         weights: Mapping[str, Any] | None = None) -> int:
    """Load the prompts of ``folder/file_name`` for an evaluation; the epochs they trained.
    With ``weights`` (this evaluation's CLIP), a checkpoint recording other weights is
    refused: its prompts mean something else under them (the run's result.json may be gone,
    its checkpoint still says)."""
    path = os.path.join(folder, file_name)
    if not os.path.isfile(path):
        found = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
        choices = [f for f in found if f.startswith("model")]
        raise DaptInitError(
            f"no checkpoint {path}. Found: {', '.join(choices) or 'none'}. Give "
            "--model-dir the run's output folder and --load-epoch an epoch saved there "
            "(the last epoch is always saved)."
        )
    checkpoint = read_checkpoint(path)
    if weights is not None and isinstance(checkpoint.get("run"), dict):
        refuse_other_weights(os.path.dirname(os.path.normpath(folder)),
                             stored_weights(checkpoint["run"]), weights)
    note = precision_note(checkpoint["state_dict"], module.state_dict())
    load_prompt_state(module, checkpoint["state_dict"], path)
    if note:
        print(note)
    val = checkpoint.get("val_result")
    extra = f", val accuracy {val:.1f}" if isinstance(val, (int, float)) else ""
    print(f"Loaded {path} (epoch {checkpoint['epoch']}{extra})")
    return checkpoint["epoch"]


def precision_note(saved: dict[str, Any], own: dict[str, torch.Tensor]) -> str | None:
    """One line when an evaluation rounds trained prompts to a narrower dtype (fp32 / amp
    prompts tested under fp16); a widening load (fp16 into fp32) is exact and says nothing."""
    narrowed = sorted(
        name for name, tensor in saved.items()
        if isinstance(tensor, torch.Tensor) and name in own and tensor.is_floating_point()
        and torch.finfo(own[name].dtype).bits < torch.finfo(tensor.dtype).bits)
    if not narrowed:
        return None
    old, new = saved[narrowed[0]].dtype, own[narrowed[0]].dtype
    return (f"Note: the trained prompts ({', '.join(narrowed)}) are {old}, this run's model "
            f"is {new}: they are rounded to {new} for this evaluation (set "
            "TRAINER.DAPT_INIT.PREC to the training run's to test them unrounded)")


def toolbox_keeps(epoch: int, max_epoch: int, checkpoint_freq: int) -> bool:
    """Checkpoints the toolbox would have written; other resume points are transient."""
    return epoch == max_epoch or (checkpoint_freq > 0 and epoch % checkpoint_freq == 0)


class ResumePoints:
    """Checkpoints in ``folder`` this process wrote or resumed from (same run: the
    fingerprint matched); only these are ever deleted, and a file a killed process left is
    replaced, not kept."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.paths: set[str] = set()

    def add(self, path: str) -> None:
        self.paths.add(path)

    def holds(self, epoch: int) -> bool:
        return os.path.join(self.folder, checkpoint_name(epoch)) in self.paths

    def remove(self, epoch: int) -> None:
        """Delete ``epoch``'s checkpoint if it is one of these (never another run's file)."""
        path = os.path.join(self.folder, checkpoint_name(epoch))
        if path in self.paths:
            os.remove(path)
            self.paths.discard(path)
