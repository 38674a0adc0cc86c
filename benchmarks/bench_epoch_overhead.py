"""Where a small data set's epoch goes outside the model: loader start, decoding, augmentation,
checkpoint write; and whether capping the workers at the batch count changes any number.

It generates EuroSAT-layout data (tools/tiny_data.py), builds the toolbox's real DataManager
with DAPT's ViT-B/16 settings (batch 32, 8 workers, 224 px), and times one epoch's data with
the configured workers, with the workers capped at the batch count (what the trainer does),
and with none; then decoding and augmenting the same images in the main process, and writing a
ViT-B/16-sized prompt checkpoint. Finally it checks that the capped loader yields bit-identical
batches and leaves the same random state.

    python benchmarks/bench_epoch_overhead.py --shots 16 --epochs 3
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("OUTDATED_IGNORE", "1")


def build_data_manager(root: Path, config: str, shots: int, workers: int, seed: int = 1):
    from dassl.config import get_cfg_default
    from dassl.data import DataManager
    from dassl.utils import set_random_seed

    import datasets.classes  # noqa: F401  (registers the dataset classes)
    from trainers.dapt_init.config import add_dapt_init_config

    cfg = get_cfg_default()
    add_dapt_init_config(cfg)
    cfg.merge_from_file(str(REPO / "configs/datasets/eurosat.yaml"))
    cfg.merge_from_file(config)
    cfg.merge_from_list(["DATASET.ROOT", str(root), "DATASET.NUM_SHOTS", shots, "SEED", seed,
                         "DATALOADER.NUM_WORKERS", workers, "USE_CUDA", False])
    cfg.freeze()
    set_random_seed(seed)
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # toolbox's tables
        return DataManager(cfg)


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def epochs(loader, count: int) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
    batches = [(b["img"], b["label"]) for _ in range(count) for b in loader]
    return batches, torch.get_rng_state()


def main() -> None:
    from dassl.utils import read_image

    from tools.tiny_data import make_tiny_eurosat
    from trainers.dapt_init.checkpoint import save_checkpoint
    from trainers.dapt_init.loader_workers import cap_workers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=16)
    parser.add_argument("--workers", type=int, default=8, help="DAPT's DATALOADER.NUM_WORKERS")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per setting")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--config", default=str(REPO / "configs/trainers/DAPT_Init/vit_b16.yaml"),
                        help="trainer config (batch size, input size); its INPUT.SIZE must "
                        "suit --image-size")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_tiny_eurosat(root / "data", images_per_class=2 * args.shots + 2,
                          image_size=args.image_size)
        dm = build_data_manager(root / "data", args.config, args.shots, args.workers)
        loader = dm.train_loader_x
        batches = len(loader)
        print(f"EuroSAT layout, {args.shots} shots: {len(dm.dataset.train_x)} images, "
              f"{batches} batches of {loader.batch_size}, {args.image_size} px; "
              f"torch {torch.__version__}, {os.cpu_count()} CPUs")

        rows = []
        capped = min(args.workers, batches)
        for workers in dict.fromkeys((args.workers, capped, 0)):
            loader.num_workers = workers
            seconds = median_seconds(lambda: [b for b in loader], args.epochs)
            rows.append((f"one epoch's data, {workers} workers", seconds))
        # Decoding and augmenting in the main process, one thread, as a worker does.
        data, transform = dm.dataset.train_x, loader.dataset.transform
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as in a loader worker
        images = [read_image(d.impath) for d in data]
        rows.append(("decoding the epoch's images", median_seconds(
            lambda: [read_image(d.impath) for d in data], args.epochs)))
        rows.append(("augmenting them (train transform)", median_seconds(
            lambda: [transform(image) for image in images], args.epochs)))
        prompts = {"vis_ctx": torch.randn(1, 16, 768), "txt_ctx": torch.randn(16, 512)}
        state = {"state_dict": prompts, "optimizer": {"momentum": dict(prompts)}, "epoch": 1}
        rows.append(("writing a ViT-B/16 prompt checkpoint", median_seconds(
            lambda: save_checkpoint(state, str(root / "ckpt"), "model.pth.tar-1", True),
            args.epochs)))
        torch.set_num_threads(threads)
        for name, seconds in rows:
            print(f"{name:42s} {seconds * 1000:8.1f} ms")

        # Same seed, two epochs each: the configured workers vs the capped ones.
        results = []
        for cap in (False, True):
            dm = build_data_manager(root / "data", args.config, args.shots, args.workers)
            if cap:
                cap_workers(dm.train_loader_x)
            results.append((dm.train_loader_x.num_workers, *epochs(dm.train_loader_x, 2)))
        (w_a, batches_a, rng_a), (w_b, batches_b, rng_b) = results
        same = (len(batches_a) == len(batches_b) and torch.equal(rng_a, rng_b) and all(
            torch.equal(x, y) and torch.equal(u, v)
            for (x, u), (y, v) in zip(batches_a, batches_b)))
        print(f"{w_a} vs {w_b} workers, two epochs: batches and random state "
              f"{'bit-identical' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
