"""Run a side computation without moving any random stream the training run depends on."""
from __future__ import annotations

import random
from contextlib import contextmanager
from typing import Iterator

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
