"""Class prototypes s_c: mean L2-normalised frozen CLIP image feature of class c's shots.

DAPT's intra-class loss pulls each prompted image feature towards its class prototype.
Prototypes are computed once per (data, model, transform) and cached in a file that loads
with ``weights_only=True``; the file stores the full key it was computed for, and a file
whose key differs is never reused.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Callable, Iterable

import torch
from tqdm import tqdm

from .atomic import torch_save_atomically
from .errors import DaptInitError

CACHE_FORMAT = "dapt_init.prototypes/1"


def compute_prototypes(
    encode_images: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    n_classes: int,
    progress: bool = True,
    total: int | None = None,
) -> torch.Tensor:
    """(C, D) fp32 class means of the normalised features of every image in ``batches``."""
    sums: torch.Tensor | None = None
    counts = torch.zeros(n_classes, dtype=torch.float64)
    for images, labels in tqdm(batches, desc="prototypes", total=total, disable=not progress):
        with torch.no_grad():
            features = encode_images(images).float().cpu()
        features = features / features.norm(dim=-1, keepdim=True)
        if sums is None:
            sums = torch.zeros(n_classes, features.shape[1], dtype=torch.float64)
        labels = labels.cpu().long()
        sums.index_add_(0, labels, features.double())
        counts += torch.bincount(labels, minlength=n_classes).double()
    empty = (counts == 0).nonzero().flatten().tolist()
    if sums is None or empty:
        raise DaptInitError(
            f"classes {empty} have no training image, so DAPT's intra-class loss has no "
            "prototype for them; give every class at least one training image (check the "
            "data set's train split and DATASET.NUM_SHOTS)."
        )
    return (sums / counts.unsqueeze(1)).float()


def images_digest(items: Iterable[tuple[str, int]]) -> str:
    """Fingerprint of the exact (image path, label) list the prototypes come from."""
    text = "\n".join(f"{path}\t{label}" for path, label in sorted(items))
    return hashlib.sha256(text.encode()).hexdigest()


def file_identity(path: str) -> dict[str, Any]:
    """Cheap identity of a weights file: replacing it changes size or mtime."""
    stat = os.stat(path)
    return {"path": os.path.abspath(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def cache_file_name(key: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    dataset = str(key.get("dataset", "data")).replace(os.sep, "_")
    return f"{dataset}_{key.get('shots')}shot_seed{key.get('seed')}_{digest}.pt"


def load_cached_prototypes(path: str, key: dict[str, Any]) -> torch.Tensor | None:
    """The cached prototypes if ``path`` holds them for exactly ``key``, else None (says why)."""
    if not os.path.exists(path):
        return None
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
        stored_key = json.loads(stored["key"])
        prototypes = stored["prototypes"]
    except Exception as error:  # unreadable or foreign file: recompute, never crash on a cache
        print(f"Prototype cache {path} is unreadable ({error.__class__.__name__}); recomputing")
        return None
    if stored_key != key:
        changed = sorted(k for k in set(key) | set(stored_key) if key.get(k) != stored_key.get(k))
        print(f"Prototype cache {path} was written for another key "
              f"(differs in: {', '.join(changed)}); recomputing")
        return None
    return prototypes.float()


def save_prototypes(path: str, key: dict[str, Any], prototypes: torch.Tensor) -> bool:
    """Write the cache atomically; a read-only location only costs a recomputation later."""
    try:
        torch_save_atomically(
            {"format": CACHE_FORMAT, "key": json.dumps(key, sort_keys=True),
             "prototypes": prototypes.float().cpu()},
            path,
        )
    except OSError as error:
        print(f"Could not cache prototypes at {path} ({error}); continuing without a cache")
        return False
    return True
