"""Run a side computation without moving any random stream the training run depends on."""
from __future__ import annotations

import hashlib
import random
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import torch


@contextmanager
def preserved_rng(device: torch.device) -> Iterator[None]:
    """Restore the torch (CPU and ``device``), Python and NumPy generators afterwards.

    DAPT computed prototypes in a separate run, so its training run never drew from the
    generators for them; computing them in-process must not shift the data order either.
    """
    python_state, numpy_state = random.getstate(), np.random.get_state()
    cuda_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices):
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


def capture_rng_state(device: torch.device) -> dict[str, Any]:
    """Every generator a training epoch draws from, as tensors and plain values.

    The global torch generator gives the data loader its shuffling seed and worker base seed
    each epoch, the augmentations (without workers) and dropout; Python's ``random`` and NumPy
    serve the toolbox's samplers and transforms. Plain types load with ``weights_only=True``.
    """
    version, mt_state, gauss_next = random.getstate()
    name, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    state: dict[str, Any] = {
        "torch_cpu": torch.random.get_rng_state(),
        "python": {"version": version, "state": torch.tensor(mt_state, dtype=torch.int64),
                   "gauss_next": gauss_next},
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached_gaussian)},
        "torch_cuda": [],
    }
    if device.type == "cuda" and torch.cuda.is_available():
        state["torch_cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Put back what ``capture_rng_state`` saved (the CUDA part when the devices match)."""
    torch.random.set_rng_state(state["torch_cpu"])
    python = state["python"]
    random.setstate((python["version"], tuple(int(v) for v in python["state"].tolist()),
                     python["gauss_next"]))
    numpy = state["numpy"]
    np.random.set_state((numpy["name"], numpy["keys"].numpy().astype(np.uint32), numpy["pos"],
                         numpy["has_gauss"], numpy["cached_gaussian"]))
    cuda = state.get("torch_cuda") or []
    if cuda and device.type == "cuda" and torch.cuda.is_available():
        if len(cuda) != torch.cuda.device_count():
            print(f"Note: the checkpoint holds {len(cuda)} CUDA generator states, this "
                  f"machine has {torch.cuda.device_count()} GPUs: CUDA streams not restored")
        else:
            torch.cuda.set_rng_state_all(cuda)


def torch_state_digest(state: dict[str, Any]) -> str:
    """Fingerprint of the torch CPU generator in a ``capture_rng_state`` snapshot: the one
    DAPT's prototype views draw from. Python's and NumPy's states are left out: they differ
    between a run that draws its few-shot split and one that loads it, and DAPT's transforms
    never draw from them."""
    return hashlib.sha256(state["torch_cpu"].numpy().tobytes()).hexdigest()
