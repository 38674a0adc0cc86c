"""How the prompt tokens start: the study's three initialisations, for text and visual prompts.

All draws use torch's global generator on the CPU, in this order: visual prompts first, then
text prompts, exactly as the original DAPT trainer does. DAPT draws in CLIP's shipped dtype
(fp16), so ``random`` draws in fp16 too: for a given seed the initial prompts equal DAPT's
whatever precision we train in.

Every method leaves the global generator where ``random`` (DAPT) leaves it: ``same`` and
``diff`` take their fp32 noise from a copy of the generator's state, then make DAPT's draw and
discard it. So the visual noise comes from the state before DAPT's visual draw, the text noise
from the state before DAPT's text draw (which no visual method moves), and for one seed any two
text x visual combinations differ only in the prompts chosen: the data order, augmentations
and dropout that follow are identical.
"""
from __future__ import annotations

import math

import torch

from .config import INIT_METHODS

# DAPT builds its prompts in clip_model.dtype, which CLIP's loading makes fp16.
DAPT_DRAW_DTYPE = torch.float16
TEXT_PROMPT_STD = 0.02  # DAPT / CoOp: N(0, 0.02^2 I)
EOS_TOKEN_ID = 49407  # CLIP's end-of-text token


def vpt_uniform_bound(patch_size: int, width: int) -> float:
    """VPT's Xavier-style bound sqrt(6 / (3 * patch^2 + width)) for visual prompts."""
    return math.sqrt(6.0 / float(3 * patch_size * patch_size + width))


def draw_visual_prompts(n_tokens: int, width: int, patch_size: int) -> torch.Tensor:
    """Visual prompts ~ U(-b, b), b = ``vpt_uniform_bound``; shape (1, n_tokens, width)."""
    bound = vpt_uniform_bound(patch_size, width)
    prompts = torch.zeros(1, n_tokens, width, dtype=DAPT_DRAW_DTYPE)
    prompts.uniform_(-bound, bound)
    return prompts


def unit_noise(
    shape: tuple[int, ...], scale: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """RPO's noise: ``scale * u / ||u||`` with u ~ N(0, I), normalised over the last dim."""
    u = torch.randn(shape, dtype=torch.float32, generator=generator)
    return scale * u / u.norm(dim=-1, keepdim=True)


def draw_dapt_text_prompts(n_tokens: int, width: int) -> torch.Tensor:
    """DAPT's text prompts: N(0, 0.02^2) per entry, drawn in fp16 from the global generator."""
    prompts = torch.empty(n_tokens, width, dtype=DAPT_DRAW_DTYPE)
    return prompts.normal_(mean=0.0, std=TEXT_PROMPT_STD)


def _base_plus_noise(method: str, base: torch.Tensor, n_tokens: int, noise_scale: float,
                     generator: torch.Generator) -> torch.Tensor:
    """``same``: base + e for every token (one e); ``diff``: base + e_i per token. fp32."""
    base = base.detach().float().cpu()
    width = base.shape[-1]
    shape = (width,) if method == "same" else (n_tokens, width)
    noise = unit_noise(shape, noise_scale, generator)
    return (base + noise).expand(n_tokens, width).clone()


def _copy_of_global_generator() -> torch.Generator:
    """A generator at the global generator's current state; drawing from it moves nothing."""
    generator = torch.Generator()
    generator.set_state(torch.random.get_rng_state())
    return generator


def _check_method(method: str) -> None:
    if method not in INIT_METHODS:
        raise ValueError(f"unknown init method {method!r}; expected "
                         f"{', '.join(INIT_METHODS[:-1])} or {INIT_METHODS[-1]}")


def initial_visual_prompts(method: str, n_tokens: int, cls_embedding: torch.Tensor,
                           patch_size: int, noise_scale: float) -> torch.Tensor:
    """Initial visual prompt tokens, shape (1, n_tokens, width), in fp32.

    random: U(-b, b) per entry, drawn in fp16 as DAPT does (``draw_visual_prompts``).
    same:   CLS + e for every token, one shared noise vector e (all tokens identical).
    diff:   CLS + e_i, one noise vector per token (RPO's init of its image prompts).
    CLS is CLIP's ``visual.class_embedding``.
    """
    _check_method(method)
    width = cls_embedding.shape[-1]
    noise_generator = _copy_of_global_generator()
    dapt_prompts = draw_visual_prompts(n_tokens, width, patch_size)  # advances the global stream
    if method == "random":
        return dapt_prompts.float()
    return _base_plus_noise(method, cls_embedding, n_tokens, noise_scale,
                            noise_generator).unsqueeze(0)


def draw_text_prompts(
    method: str, n_tokens: int, eos_embedding: torch.Tensor, noise_scale: float
) -> torch.Tensor:
    """Initial text context tokens, shape (n_tokens, width), in fp32.

    random: N(0, 0.02^2 I) per entry, drawn in fp16 as DAPT does.
    same:   EOS + e for every token, one shared noise vector e (all tokens identical).
    diff:   EOS + e_i, one noise vector per token (RPO's ST-initialisation).
    """
    _check_method(method)
    width = eos_embedding.shape[-1]
    noise_generator = _copy_of_global_generator()
    dapt_prompts = draw_dapt_text_prompts(n_tokens, width)  # advances the global stream
    if method == "random":
        return dapt_prompts.float()
    return _base_plus_noise(method, eos_embedding, n_tokens, noise_scale, noise_generator)
