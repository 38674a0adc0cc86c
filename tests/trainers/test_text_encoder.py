"""shared_prefix vs full text encoding: the same numbers, checked against each other and against
an independent float64 computation written here (a plain per-class causal transformer)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from trainers.dapt_init.model import DAPTModel, PromptSettings

# Token lengths differ (1 to 8 name tokens), so the EOS positions differ.
CLASSES = ["forest", "sea or lake", "herbaceous vegetation land with annual crop fields", "x"]
LR, MOMENTUM, WEIGHT_DECAY = 0.5, 0.9, 5e-4


def build(clip_model, encoder: str, txt_tokens: int) -> DAPTModel:
    torch.manual_seed(0)
    model = DAPTModel(clip_model, CLASSES, PromptSettings(vis_tokens=2, txt_tokens=txt_tokens,
                                                          text_encoder=encoder))
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith("prompt_learner."))
    return model


# ------------------------------------------------------------------- independent reference
def reference_text_features(clip_model, txt_ctx: torch.Tensor) -> torch.Tensor:
    """Float64, one class at a time, all 77 positions, explicit causal softmax attention."""
    from clip import clip

    w = {k: v.detach().double() for k, v in clip_model.state_dict().items()}
    width = clip_model.transformer.width
    heads = clip_model.transformer.resblocks[0].attn.num_heads
    head_dim = width // heads
    k = txt_ctx.shape[0]

    def layer_norm(x, name):
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean) ** 2).mean(-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + 1e-5) * w[name + ".weight"] + w[name + ".bias"]

    features = []
    for name in CLASSES:
        ids = clip.tokenize(f"{' '.join(['X'] * k)} {name}.")[0]
        # The fixed token embeddings as DAPT builds them: in CLIP's fp16.
        tokens = w["token_embedding.weight"][ids].half().to(w["token_embedding.weight"].dtype)
        x = torch.cat([tokens[:1], txt_ctx, tokens[1 + k:]]) + w["positional_embedding"]
        length = x.shape[0]
        allowed = torch.ones(length, length, dtype=torch.bool).tril()  # causal
        for i in range(clip_model.transformer.layers):
            p = f"transformer.resblocks.{i}."
            h = layer_norm(x, p + "ln_1")
            qkv = h @ w[p + "attn.in_proj_weight"].t() + w[p + "attn.in_proj_bias"]
            q, key, v = qkv.split(width, dim=-1)
            outs = []
            for j in range(heads):
                cols = slice(j * head_dim, (j + 1) * head_dim)
                scores = (q[:, cols] @ key[:, cols].t()) / math.sqrt(head_dim)
                scores = scores.masked_fill(~allowed, float("-inf"))
                outs.append(torch.softmax(scores, -1) @ v[:, cols])
            attn = torch.cat(outs, -1) @ w[p + "attn.out_proj.weight"].t()
            x = x + attn + w[p + "attn.out_proj.bias"]
            h = layer_norm(x, p + "ln_2")
            h = h @ w[p + "mlp.c_fc.weight"].t() + w[p + "mlp.c_fc.bias"]
            h = h * torch.sigmoid(1.702 * h)
            x = x + h @ w[p + "mlp.c_proj.weight"].t() + w[p + "mlp.c_proj.bias"]
        eos = int(ids.argmax())
        features.append(layer_norm(x[eos], "ln_final") @ w["text_projection"])
    features = torch.stack(features)
    return features / features.norm(dim=-1, keepdim=True)


def reference_loss_terms(image_features, text_features, logit_scale, labels, prototypes, t):
    """DAPT's three terms written out (no call into trainers.dapt_init.losses)."""
    logits = logit_scale * image_features @ text_features.t()
    ce = -(logits.log_softmax(-1)[torch.arange(len(labels)), labels]).mean()
    intra = ((image_features - prototypes[labels]) ** 2).mean()
    c = text_features.shape[0]
    squared = ((text_features[:, None] - text_features[None]) ** 2).sum(-1)
    off_diagonal = ~torch.eye(c, dtype=torch.bool)
    inter = torch.exp(-t * squared[off_diagonal]).mean()
    return logits, ce, intra, inter


