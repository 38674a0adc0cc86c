"""Per-term gradient norms (LOG_GRAD_NORMS) against gradients computed independently here."""
from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from tests.trainers.test_config import toolbox_like_cfg
from trainers.dapt_init.config import validate_config
from trainers.dapt_init.errors import DaptInitError
from trainers.dapt_init.grad_norms import GRAD_NORM_NAMES, term_gradient_norms
from trainers.dapt_init.losses import dapt_loss
from trainers.dapt_init.model import DAPTModel, PromptSettings

CLASSES = ["annual crop land", "forest", "river", "sea lake"]
VIS_BETA, TXT_BETA, RBF_T = 0.7, 3.0, 2.0


@pytest.fixture(scope="module")
def setting(small_clip_file):
    """A small DAPT model with non-trivial prompts, a batch, its labels and prototypes."""
    from trainers.dapt_init.clip_loading import load_clip

    torch.manual_seed(0)
    clip_model = load_clip("ViT-B/16", small_clip_file).float()
    model = DAPTModel(clip_model, CLASSES, PromptSettings(3, 4, 0.0, "diff", 0.1, "diff"))
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith("prompt_learner."))
    size = clip_model.visual.input_resolution
    images = torch.randn(6, 3, size, size)
    labels = torch.tensor([0, 1, 2, 3, 0, 2])
    prototypes = F.normalize(torch.randn(len(CLASSES), clip_model.text_projection.shape[1]), dim=-1)
    return model, images, labels, prototypes


def norms_from_the_module(model, images, labels, prototypes, loss_scale=1.0):
    out = model.features(images)
    terms = dapt_loss(out.logits, labels, out.image_features, out.text_features, prototypes,
                      VIS_BETA, TXT_BETA, RBF_T)
    learner = model.prompt_learner
    return terms, term_gradient_norms(terms, VIS_BETA, TXT_BETA, learner.vis_ctx,
                                      learner.txt_ctx, loss_scale=loss_scale)


def norms_by_hand(model, images, labels, prototypes) -> dict[str, float]:
    """Each weighted term written out, on a fresh forward, through .backward() and .grad."""
    learner = model.prompt_learner
    expected = {}
    for term in ("ce", "intra", "inter"):
        learner.zero_grad(set_to_none=True)
        image_features = model.encode_image(images)
        text_features = model.encode_text()
        if term == "ce":
            logits = model.logit_scale.exp() * image_features @ text_features.t()
            loss = F.cross_entropy(logits, labels)
        elif term == "intra":
            loss = VIS_BETA * ((image_features - prototypes[labels]) ** 2).mean()
        else:
            n = len(CLASSES)
            squared = torch.cdist(text_features, text_features) ** 2
            off_diagonal = ~torch.eye(n, dtype=torch.bool)
            loss = TXT_BETA * torch.exp(-RBF_T * squared[off_diagonal]).mean()
        loss.backward()
        for suffix, param in (("vis", learner.vis_ctx), ("txt", learner.txt_ctx)):
            grad = param.grad
            expected[f"grad_{term}_{suffix}"] = 0.0 if grad is None else grad.norm().item()
    learner.zero_grad(set_to_none=True)
    return expected


def test_each_weighted_terms_gradient_norm_equals_an_independent_backward_pass(setting):
    _, norms = norms_from_the_module(*setting)
    expected = norms_by_hand(*setting)
    assert list(norms) == list(GRAD_NORM_NAMES)
    for name in GRAD_NORM_NAMES:
        assert norms[name] == pytest.approx(expected[name], rel=1e-4, abs=1e-9), name
    # The intra-class term only sees image features, the inter-class term only text features.
    assert norms["grad_intra_txt"] == 0.0 and norms["grad_inter_vis"] == 0.0
    assert min(norms[n] for n in ("grad_ce_vis", "grad_ce_txt", "grad_intra_vis",
                                  "grad_inter_txt")) > 0


def test_the_norms_leave_the_training_gradients_unchanged(setting):
    model, *_ = setting
    learner = model.prompt_learner
    learner.zero_grad(set_to_none=True)
    out = model.features(setting[1])
    plain = dapt_loss(out.logits, setting[2], out.image_features, out.text_features, setting[3],
                      VIS_BETA, TXT_BETA, RBF_T)
    plain.total.backward()
    expected = (learner.vis_ctx.grad.clone(), learner.txt_ctx.grad.clone())

    learner.zero_grad(set_to_none=True)
    terms, _ = norms_from_the_module(*setting)
    assert learner.vis_ctx.grad is None and learner.txt_ctx.grad is None  # nothing accumulated
    terms.total.backward()  # the graph was retained for the training step's backward
    assert torch.equal(learner.vis_ctx.grad, expected[0])
    assert torch.equal(learner.txt_ctx.grad, expected[1])
    learner.zero_grad(set_to_none=True)


def test_a_gradient_scalers_scale_is_taken_out_again(setting):
    _, unscaled = norms_from_the_module(*setting)
    _, scaled = norms_from_the_module(*setting, loss_scale=2.0 ** 16)
    assert scaled == pytest.approx(unscaled, rel=1e-5)


def test_log_grad_norms_is_off_by_default_and_validated():
    assert toolbox_like_cfg().TRAINER.DAPT_INIT.LOG_GRAD_NORMS is False
    validate_config(toolbox_like_cfg(**{"TRAINER.DAPT_INIT.LOG_GRAD_NORMS": True}))
    cfg = toolbox_like_cfg()
    cfg.TRAINER.DAPT_INIT.LOG_GRAD_NORMS = "yes"  # a host could set it so; yacs' CLI would not
    with pytest.raises(DaptInitError, match="LOG_GRAD_NORMS is 'yes'; it must be True or False"):
        validate_config(cfg)
