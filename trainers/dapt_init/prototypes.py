"""Class prototypes s_c: mean L2-normalised frozen CLIP image feature of class c's shots.

DAPT's intra-class loss pulls each prompted image feature towards its class prototype.
Prototypes are computed once per (data, model, transform) and cached in a file that loads
with ``weights_only=True``; the file stores the full key it was computed for, and a file
whose key differs is never reused.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler
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


# DAPT draws the views of at most this many classes at a time (one loader per group).
DAPT_GROUP_LIMIT = 50


def dapt_class_groups(labels: Sequence[int]) -> list[list[int]]:
    """The label groups DAPT draws views for, one loader each: all classes when there are
    at most 50, else the sorted labels split by ``torch.chunk`` into ceil(C / 51) groups."""
    unique = torch.tensor(sorted(set(labels)), dtype=torch.long)
    if len(unique) <= DAPT_GROUP_LIMIT:
        return [unique.tolist()]
    return [group.tolist() for group in unique.chunk(math.ceil(len(unique) / 51))]


def dapt_views(
    items: Sequence[Any],
    labels: Sequence[int],
    make_dataset: Callable[[list[Any]], Dataset],
    num_workers: int,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(images, labels) of each class group, the views DAPT's prototype generator sees.

    Per class group (``dapt_class_groups``, items kept in their order), one data loader
    with an unseeded random sampler and the whole group in one batch: it draws its worker
    base seed and then the sampler's seed from the global torch generator, and the
    training transform draws each image's crop and flip in the shuffled order (in the
    main process, or in worker 0 seeded from that base seed). The random draws, hence the
    views, are DAPT's when the global generators start where DAPT's did.
    """
    for group in dapt_class_groups(labels):
        members = set(group)
        subset = [item for item, label in zip(items, labels) if label in members]
        loader = DataLoader(make_dataset(subset), batch_size=len(subset),
                            sampler=RandomSampler(subset), num_workers=num_workers)
        batch = next(iter(loader))  # the only batch; workers stop with the iterator
        yield batch["img"], batch["label"]


def compute_dapt_prototypes(
    encode_images: Callable[[torch.Tensor], torch.Tensor],
    groups: Iterable[tuple[torch.Tensor, torch.Tensor]],
    n_classes: int,
    encode_batch_size: int,
    progress: bool = True,
) -> torch.Tensor:
    """(C, D) prototypes (returned as fp32) from ``dapt_views`` groups, averaged as DAPT does.

    Each class's features are normalised and averaged in one mean in the encoder's dtype
    (CLIP's fp16 under PREC fp16, as DAPT), in drawn order; the images are encoded
    ``encode_batch_size`` at a time, which bounds memory (DAPT encodes a whole group at once).
    """
    prototypes: torch.Tensor | None = None
    seen = torch.zeros(n_classes, dtype=torch.bool)
    for images, labels in tqdm(groups, desc="prototypes", disable=not progress):
        with torch.no_grad():
            features = torch.cat([encode_images(images[start:start + encode_batch_size]).cpu()
                                  for start in range(0, len(images), encode_batch_size)])
        features = features / features.norm(dim=-1, keepdim=True)
        if prototypes is None:
            prototypes = torch.zeros(n_classes, features.shape[1], dtype=features.dtype)
        for label in labels.unique().tolist():
            prototypes[label] = features[labels == label].mean(dim=0)
            seen[label] = True
    empty = (~seen).nonzero().flatten().tolist()
    if prototypes is None or empty:
        raise ValueError(f"no training image for classes {empty}: cannot build their prototypes")
    return prototypes.float()  # exact: fp16 values widen without rounding


def images_digest(items: Iterable[tuple[str, int]]) -> str:
    """Fingerprint of the exact (image path, label) list the prototypes come from."""
    text = "\n".join(f"{path}\t{label}" for path, label in sorted(items))
    return hashlib.sha256(text.encode()).hexdigest()


def ordered_digest(paths: Iterable[str]) -> str:
    """Fingerprint of a list of image paths in its order."""
    return hashlib.sha256("\n".join(paths).encode()).hexdigest()


def file_identity(path: str) -> dict[str, Any]:
    """Cheap identity of a weights file: replacing it changes size or mtime."""
    stat = os.stat(path)
    return {"path": os.path.abspath(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def cache_file_name(key: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    dataset = str(key.get("dataset", "data")).replace(os.sep, "_")
    return f"{dataset}_{key.get('shots')}shot_seed{key.get('seed')}_{digest}.pt"


def prototypes_problem(prototypes: Any, shape: tuple[int, int]) -> str | None:
    """What makes ``prototypes`` unusable as (C, D) class means of unit vectors, else None."""
    if not isinstance(prototypes, torch.Tensor) or not prototypes.is_floating_point():
        return f"it holds {type(prototypes).__name__}, not a float tensor"
    if tuple(prototypes.shape) != tuple(shape):
        return f"shape {tuple(prototypes.shape)}, expected {tuple(shape)} (classes, feature size)"
    if not bool(torch.isfinite(prototypes).all()):
        return "it holds NaN or infinite values"
    # A mean of unit vectors has norm at most 1 (fp32 rounding aside).
    if float(prototypes.float().norm(dim=-1).max()) > 1.0 + 1e-3:
        return "a row's norm exceeds 1, so it is no mean of normalised features"
    return None


def load_cached_prototypes(path: str, key: dict[str, Any],
                           shape: tuple[int, int] | None = None) -> torch.Tensor | None:
    """The cached prototypes if ``path`` holds them for exactly ``key`` and, when ``shape`` is
    given, their content is plausible (shape, finite, norms); else None, saying why in one line
    (the caller recomputes and replaces the file atomically)."""
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
    # A right key does not make right content: checked here, where it is loaded.
    problem = prototypes_problem(prototypes, shape) if shape is not None else None
    if problem:
        print(f"Prototype cache {path} is damaged ({problem}); recomputing and replacing it")
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
