"""Run a side computation without moving any random stream the training run depends on."""
from __future__ import annotations

import hashlib
import random
from contextlib import contextmanager
from dataclasses import dataclass
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


@dataclass(frozen=True)
class HostGenerators:
    """The process-wide CPU generators (torch, Python, NumPy) at one moment."""

    torch_state: torch.Tensor
    python_state: Any
    numpy_state: Any

    @classmethod
    def capture(cls) -> "HostGenerators":
        return cls(torch.random.get_rng_state(), random.getstate(), np.random.get_state())

    def restore(self) -> None:
        torch.random.set_rng_state(self.torch_state)
        random.setstate(self.python_state)
        np.random.set_state(self.numpy_state)

    def torch_digest(self) -> str:
        """Fingerprint of the torch state, the one DAPT's views draw from. Python's and
        NumPy's states are left out: they differ between a run that draws its few-shot
        split and one that loads it, and DAPT's transforms never draw from them."""
        return hashlib.sha256(self.torch_state.numpy().tobytes()).hexdigest()
