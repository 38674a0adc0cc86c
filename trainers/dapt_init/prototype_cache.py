"""One run's class prototypes: what they are keyed by, where they are cached, how computed.

The key names everything the prototypes depend on (data, shots, seed, weights, dtype, view,
device, and for DAPT's random views the generator state and process they are drawn in), so a
cached file is used only when it holds exactly these prototypes. The computation itself is in
``prototypes.py``; this module decides what to compute it from. It imports no toolbox: the
trainer hands it a factory of its checked datasets.
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .prototypes import (cache_file_name, compute_dapt_prototypes, compute_prototypes,
                         dapt_views, file_identity, images_digest, load_cached_prototypes,
                         ordered_digest, save_prototypes)
from .rng import preserved_rng, restore_rng_state, torch_state_digest

# is_train -> (items -> dataset of those items with that split's transform)
DatasetFactory = Callable[[bool], Callable[[Sequence[Any]], Dataset]]


def prototype_cache_dir(cfg: Any, dataset_dir: str | None, output_dir: str) -> str:
    """PROTOTYPE_CACHE_DIR, else beside the few-shot splits, else in the run folder."""
    configured = cfg.TRAINER.DAPT_INIT.PROTOTYPE_CACHE_DIR
    if configured:
        return configured
    if dataset_dir:
        return os.path.join(dataset_dir, "split_fewshot", "prototypes")
    return os.path.join(output_dir, "prototypes")


class PrototypeCache:
    """The (C, D) prototypes of the few-shot training images ``train_x``, from the cache in
    ``cache_dir`` when it holds them for this key, else computed and cached."""

    def __init__(self, cfg: Any, model: nn.Module, device: torch.device,
                 train_x: Sequence[Any], num_classes: int, embed_dim: int, cache_dir: str,
                 generators_after_build: dict[str, Any], datasets: DatasetFactory) -> None:
        self.cfg, self.model, self.device = cfg, model, device
        self.train_x, self.num_classes, self.embed_dim = train_x, num_classes, embed_dim
        self.cache_dir = cache_dir
        # DAPT draws its prototype views right after building its model: that state.
        self.generators_after_build = generators_after_build
        self.datasets = datasets

    def load_or_compute(self) -> torch.Tensor:
        key = self.key()
        path = os.path.join(self.cache_dir, cache_file_name(key))
        cached = load_cached_prototypes(path, key, (self.num_classes, self.embed_dim))
        if cached is not None:
            print(f"Loaded class prototypes from {path}")
            return cached
        print(f"Computing class prototypes ({key['view']} view of "
              f"{len(self.train_x)} training images)")
        with preserved_rng(self.device):  # the training stream stays where it was
            prototypes = self.compute()
        if save_prototypes(path, key, prototypes):
            print(f"Saved class prototypes to {path}")
        return prototypes

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        visual = self.model.image_encoder.visual  # CLIP's own forward: no prompts
        return visual(images.to(self.device, self.model.dtype))

    def compute(self) -> torch.Tensor:
        """The few-shot training images, once each, in the configured view, averaged.

        ``dapt``: DAPT's generator's views and averaging, drawn from the generator state right
        after the model build (the caller restores the training stream). ``test``: the
        deterministic test-time view, in order.
        """
        cfg, train_x = self.cfg, self.train_x
        batch_size, workers = cfg.DATALOADER.TEST.BATCH_SIZE, cfg.DATALOADER.NUM_WORKERS
        if cfg.TRAINER.DAPT_INIT.PROTOTYPE_VIEW == "dapt":
            restore_rng_state(self.generators_after_build, torch.device("cpu"))
            groups = dapt_views(train_x, [item.label for item in train_x],
                                self.datasets(True), workers)
            return compute_dapt_prototypes(self.encode, groups, self.num_classes, batch_size)
        loader = DataLoader(
            self.datasets(False)(train_x),
            batch_size=batch_size, shuffle=False, num_workers=workers,
            pin_memory=self.device.type == "cuda",
        )
        batches = ((batch["img"], batch["label"]) for batch in loader)
        return compute_prototypes(self.encode, batches, self.num_classes, total=len(loader))

    def key(self) -> dict[str, Any]:
        cfg, node = self.cfg, self.cfg.TRAINER.DAPT_INIT
        weights = node.CLIP_WEIGHTS
        dapt_view = node.PROTOTYPE_VIEW == "dapt"
        return {
            "dataset": cfg.DATASET.NAME,
            "shots": cfg.DATASET.NUM_SHOTS,
            "seed": cfg.SEED,
            "subsample_classes": cfg.DATASET.get("SUBSAMPLE_CLASSES", "all"),
            "backbone": cfg.MODEL.BACKBONE.NAME,
            "weights": file_identity(weights) if weights else "",
            "dtype": str(self.model.dtype),
            "view": node.PROTOTYPE_VIEW,
            # DAPT's views are random draws: from which generator state, and in which process.
            "generator": torch_state_digest(self.generators_after_build) if dapt_view else "",
            "drawn_in_worker": cfg.DATALOADER.NUM_WORKERS > 0 if dapt_view else "",
            # The sampler permutes positions, so the order of the images matters too.
            "image_order": (ordered_digest(d.impath for d in self.train_x)
                            if dapt_view else ""),
            "device": self.device.type,  # features differ in the last bits across devices
            "encode_batch_size": cfg.DATALOADER.TEST.BATCH_SIZE,
            "input": json.loads(json.dumps(cfg.INPUT, sort_keys=True, default=list)),
            "images": images_digest((d.impath, d.label) for d in self.train_x),
        }
