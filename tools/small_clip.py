"""A small CLIP with random weights, for tests, the demo and benchmarks (no download).

It has CLIP's real vocabulary (49408 tokens) and context length (77), so clip's tokenizer and
``clip.build_model`` work unchanged; widths are multiples of 64 because ``build_model`` sets
heads = width // 64. Its accuracy means nothing.

    python tools/small_clip.py out/small_clip.pt
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

SMALL = dict(
    embed_dim=64,
    image_resolution=32,
    vision_layers=2,
    vision_width=64,
    vision_patch_size=16,
    context_length=77,
    vocab_size=49408,
    transformer_width=64,
    transformer_heads=1,
    transformer_layers=2,
)


def small_clip_state_dict(seed: int = 0, **overrides: int) -> dict[str, torch.Tensor]:
    """State dict of a randomly initialised ViT CLIP (fp32), drawn from its own generator."""
    import torch  # here, not at the top: the demo's and the tools' --help start without it
    from clip.model import CLIP

    settings = {**SMALL, **overrides}
    rng_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = CLIP(**settings)
    finally:
        torch.random.set_rng_state(rng_state)  # leave the caller's random stream untouched
    return model.state_dict()


def save_small_clip(path: str, seed: int = 0, **overrides: int) -> str:
    """Write the state dict with torch.save; a valid TRAINER.DAPT_INIT.CLIP_WEIGHTS file."""
    import torch

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    torch.save(small_clip_state_dict(seed, **overrides), path)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="where to write the state dict (.pt)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from study import inputs
    from study.run import StudyError

    try:
        inputs.check_folder(os.path.dirname(os.path.abspath(args.path)), "the path's folder",
                            writable=True)
        print(save_small_clip(args.path, args.seed))
    except StudyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError) as error:  # torch.save reports a bad path as RuntimeError
        print(f"error: cannot write {args.path} ({getattr(error, 'strerror', None) or error}); "
              "give a path in a folder you can write to", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    from study.entry import run_main

    sys.exit(run_main(main))
