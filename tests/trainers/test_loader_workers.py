"""Capping the data-loader workers at the batch count changes no number (bit for bit)."""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from tests.support.toolbox import requires_toolbox
from trainers.dapt_init.loader_workers import cap_workers

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


class Ten(Dataset):
    def __len__(self) -> int:
        return 10

    def __getitem__(self, index: int) -> int:
        return index


def test_only_loaders_with_fewer_batches_than_workers_are_capped():
    assert cap_workers(DataLoader(Ten(), batch_size=4, num_workers=8)) == 3  # 3 batches
    assert cap_workers(DataLoader(Ten(), batch_size=4, num_workers=2)) == 2  # unchanged
    assert cap_workers(DataLoader(Ten(), batch_size=4, num_workers=0)) == 0  # never starts any
    assert cap_workers(None) == 0


@requires_toolbox
def test_capped_workers_give_bit_identical_batches_and_random_state(tmp_path):
    """The toolbox's own loader (random sampler, random crop and flip in the workers)."""
    from bench_epoch_overhead import REPO, build_data_manager, epochs
    from tools.tiny_data import make_tiny_eurosat

    make_tiny_eurosat(tmp_path / "data")
    config = str(REPO / "configs/trainers/DAPT_Init/demo_small.yaml")  # batch 8, 32 px
    results = []
    for cap in (False, True):
        loader = build_data_manager(tmp_path / "data", config, 2, 3).train_loader_x
        assert len(loader) == 2  # 20 images
        if cap:
            assert cap_workers(loader) == 2
        results.append(epochs(loader, 2))
    (batches_a, rng_a), (batches_b, rng_b) = results
    assert len(batches_a) == len(batches_b) == 4
    for (x, u), (y, v) in zip(batches_a, batches_b):
        assert torch.equal(x, y) and torch.equal(u, v)
    assert torch.equal(rng_a, rng_b)
    # The augmentations are random: two epochs' first batches differ.
    assert not torch.equal(batches_a[0][0], batches_a[2][0])
