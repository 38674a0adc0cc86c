"""DAPT's objective: CLIP cross-entropy plus two dispersion terms, kept apart for logging.

L = L_ce + VIS_BETA * L_intra + TXT_BETA * L_inter, each term in the dtype DAPT computes it in:
L_ce and L_intra in the model's (fp16 under PREC fp16, as DAPT; fp32 under fp32, and under amp,
where autocast runs both losses in fp32), L_inter always in fp32 (DAPT casts it).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch.nn import functional as F


class LossTerms(NamedTuple):
    ce: torch.Tensor  # cross-entropy of the scaled cosine logits
    intra: torch.Tensor  # visual: image features to their class prototype (MSE)
    inter: torch.Tensor  # text: RBF similarity between class text features
    total: torch.Tensor


def intra_class_loss(
    image_features: torch.Tensor, prototypes: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Mean squared error between each normalised image feature and its class prototype."""
    targets = prototypes.to(image_features.device, image_features.dtype)[labels]
    return F.mse_loss(image_features, targets)


def inter_class_loss(text_features: torch.Tensor, rbf_t: float) -> torch.Tensor:
    """Mean over class pairs m != n of exp(-t * ||w_m - w_n||^2); 0 with a single class."""
    if text_features.shape[0] < 2:
        return text_features.new_zeros((), dtype=torch.float32)
    squared = torch.pdist(text_features.float(), p=2).pow(2)
    return torch.exp(-rbf_t * squared).mean()


def dapt_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    prototypes: torch.Tensor,
    vis_beta: float,
    txt_beta: float,
    rbf_t: float,
) -> LossTerms:
    ce = F.cross_entropy(logits, labels)
    intra = intra_class_loss(image_features, prototypes, labels)
    inter = inter_class_loss(text_features, rbf_t)
    return LossTerms(ce, intra, inter, ce + vis_beta * intra + txt_beta * inter)
