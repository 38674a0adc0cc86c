"""Checkpoints in the toolbox's layout, written atomically and read with ``weights_only``.

Layout (as Dassl's): ``<dir>/<model name>/model.pth.tar-<epoch>`` holding ``state_dict``,
``epoch``, ``optimizer``, ``scheduler`` and ``val_result``, plus a ``checkpoint`` text file
naming the latest one. Everything stored is tensors and plain values.

Kept prompts: ``<run>/prompt_learner/prompts-epoch<N>.pt``, a dict with the ``vis_ctx`` and
``txt_ctx`` tensors only (a few KB), for epoch 0 (the initial prompts), epoch 1 and the epochs
in ``TRAINER.DAPT_INIT.KEEP_EPOCHS``, so analyses of early epochs need no full checkpoint.
"""
from __future__ import annotations

import os
import re
from typing import Any

import torch
from torch import nn

from .atomic import torch_save_atomically, write_atomically
from .errors import DaptInitError
from .runstate import PROMPT_MODEL

LATEST_POINTER = "checkpoint"
PROMPT_KEYS = ("vis_ctx", "txt_ctx")
_CHECKPOINT_FILE = re.compile(r"model\.pth\.tar-(\d+)$")
_PROMPTS_FILE = re.compile(r"prompts-epoch(\d+)\.pt$")


def checkpoint_name(epoch: int) -> str:
    return f"model.pth.tar-{epoch}"


def prompts_name(epoch: int) -> str:
    return f"prompts-epoch{epoch}.pt"


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


def _pointer_problem(pointer: str) -> tuple[str | None, str]:
    """(checkpoint path, "") when the resume pointer names a checkpoint file beside it, else
    (None, what is wrong with the pointer)."""
    if not os.path.lexists(pointer):
        return None, "is missing"
    if not os.path.isfile(pointer):
        return None, "is not a file"
    try:
        with open(pointer, "rb") as file:
            name = file.readline(256).decode("utf-8", errors="replace").strip()
    except OSError as error:
        return None, f"cannot be read ({error.strerror or error})"
    path = os.path.join(os.path.dirname(pointer), name)
    if not _CHECKPOINT_FILE.fullmatch(name):
        return None, f"holds {name[:60]!r}, not a checkpoint file name"
    if not os.path.isfile(path):
        return None, f"names {name}, which is not there"
    return path, ""


def latest_checkpoint(folder: str) -> str | None:
    """The checkpoint a run in ``folder`` resumes from, or None when it holds none.

    Normally the one the resume pointer names. A pointer that is missing, garbled or names no
    file must never make a run start over and write over the checkpoints that are there, so
    then the newest checkpoint that loads is taken, with a note; if none loads, the run is
    refused naming the pointer and the fix.
    """
    pointer = os.path.join(folder, LATEST_POINTER)
    path, problem = _pointer_problem(pointer)
    if path is not None:
        return path
    epochs = sorted(_epochs_matching(folder, _CHECKPOINT_FILE), reverse=True)
    if not epochs:
        if os.path.lexists(pointer):
            print(f"Note: resume pointer {pointer} {problem} and no checkpoint is beside it; "
                  "nothing to resume")
        return None
    for epoch in epochs:
        candidate = os.path.join(folder, checkpoint_name(epoch))
        try:
            read_checkpoint(candidate)
        except DaptInitError:
            continue
        print(f"Note: resume pointer {pointer} {problem}; resuming from the newest checkpoint "
              f"that loads, {candidate}")
        return candidate
    raise DaptInitError(
        f"resume pointer {pointer} {problem}, and none of the checkpoints beside it loads "
        f"({', '.join(checkpoint_name(e) for e in epochs)}), so the run is not restarted over "
        f"them. Fix: put a good checkpoint's file name in {pointer}, or delete {folder} to "
        "train this run from scratch."
    )


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


# ------------------------------------------------------------------------------ kept prompts
def save_prompts(prompts: dict[str, torch.Tensor], run_dir: str, epoch: int) -> str:
    """Write ``prompts-epoch<epoch>.pt`` (``vis_ctx``, ``txt_ctx`` on the CPU) atomically."""
    state = {key: prompts[key].detach().cpu().clone() for key in PROMPT_KEYS}
    path = os.path.join(run_dir, PROMPT_MODEL, prompts_name(epoch))
    torch_save_atomically(state, path)
    return path


def keep_prompts(prompts: dict[str, torch.Tensor], run_dir: str, epoch: int,
                 keep_epochs: list[int]) -> None:
    """Keep epoch 0's and epoch 1's prompts, and ``keep_epochs``', as small files of their own."""
    if epoch > 1 and epoch not in keep_epochs:
        return
    if epoch == 0 and os.path.isfile(os.path.join(run_dir, PROMPT_MODEL, prompts_name(0))):
        return  # a resumed run: written when it started
    save_prompts(prompts, run_dir, epoch)


def _epochs_matching(folder: str, pattern: re.Pattern) -> set[int]:
    if not os.path.isdir(folder):
        return set()
    found = (pattern.match(name) for name in os.listdir(folder))
    return {int(match.group(1)) for match in found if match}


def prompt_epochs(run_dir: str) -> list[int]:
    """Epochs whose prompts a run holds (kept prompts or a full checkpoint), ascending."""
    folder = os.path.join(run_dir, PROMPT_MODEL)
    kept = _epochs_matching(folder, _PROMPTS_FILE)
    return sorted(kept | _epochs_matching(folder, _CHECKPOINT_FILE))


def run_prompts_path(run_dir: str, epoch: int) -> str | None:
    """The file holding ``epoch``'s prompts: the kept prompts file first, else the checkpoint."""
    folder = os.path.join(run_dir, PROMPT_MODEL)
    for name in (prompts_name(epoch), checkpoint_name(epoch)):
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    return None


def read_prompts(path: str) -> dict[str, torch.Tensor]:
    """``{"vis_ctx", "txt_ctx"}`` from a kept prompts file or a full checkpoint."""
    stored = read_checkpoint(path)
    state = stored.get("state_dict", stored) if isinstance(stored, dict) else {}
    for key, what in (("txt_ctx", "text"), ("vis_ctx", "visual")):
        if not isinstance(state.get(key), torch.Tensor):
            raise DaptInitError(
                f"checkpoint {path} has no {what} prompts {key!r} (it holds "
                f"{', '.join(sorted(map(str, state))) or 'nothing'}); it was not written by "
                "DAPT_Init."
            )
    return {key: state[key] for key in PROMPT_KEYS}


def load_run_prompts(run_dir: str, epoch: int) -> dict[str, torch.Tensor]:
    """The prompts of a run folder (train.py's --output-dir) after ``epoch`` (0: initial).

    Read from ``prompts-epoch<epoch>.pt`` where the run kept one, else from the full
    checkpoint ``model.pth.tar-<epoch>``; a clear error naming the epochs it has otherwise.
    """
    path = run_prompts_path(run_dir, epoch)
    if path is None:
        epochs = prompt_epochs(run_dir)
        raise DaptInitError(
            f"run folder {run_dir} has no prompts for epoch {epoch}; saved epochs: "
            f"{', '.join(map(str, epochs)) or 'none'}. Runs keep epochs 0 and 1, the last "
            "epoch, every TRAIN.CHECKPOINT_FREQ-th and those in TRAINER.DAPT_INIT.KEEP_EPOCHS."
        )
    return read_prompts(path)
