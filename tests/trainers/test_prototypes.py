"""Prototype computation and the cache's keying."""
from __future__ import annotations

import os

import pytest
import torch

from trainers.dapt_init.prototypes import (cache_file_name, compute_prototypes, images_digest,
                                           load_cached_prototypes, save_prototypes)


def test_prototypes_are_class_means_of_normalised_features():
    torch.manual_seed(0)
    features = torch.randn(7, 5)
    labels = torch.tensor([0, 1, 1, 2, 0, 2, 2])
    batches = [(features[:3], labels[:3]), (features[3:], labels[3:])]
    prototypes = compute_prototypes(lambda x: x * 3.0, batches, n_classes=3, progress=False)
    for c in range(3):
        members = [features[i] / features[i].norm() for i in range(7) if labels[i] == c]
        assert torch.allclose(prototypes[c], sum(members) / len(members), atol=1e-6)


def test_a_class_without_images_is_an_error():
    batches = [(torch.randn(2, 4), torch.tensor([0, 0]))]
    from trainers.dapt_init.errors import DaptInitError

    with pytest.raises(DaptInitError, match=r"classes \[1\] have no training image"):
        compute_prototypes(lambda x: x, batches, n_classes=2, progress=False)


def key(**changes):
    base = {"dataset": "EuroSAT", "shots": 4, "seed": 1, "backbone": "ViT-B/16",
            "view": "test", "images": images_digest([("a.jpg", 0), ("b.jpg", 1)])}
    return {**base, **changes}


def test_cache_is_reused_only_for_the_same_key(tmp_path, capsys):
    prototypes = torch.randn(2, 4)
    path = str(tmp_path / cache_file_name(key()))
    assert save_prototypes(path, key(), prototypes)
    assert torch.equal(load_cached_prototypes(path, key()), prototypes)
    assert load_cached_prototypes(path, key(backbone="ViT-B/32")) is None
    assert "written for another key (differs in: backbone)" in capsys.readouterr().out
    assert [f for f in os.listdir(tmp_path) if f.startswith(".tmp")] == []


def test_every_key_field_changes_the_cache_file():
    names = {cache_file_name(key()), cache_file_name(key(seed=2)), cache_file_name(key(shots=8)),
             cache_file_name(key(view="dapt")),
             cache_file_name(key(images=images_digest([("a.jpg", 0)])))}
    assert len(names) == 5


def test_cache_file_holds_no_code_and_a_corrupt_one_is_recomputed(tmp_path, capsys):
    path = tmp_path / "p.pt"
    save_prototypes(str(path), key(), torch.randn(2, 4))
    stored = torch.load(path, weights_only=True)
    assert set(stored) == {"format", "key", "prototypes"}
    path.write_bytes(b"garbage")
    assert load_cached_prototypes(str(path), key()) is None
    assert "unreadable" in capsys.readouterr().out
