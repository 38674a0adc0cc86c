"""The three text-prompt initialisations, checked against computations written here."""
from __future__ import annotations

import math

import pytest
import torch

from trainers.dapt_init.init_rules import draw_text_prompts, draw_visual_prompts
from trainers.dapt_init.model import PromptLearner, PromptSettings

CLASSES = ["annual crop land", "forest", "river"]
EOS_ID = 49407


def build_learner(clip_model, method: str, seed: int = 7, scale: float = 0.1,
                  vis: int = 4, txt: int = 5) -> PromptLearner:
    torch.manual_seed(seed)
    return PromptLearner(clip_model, CLASSES, PromptSettings(vis, txt, 0.0, method, scale))


def eos(clip_model) -> torch.Tensor:
    return clip_model.token_embedding.weight[EOS_ID].detach().float()


def test_same_init_makes_all_tokens_identical(small_clip):
    text = build_learner(small_clip, "same", scale=0.1).txt_ctx.detach()
    assert torch.equal(text, text[0].expand_as(text))
    assert torch.linalg.vector_norm(text[0] - eos(small_clip)).item() == pytest.approx(0.1, rel=1e-4)


def test_diff_init_gives_each_token_its_own_noise_of_the_given_norm(small_clip):
    text = build_learner(small_clip, "diff", scale=0.25).txt_ctx.detach()
    noise = text - eos(small_clip)
    norms = torch.linalg.vector_norm(noise, dim=1)
    assert torch.allclose(norms, torch.full_like(norms, 0.25), rtol=1e-4)
    for i in range(len(text)):
        for j in range(i + 1, len(text)):
            assert not torch.allclose(text[i], text[j])


def test_noise_is_an_isotropic_gaussian_direction(small_clip):
    # u / ||u|| with u ~ N(0, I): the mean direction over many tokens is near zero.
    torch.manual_seed(0)
    text = draw_text_prompts("diff", 2000, eos(small_clip), 1.0)
    mean_direction = (text - eos(small_clip)).mean(dim=0)
    assert torch.linalg.vector_norm(mean_direction).item() < 0.1


def test_zero_noise_scale_starts_every_token_at_eos(small_clip):
    for method in ("same", "diff"):
        text = build_learner(small_clip, method, scale=0.0).txt_ctx.detach()
        assert torch.equal(text, eos(small_clip).expand_as(text))


def test_random_init_draws_visual_before_text_as_dapt(small_clip):
    learner = build_learner(small_clip, "random", seed=11, vis=4, txt=5)
    width = small_clip.visual.conv1.weight.shape[0]
    patch = small_clip.visual.conv1.weight.shape[-1]
    bound = math.sqrt(6.0 / (3 * patch * patch + width))
    torch.manual_seed(11)  # DAPT: fp16 uniform visual prompts, then fp16 N(0, 0.02^2) text
    visual = torch.zeros(1, 4, width, dtype=torch.float16).uniform_(-bound, bound)
    text = torch.zeros(5, small_clip.ln_final.weight.shape[0], dtype=torch.float16)
    text.normal_(0.0, 0.02)
    assert torch.equal(learner.vis_ctx.detach(), visual.float())
    assert torch.equal(learner.txt_ctx.detach(), text.float())


def test_random_init_follows_the_documented_distributions(small_clip):
    torch.manual_seed(0)
    visual = draw_visual_prompts(400, 768, 16).float()  # ViT-B/16's width and patch
    bound = math.sqrt(6.0 / (3 * 16 * 16 + 768))
    text = draw_text_prompts("random", 400, eos(small_clip), 0.1)
    assert visual.abs().max().item() <= bound * (1 + 1e-3)  # fp16 rounding at the edge
    assert visual.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    assert text.std().item() == pytest.approx(0.02, rel=0.02)
    assert text.mean().abs().item() < 0.001


def test_visual_prompts_are_identical_across_methods_for_one_seed(small_clip):
    prompts = [build_learner(small_clip, m, seed=3).vis_ctx.detach()
               for m in ("random", "same", "diff")]
    assert torch.equal(prompts[0], prompts[1]) and torch.equal(prompts[0], prompts[2])


def test_methods_differ_only_in_text_prompts(small_clip):
    same = build_learner(small_clip, "same", seed=3).txt_ctx.detach()
    diff = build_learner(small_clip, "diff", seed=3).txt_ctx.detach()
    random_ = build_learner(small_clip, "random", seed=3).txt_ctx.detach()
    assert not torch.equal(same, diff) and not torch.equal(diff, random_)


def test_prompts_are_trainable_parameters_in_the_model_dtype(small_clip_file):
    from trainers.dapt_init.clip_loading import load_clip

    fp16_clip = load_clip("ViT-B/16", small_clip_file)  # fp16, as clip ships
    learner = build_learner(fp16_clip, "diff")
    assert learner.txt_ctx.dtype == torch.float16 and learner.txt_ctx.requires_grad
    assert sorted(name for name, _ in learner.named_parameters()) == ["txt_ctx", "vis_ctx"]


def test_too_many_text_tokens_for_the_context_is_a_clear_error(small_clip):
    from trainers.dapt_init.errors import DaptInitError

    with pytest.raises(DaptInitError, match="TXT_NUM_TOKENS is 75"):
        build_learner(small_clip, "random", txt=75)


def test_every_method_leaves_the_random_stream_where_dapt_does(small_clip):
    # Data order, augmentations and dropout after the prompts are drawn must not depend on
    # the init method, or the comparison between methods is confounded.
    following = []
    for method in ("random", "same", "diff"):
        build_learner(small_clip, method, seed=5)
        following.append(torch.rand(8))
    assert torch.equal(following[0], following[1]) and torch.equal(following[0], following[2])


def test_same_noise_is_drawn_from_the_generator_state_at_the_text_draw(small_clip):
    learner = build_learner(small_clip, "same", seed=9, vis=4, txt=5)
    width = small_clip.visual.conv1.weight.shape[0]
    torch.manual_seed(9)
    torch.zeros(1, 4, width, dtype=torch.float16).uniform_(-1, 1)  # the visual draw
    u = torch.randn(small_clip.ln_final.weight.shape[0])  # a copy of the stream at this point
    expected = eos(small_clip) + 0.1 * u / u.norm()
    assert torch.allclose(learner.txt_ctx.detach()[0], expected, atol=1e-6)
