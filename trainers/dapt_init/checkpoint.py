"""Checkpoints in the toolbox's layout, written atomically and read with ``weights_only``.

Layout (as Dassl's): ``<dir>/<model name>/model.pth.tar-<epoch>`` holding ``state_dict``,
``epoch``, ``optimizer``, ``scheduler`` and ``val_result``, plus a ``checkpoint`` text file
naming the latest one. Everything stored is tensors and plain values.
"""
from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from .atomic import torch_save_atomically, write_atomically
from .errors import DaptInitError

LATEST_POINTER = "checkpoint"


def checkpoint_name(epoch: int) -> str:
    return f"model.pth.tar-{epoch}"


def save_checkpoint(state: dict[str, Any], folder: str, file_name: str, latest: bool) -> str:
    """Write ``state`` atomically; ``latest`` also points the resume file at it."""
    path = os.path.join(folder, file_name)
    torch_save_atomically(state, path)
    if latest:
        def write_pointer(tmp: str) -> None:
            with open(tmp, "w") as file:
                file.write(file_name + "\n")

        write_atomically(os.path.join(folder, LATEST_POINTER), write_pointer)
    return path


def latest_checkpoint(folder: str) -> str | None:
    """Path named by the folder's resume pointer, or None when there is nothing to resume."""
    pointer = os.path.join(folder, LATEST_POINTER)
    if not os.path.isfile(pointer):
        return None
    with open(pointer) as file:
        name = file.readline().strip()
    path = os.path.join(folder, name)
    return path if name and os.path.isfile(path) else None


def read_checkpoint(path: str) -> dict[str, Any]:
    """Load on the CPU with ``weights_only=True``; a clear error for a broken file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise DaptInitError(
            f"cannot read checkpoint {path} ({error.__class__.__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}). It may be truncated by a "
            "killed run or written by another trainer; delete it (and the 'checkpoint' file "
            "beside it) to start that run again."
        ) from error


def load_prompt_state(module: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Load strictly, naming each tensor whose shape differs and both shapes."""
    own = module.state_dict()
    mismatched = [
        f"{name}: checkpoint {tuple(tensor.shape)}, model {tuple(own[name].shape)}"
        for name, tensor in state_dict.items()
        if name in own and own[name].shape != tensor.shape
    ]
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    if mismatched or missing or unexpected:
        details = "; ".join(
            mismatched
            + ([f"missing {', '.join(missing)}"] if missing else [])
            + ([f"unexpected {', '.join(unexpected)}"] if unexpected else [])
        )
        raise DaptInitError(
            f"checkpoint {source} does not fit this model ({details}). It was trained with "
            "other settings (e.g. TRAINER.DAPT_INIT.VIS_NUM_TOKENS / TXT_NUM_TOKENS or another "
            "backbone): use the same config, or another output folder."
        )
    module.load_state_dict(state_dict)
