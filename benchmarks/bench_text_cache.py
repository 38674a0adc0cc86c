"""Test-time speed: class texts encoded once per evaluation vs once per batch.

Runs both paths side by side in one process on the same model and images and prints the
ratio, and the largest logit difference between them (they must agree).

    python benchmarks/bench_text_cache.py                       # small CLIP, CPU
    python benchmarks/bench_text_cache.py --size vit-b16 --device cuda --classes 100
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch


from tools.small_clip import small_clip_state_dict  # noqa: E402
from trainers.dapt_init.clip_model import build_clip_model  # noqa: E402
from trainers.dapt_init.model import DAPTModel, PromptSettings  # noqa: E402

VIT_B16 = dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768,
               vision_patch_size=16, transformer_width=512, transformer_heads=8,
               transformer_layers=12)


def build_model(size: str, classes: int, device: torch.device, precision: str) -> DAPTModel:
    overrides = VIT_B16 if size == "vit-b16" else {}
    clip_model = build_clip_model(small_clip_state_dict(0, **overrides))  # fp16, as shipped
    if precision == "fp32" or device.type == "cpu":
        clip_model.float()
    names = [f"class number {i}" for i in range(classes)]
    return DAPTModel(clip_model, names, PromptSettings()).to(device).eval()


def timed(run, device: torch.device, repeats: int) -> float:
    run()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("small", "vit-b16"), default="small")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=("fp16", "fp32"), default="fp16")
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--batches", type=int, default=5, help="test batches per evaluation")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    device = torch.device(args.device)
    model = build_model(args.size, args.classes, device, args.precision)
    resolution = model.image_encoder.visual.input_resolution
    images = [torch.randn(args.batch, 3, resolution, resolution, device=device)
              for _ in range(args.batches)]

    @torch.no_grad()
    def per_batch() -> list[torch.Tensor]:
        return [model(x) for x in images]

    @torch.no_grad()
    def once() -> list[torch.Tensor]:
        with model.frozen_text_features():
            return [model(x) for x in images]

    difference = max((a.float() - b.float()).abs().max().item()
                     for a, b in zip(per_batch(), once()))
    plain, cached = timed(per_batch, device, args.repeats), timed(once, device, args.repeats)
    print(f"{args.size} CLIP, {args.classes} classes, {args.batches} batches of {args.batch} "
          f"on {device} ({model.dtype})")
    print(f"texts per batch: {plain * 1000:.1f} ms / evaluation")
    print(f"texts once:      {cached * 1000:.1f} ms / evaluation")
    print(f"speed-up: {plain / cached:.2f}x   max |logit difference|: {difference:.2e}")


if __name__ == "__main__":
    main()