# -------------------------------------------------------------------------------- the tests
@pytest.mark.parametrize("txt_tokens", [1, 16])
def test_both_encoders_match_an_independent_computation_through_one_optimizer_step(
        small_clip, txt_tokens):
    from trainers.dapt_init.losses import dapt_loss

    generator = torch.Generator().manual_seed(3)
    images = torch.randn(6, 3, 32, 32, generator=generator)
    labels = torch.tensor([0, 1, 2, 3, 2, 1])
    prototypes = nn.functional.normalize(torch.randn(4, 64, generator=generator), dim=-1)

    results = {}
    for encoder in ("full", "shared_prefix"):
        model = build(small_clip, encoder, txt_tokens)
        assert model.text_encoder_kind == encoder
        learner = model.prompt_learner
        before = {n: p.detach().clone() for n, p in learner.named_parameters()}
        optim = torch.optim.SGD(learner.parameters(), lr=LR, momentum=MOMENTUM,
                                weight_decay=WEIGHT_DECAY)
        out = model.features(images)
        terms = dapt_loss(out.logits, labels, out.image_features, out.text_features,
                          prototypes, 1.0, 1.0, 2.0)
        optim.zero_grad()
        terms.total.backward()
        grads = {n: p.grad.clone() for n, p in learner.named_parameters()}
        optim.step()
        after = {n: p.detach().clone() for n, p in learner.named_parameters()}
        results[encoder] = (out, terms, grads, before, after)

    # The reference: same initial prompts, the model's image side (identical in both paths),
    # everything on the text side and the loss computed here in float64.
    model = build(small_clip, "full", txt_tokens)
    txt_ctx = nn.Parameter(model.prompt_learner.txt_ctx.detach().double())
    image_features = model.encode_image(images).double()
    text_features = reference_text_features(small_clip, txt_ctx)
    logits, ce, intra, inter = reference_loss_terms(
        image_features, text_features, model.logit_scale.exp().double(), labels,
        prototypes.double(), 2.0)
    total = ce + intra + inter
    # d total / d image_features flows into vis_ctx through the (shared) image encoder.
    g_image, g_txt = torch.autograd.grad(total, [image_features, txt_ctx])
    image_features.float().backward(g_image.float())
    g_vis = model.prompt_learner.vis_ctx.grad.double()
    ref_grads = {"vis_ctx": g_vis, "txt_ctx": g_txt}

    for encoder, (out, terms, grads, before, after) in results.items():
        assert (out.text_features.double() - text_features).abs().max() < 1e-5, encoder
        assert (out.logits.double() - logits).abs().max() < 1e-4, encoder  # logits up to 100
        for mine, theirs in ((terms.ce, ce), (terms.intra, intra), (terms.inter, inter),
                             (terms.total, total)):
            assert abs(mine.item() - theirs.item()) < 1e-5, encoder
        for name, ref in ref_grads.items():
            scale = ref.abs().max().item()
            assert scale > 0
            assert (grads[name].double() - ref).abs().max().item() < 1e-5 * scale, (encoder, name)
            # First SGD step with momentum and weight decay: p - lr * (g + wd * p).
            p0 = before[name].double()
            expected = p0 - LR * (ref + WEIGHT_DECAY * p0)
            moved = (expected - p0).abs().max().item()
            assert (after[name].double() - expected).abs().max().item() < 1e-5 * moved, name

    (full, *_), (shared, *_) = results["full"], results["shared_prefix"]
    assert (full.text_features - shared.text_features).abs().max() < 1e-5
    assert (full.logits - shared.logits).abs().max() < 1e-4
    for name in ("vis_ctx", "txt_ctx"):
        step_full = results["full"][4][name] - results["full"][3][name]
        difference = (results["full"][4][name] - results["shared_prefix"][4][name]).abs().max()
        assert difference <= 1e-5 * step_full.abs().max()


def test_shared_prefix_encodes_only_up_to_the_longest_eos(small_clip):
    from clip import clip

    model = build(small_clip, "shared_prefix", 4)
    prefix, suffix, eos = model.prompt_learner.shared_prefix_inputs()
    longest = max(int(clip.tokenize(f"X X X X {name}.")[0].argmax()) for name in CLASSES)
    assert prefix.shape == (4, 5, 64) and prefix.stride(0) == 0  # one sequence, broadcast
    assert suffix.shape == (4, longest + 1 - 5, 64)
    assert eos.tolist() == [int(clip.tokenize(f"X X X X {n}.")[0].argmax()) for n in CLASSES]


def test_splitting_the_classes_as_data_parallel_does_gives_the_same_features(small_clip):
    """nn.DataParallel scatters every input along dim 0 and concatenates the outputs."""
    model = build(small_clip, "shared_prefix", 3)
    inputs = model.prompt_learner.shared_prefix_inputs()
    with torch.no_grad():
        whole = model.text_encoder(*inputs)
        parts = [model.text_encoder(*(t[i:i + 2] for t in inputs)) for i in (0, 2)]
        wrapped = nn.DataParallel(model.text_encoder)(*inputs)  # no GPU: calls the module
    assert torch.allclose(torch.cat(parts), whole, atol=1e-6)
    assert torch.allclose(wrapped, whole, atol=0)


def test_evaluation_encodes_texts_once_with_the_shared_prefix(small_clip):
    model = build(small_clip, "shared_prefix", 4).eval()
    calls = []
    model.text_encoder.register_forward_hook(lambda *args: calls.append(1))
    with torch.no_grad(), model.frozen_text_features():
        first = model(torch.randn(3, 3, 32, 32))
        model(torch.randn(3, 3, 32, 32))
    assert len(calls) == 1 and first.shape == (3, 4)


