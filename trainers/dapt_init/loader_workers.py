"""Start no more data-loader workers than an epoch has batches.

A few-shot epoch is often one to five batches (EuroSAT, 1 to 16 shots, batch 32), while DAPT's
configs start 8 workers, and torch starts them all again at every epoch. Workers beyond the
batch count never receive a batch: torch hands batch j to worker j mod W, seeds worker j with
base_seed + j, and draws base_seed (and the sampler's seed) from the main process's generator
whatever W is. So with B <= W batches, W and B workers give the same batches, the same
augmentations and the same random state afterwards, bit for bit; with B > W nothing changes.
"""
from __future__ import annotations

from torch.utils.data import DataLoader


def cap_workers(loader: DataLoader | None) -> int:
    """Lower ``loader.num_workers`` to its batch count where that is smaller; returns it."""
    if loader is None:
        return 0
    batches = len(loader)
    if 0 < batches < loader.num_workers:
        loader.num_workers = batches  # allowed after construction, unlike batch_size
    return loader.num_workers
