"""The prompted CLIP: prompt placement, logits-only inference, and what training updates."""
from __future__ import annotations

import torch

from trainers.dapt_init.model import DAPTModel, PromptSettings

CLASSES = ["forest", "river", "sea lake"]


def build(clip_model, **settings) -> DAPTModel:
    torch.manual_seed(0)
    return DAPTModel(clip_model, CLASSES, PromptSettings(vis_tokens=3, txt_tokens=4, **settings))


def test_visual_prompts_sit_between_cls_and_patches(small_clip):
    model = build(small_clip)
    tokens = torch.randn(2, 1 + 4, 64)  # CLS + 4 patches
    out = model.prompt_learner.insert_visual_prompts(tokens)
    assert out.shape == (2, 1 + 3 + 4, 64)
    assert torch.equal(out[:, 0], tokens[:, 0]) and torch.equal(out[:, 4:], tokens[:, 1:])
    assert torch.equal(out[0, 1:4], model.prompt_learner.vis_ctx[0].detach())


def test_text_prompts_replace_the_placeholder_slots(small_clip):
    from clip import clip

    model = build(small_clip, init_method="diff")
    embeddings = model.prompt_learner.text_prompt_embeddings()
    assert embeddings.shape == (3, 77, 64)
    ids = clip.tokenize(["X X X X sea lake."])[0]
    plain = small_clip.token_embedding(ids).half().float()  # as DAPT holds them: fp16
    assert torch.equal(embeddings[2, 0], plain[0])  # SOS
    assert torch.equal(embeddings[2, 1:5], model.prompt_learner.txt_ctx.detach())
    assert torch.equal(embeddings[2, 5:], plain[5:])  # name, '.', EOS, padding


def test_forward_returns_logits_only_as_the_toolbox_test_expects(small_clip):
    model = build(small_clip).eval()
    images = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        logits = model(images)
        features = model.features(images)
    assert isinstance(logits, torch.Tensor) and logits.shape == (5, 3)
    image_norms = features.image_features.norm(dim=-1)
    assert torch.allclose(image_norms, torch.ones(5), atol=1e-5)
    manual = model.logit_scale.exp() * features.image_features @ features.text_features.t()
    assert torch.allclose(logits, manual, atol=1e-5)


def test_frozen_text_features_give_the_same_logits_as_the_plain_path(small_clip):
    model = build(small_clip).eval()
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        plain = model(images)
        with model.frozen_text_features():
            cached = model(images)
    assert torch.allclose(plain, cached, atol=1e-6)
    assert model._frozen_text_features is None  # released after the evaluation


def test_a_training_step_on_the_cpu_updates_only_the_prompts(small_clip):
    from trainers.dapt_init.losses import dapt_loss

    model = build(small_clip, init_method="same")
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith("prompt_learner."))
    frozen_before = {n: p.detach().clone() for n, p in model.named_parameters()
                     if not n.startswith("prompt_learner.")}
    prompts_before = {n: p.detach().clone() for n, p in model.prompt_learner.named_parameters()}
    optimizer = torch.optim.SGD(model.prompt_learner.parameters(), lr=1.0)
    out = model.features(torch.randn(6, 3, 32, 32))
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    terms = dapt_loss(out.logits, labels, out.image_features, out.text_features,
                      torch.nn.functional.normalize(torch.randn(3, 64), dim=-1), 1.0, 1.0, 2.0)
    terms.total.backward()
    optimizer.step()
    for name, param in model.prompt_learner.named_parameters():
        assert not torch.equal(param.detach(), prompts_before[name]), name
    for name, param in model.named_parameters():
        if name in frozen_before:
            assert param.grad is None and torch.equal(param.detach(), frozen_before[name]), name


def test_checkpointed_state_holds_only_the_prompts(small_clip):
    state = build(small_clip).prompt_learner.state_dict()
    assert sorted(state) == ["txt_ctx", "vis_ctx"]


def test_text_features_are_clips_eos_features_of_the_prompted_tokens_l2_normalised(small_clip):
    """Against a computation written here from CLIP's own modules, one class at a time."""
    from clip import clip

    model = build(small_clip, init_method="diff").eval()
    ctx = model.prompt_learner.txt_ctx.detach()
    expected = []
    for name in CLASSES:
        ids = clip.tokenize(f"X X X X {name}.")[0]
        with torch.no_grad():
            # The fixed token embeddings as DAPT builds them: in CLIP's fp16.
            tokens = small_clip.token_embedding(ids).half().float()
            tokens[1:5] = ctx  # the K context slots after SOS
            x = tokens.unsqueeze(1) + small_clip.positional_embedding.unsqueeze(1)  # (77, 1, w)
            x = small_clip.ln_final(small_clip.transformer(x)[:, 0])
            feature = x[int(ids.argmax())] @ small_clip.text_projection
        expected.append(feature / feature.norm())
    with torch.no_grad():
        features = model.encode_text()
    assert torch.allclose(features.norm(dim=-1), torch.ones(len(CLASSES)), atol=1e-6)
    assert torch.allclose(features, torch.stack(expected), atol=1e-5)