# ----------------------------------------------------------------------------- the fallback
class DeepPromptBlock(nn.Module):
    """A host's modified block: same parts as openai-clip's, a different forward."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.attn, self.ln_1, self.mlp, self.ln_2 = block.attn, block.ln_1, block.mlp, block.ln_2
        self.attn_mask = block.attn_mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = self.attn_mask.to(x.dtype)
        x = x + 0.5 * self.attn(self.ln_1(x), self.ln_1(x), self.ln_1(x), attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))


def test_a_non_standard_clip_falls_back_to_the_full_path_with_one_line(small_clip, capsys):
    blocks = small_clip.transformer.resblocks
    for i in range(len(blocks)):
        blocks[i] = DeepPromptBlock(blocks[i])
    fallback = build(small_clip, "shared_prefix", 4)
    printed = capsys.readouterr().out.strip().splitlines()
    assert fallback.text_encoder_kind == "full"
    assert len(printed) == 1 and "DeepPromptBlock, not the trainer's own" in printed[0]
    # It really runs the host's blocks: the same numbers as the full path on this CLIP.
    full = build(small_clip, "full", 4)
    with torch.no_grad():
        assert torch.equal(fallback.encode_text(), full.encode_text())


def test_a_standard_looking_block_that_computes_otherwise_falls_back(small_clip, capsys):
    """The trainer's own block with its attention replaced on the instance: not read."""
    block = small_clip.transformer.resblocks[1]
    original = block.attention
    block.attention = lambda x: 0.5 * original(x)  # an instance override the class calls
    assert build(small_clip, "shared_prefix", 4).text_encoder_kind == "full"
    assert "attention was replaced" in capsys.readouterr().out


def test_the_probe_leaves_the_global_random_stream_alone(small_clip):
    """Choosing the encoder draws nothing: the same prompts and the same stream afterwards."""
    models, states = [], []
    for encoder in ("shared_prefix", "full"):
        torch.manual_seed(5)
        models.append(DAPTModel(small_clip, CLASSES, PromptSettings(text_encoder=encoder)))
        states.append(torch.random.get_rng_state())
    assert models[0].text_encoder_kind == "shared_prefix"
    assert torch.equal(states[0], states[1])
    for name in ("vis_ctx", "txt_ctx"):
        assert torch.equal(getattr(models[0].prompt_learner, name),
                           getattr(models[1].prompt_learner, name))


def test_a_text_transformer_without_the_causal_mask_falls_back(small_clip, capsys):
    for block in small_clip.transformer.resblocks:
        block.attn_mask = None  # bidirectional: the shared prefix would no longer be exact
    assert build(small_clip, "shared_prefix", 4).text_encoder_kind == "full"
    assert "no causal mask" in capsys.readouterr().out


def test_the_probe_catches_a_block_class_changed_after_import(small_clip, monkeypatch, capsys):
    """The trainer's own block class, changed in place (as a patching host might): the probe
    run at construction notices that it no longer computes what the shared path computes."""
    from trainers.dapt_init.clip_model import ResidualAttentionBlock

    original = ResidualAttentionBlock.attention
    monkeypatch.setattr(ResidualAttentionBlock, "attention",
                        lambda self, x: 0.5 * original(self, x))
    assert build(small_clip, "shared_prefix", 4).text_encoder_kind == "full"
    assert "does not compute" in capsys.readouterr().out


@pytest.mark.parametrize("precision", ["fp16", "amp"])
def test_fp16_and_amp_agree_within_fp16_tolerance(small_clip_file, precision):
    """On the GPU when there is one, else on the CPU (torch runs fp16 kernels there too)."""
    from trainers.dapt_init.clip_loading import load_clip
    from trainers.dapt_init.trainer import AMP_DTYPE

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    clip_model = load_clip("ViT-B/16", small_clip_file)  # fp16 as shipped
    if precision == "amp":
        clip_model.float()
    clip_model.to(device)
    features = {}
    for encoder in ("full", "shared_prefix"):
        model = build(clip_model, encoder, 16).to(device)
        with torch.autocast(device.type, dtype=AMP_DTYPE, enabled=precision == "amp"):
            encoded = model.encode_text()
        # fp16: CLIP in half precision; amp: fp32 weights, half-precision matmuls.
        assert encoded.dtype == torch.float16, (precision, encoder)
        features[encoder] = encoded.float()
    # Independent of both: fp32 CLIP, full encoder (the fp16 weights rounded the same way).
    reference = load_clip("ViT-B/16", small_clip_file).float().to(device)
    expected = build(reference, "full", 16).to(device).encode_text().float()
    assert (features["full"] - features["shared_prefix"]).abs().max() < 5e-3
    for encoded in features.values():
        assert 0 < (encoded - expected).abs().max() < 5e-3


def test_the_config_key_defaults_to_shared_prefix_and_names_its_values():
    from tests.trainers.test_config import toolbox_like_cfg
    from trainers.dapt_init.config import validate_config
    from trainers.dapt_init.errors import DaptInitError

    cfg = toolbox_like_cfg()
    assert cfg.TRAINER.DAPT_INIT.TEXT_ENCODER == "shared_prefix"
    assert PromptSettings.from_config(cfg.TRAINER.DAPT_INIT).text_encoder == "shared_prefix"
    with pytest.raises(DaptInitError, match="TEXT_ENCODER is 'fast'; valid values are "
                                            "shared_prefix, full"):
        validate_config(toolbox_like_cfg(**{"TRAINER.DAPT_INIT.TEXT_ENCODER": "fast"}))
