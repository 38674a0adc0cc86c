"""How hard each loss term pulls on the prompts: per-term gradient norms, for logging only.

For each weighted term of L = L_ce + VIS_BETA * L_intra + TXT_BETA * L_inter, the L2 norm of
its gradient with respect to the visual prompts (``vis_ctx``) and the text prompts
(``txt_ctx``). Computed with ``torch.autograd.grad`` on the retained graph, so nothing is
accumulated into ``.grad`` and the training step that follows is unchanged; it costs one extra
backward pass per term.
"""
from __future__ import annotations

import torch

from .losses import LossTerms

GRAD_NORM_NAMES = ("grad_ce_vis", "grad_ce_txt", "grad_intra_vis", "grad_intra_txt",
                   "grad_inter_vis", "grad_inter_txt")


def weighted_terms(terms: LossTerms, vis_beta: float, txt_beta: float) -> dict[str, torch.Tensor]:
    """The three summands of the total loss, as they enter it."""
    return {"ce": terms.ce, "intra": vis_beta * terms.intra, "inter": txt_beta * terms.inter}


def term_gradient_norms(terms: LossTerms, vis_beta: float, txt_beta: float,
                        vis_ctx: torch.Tensor, txt_ctx: torch.Tensor,
                        loss_scale: float = 1.0) -> dict[str, float]:
    """``grad_<term>_<vis|txt>``: ||d(weighted term) / d(prompts)||_2, unscaled.

    ``loss_scale`` is the AMP gradient scaler's current scale (1 without AMP): each term is
    scaled before the backward pass, as the training step's loss is, so fp16 gradients do not
    underflow, and the norm is divided by it again. A term that does not depend on a prompt
    (the intra-class loss on the text prompts, the inter-class loss on the visual ones) has
    norm 0. The graph is retained for the training step's own backward pass.
    """
    norms: dict[str, float] = {}
    for name, term in weighted_terms(terms, vis_beta, txt_beta).items():
        grads = (None, None)
        if term.requires_grad:
            grads = torch.autograd.grad(term * loss_scale, (vis_ctx, txt_ctx),
                                        retain_graph=True, allow_unused=True)
        for suffix, grad in zip(("vis", "txt"), grads):
            norm = 0.0 if grad is None else torch.linalg.vector_norm(grad.float()).item()
            norms[f"grad_{name}_{suffix}"] = norm / loss_scale
    return norms
