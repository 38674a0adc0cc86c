"""DAPT's loss terms against the formulas of STUDY.md, computed here with plain loops."""
from __future__ import annotations

import math

import pytest
import torch

from trainers.dapt_init.losses import dapt_loss, inter_class_loss, intra_class_loss


def normalised(*shape: int) -> torch.Tensor:
    x = torch.randn(*shape, dtype=torch.float64)
    return (x / x.norm(dim=-1, keepdim=True)).float()


def test_inter_class_loss_is_the_mean_rbf_over_class_pairs():
    torch.manual_seed(0)
    text, t = normalised(5, 8), 2.0
    values = [math.exp(-t * float(((text[m] - text[n]) ** 2).sum()))
              for m in range(5) for n in range(5) if m != n]
    assert inter_class_loss(text, t).item() == pytest.approx(sum(values) / len(values), rel=1e-5)


def test_inter_class_loss_is_zero_for_a_single_class():
    assert inter_class_loss(normalised(1, 8), 2.0).item() == 0.0


def test_intra_class_loss_is_the_mse_to_each_images_prototype():
    torch.manual_seed(1)
    images, prototypes = normalised(6, 8), normalised(3, 8)
    labels = torch.tensor([0, 2, 1, 2, 0, 0])
    total = sum(float(((images[i] - prototypes[labels[i]]) ** 2).sum()) for i in range(6))
    expected = total / (6 * 8)  # DAPT's F.mse_loss: a mean over every element
    assert intra_class_loss(images, prototypes, labels).item() == pytest.approx(expected, rel=1e-5)


def test_total_combines_the_three_terms_with_the_betas():
    torch.manual_seed(2)
    images, texts, prototypes = normalised(4, 8), normalised(3, 8), normalised(3, 8)
    labels = torch.tensor([0, 1, 2, 1])
    logits = 100.0 * images @ texts.t()
    terms = dapt_loss(logits, labels, images, texts, prototypes, vis_beta=10.0,
                      txt_beta=0.5, rbf_t=2.0)
    ce = sum(-float(torch.log_softmax(logits[i].double(), 0)[labels[i]]) for i in range(4)) / 4
    assert terms.ce.item() == pytest.approx(ce, rel=1e-5)
    expected_total = ce + 10.0 * terms.intra.item() + 0.5 * terms.inter.item()
    assert terms.total.item() == pytest.approx(expected_total, rel=1e-5)


def test_fp16_features_keep_ce_and_intra_in_fp16_and_inter_in_fp32_as_dapt_does():
    torch.manual_seed(3)
    images, texts, prototypes = normalised(4, 8).half(), normalised(3, 8).half(), normalised(3, 8)
    labels = torch.tensor([0, 1, 2, 0])
    logits = 100.0 * images @ texts.t()  # fp16, as DAPT's fp16 model gives them
    terms = dapt_loss(logits, labels, images, texts, prototypes, 1.0, 1.0, 2.0)
    assert (terms.ce.dtype, terms.intra.dtype) == (torch.float16, torch.float16)
    assert terms.inter.dtype == torch.float32 and terms.total.dtype == torch.float32
    # The same formulas in float64 from the fp16 inputs (prototypes rounded to fp16 first).
    ce = sum(-float(torch.log_softmax(logits[i].double(), 0)[labels[i]]) for i in range(4)) / 4
    targets = prototypes.half().double()
    intra = sum(float(((images[i].double() - targets[labels[i]]) ** 2).sum())
                for i in range(4)) / (4 * 8)
    assert terms.ce.item() == pytest.approx(ce, rel=2e-3)
    assert terms.intra.item() == pytest.approx(intra, rel=2e-3)
    assert terms.total.item() == pytest.approx(
        terms.ce.item() + terms.intra.item() + terms.inter.item(), rel=1e-3)
