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

    def digest(self) -> str:
        """Fingerprint of the three states: equal digests, equal future draws."""
        text = repr((self.python_state, [self.numpy_state[0], self.numpy_state[2:]]))
        hasher = hashlib.sha256(self.torch_state.numpy().tobytes())
        hasher.update(self.numpy_state[1].tobytes())
        hasher.update(text.encode())
        return hasher.hexdigest()
