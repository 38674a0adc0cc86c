"""The trainer's own CLIP network equals openai-clip's ``build_model``, bit for bit.

openai-clip (the package, not a host's copy) is the independent reference here: the same
weights must give the same parameters, the same outputs in fp16 and fp32, and leave torch's
global generator where ``clip.build_model`` leaves it (DAPT's first prompt draws come next).
"""
from __future__ import annotations

import pytest
import torch

from tools.small_clip import small_clip_state_dict
from trainers.dapt_init.clip_loading import load_clip
from trainers.dapt_init.clip_model import build_clip_model
from trainers.dapt_init.errors import DaptInitError

# A second shape: 3 text layers, 2 heads of 64, a 48 px image of 16 px patches (9 patches).
WIDER = dict(transformer_width=128, transformer_layers=3, vision_width=128, vision_layers=1,
             image_resolution=48, embed_dim=32)


def openai_build(state_dict):
    from clip.model import build_model

    return build_model(dict(state_dict))


@pytest.mark.parametrize("overrides", [{}, WIDER], ids=["small", "wider"])
def test_building_moves_the_global_generator_as_clip_does(overrides):
    state = small_clip_state_dict(3, **overrides)
    torch.manual_seed(11)
    openai_build(state)
    theirs = torch.random.get_rng_state()
    after_theirs = torch.randn(5)
    torch.manual_seed(11)
    build_clip_model(state)
    assert torch.equal(torch.random.get_rng_state(), theirs)
    assert torch.equal(torch.randn(5), after_theirs)


@pytest.mark.parametrize("overrides", [{}, WIDER], ids=["small", "wider"])
def test_same_parameters_dtypes_and_names(overrides):
    state = small_clip_state_dict(1, **overrides)
    ours, theirs = build_clip_model(state), openai_build(state)
    ours_params, their_params = dict(ours.named_parameters()), dict(theirs.named_parameters())
    assert list(ours_params) == list(their_params)
    for name, param in their_params.items():
        assert ours_params[name].dtype == param.dtype, name
        assert torch.equal(ours_params[name], param), name
    assert ours.dtype == theirs.dtype == torch.float16
    assert not ours.training


@pytest.mark.parametrize("precision", ["fp16-weights-in-fp32", "fp32"])
@pytest.mark.parametrize("overrides", [{}, WIDER], ids=["small", "wider"])
def test_image_and_text_features_equal_clips(overrides, precision):
    state = small_clip_state_dict(2, **overrides)
    ours, theirs = build_clip_model(state), openai_build(state)
    # fp16 kernels are GPU-only: the fp16 model's weights run in fp32 on the CPU (both sides).
    ours.float(), theirs.float()
    if precision == "fp32":
        ours.load_state_dict(state), theirs.load_state_dict(state)
    size = theirs.visual.input_resolution
    images = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(0))
    tokens = torch.zeros(2, 77, dtype=torch.long)
    tokens[0, :5] = torch.tensor([49406, 320, 1125, 2368, 49407])
    tokens[1, :3] = torch.tensor([49406, 343, 49407])
    with torch.no_grad():
        assert torch.equal(ours.encode_image(images), theirs.encode_image(images))
        assert torch.equal(ours.visual(images), theirs.visual(images))  # the prototypes' path
        assert torch.equal(ours.encode_text(tokens), theirs.encode_text(tokens))
        for mine, clips in zip(ours.transformer.resblocks, theirs.transformer.resblocks):
            x = torch.randn(77, 2, mine.attn.embed_dim)
            assert torch.equal(mine(x), clips(x))


def test_bad_weights_are_refused_naming_the_tensor(tmp_path):
    cases = {
        "vocab": ({"token_embedding.weight": torch.zeros(100, 64)}, "token_embedding.weight"),
        "context": ({"positional_embedding": torch.zeros(10, 64)}, "positional_embedding"),
        "nan": ({"visual.proj": torch.full((64, 64), float("nan"))}, "visual.proj"),
        "patches": ({"visual.positional_embedding": torch.zeros(6, 64)},
                    "visual.positional_embedding"),
    }
    for name, (change, tensor) in cases.items():
        path = tmp_path / f"{name}.pt"
        torch.save({**small_clip_state_dict(0), **change}, path)
        with pytest.raises(DaptInitError, match=tensor.replace(".", r"\.")) as raised:
            load_clip("ViT-B/16", str(path))
        assert "\n" not in str(raised.value), name


def test_a_clip_copy_with_another_tokenizer_is_refused_naming_it():
    import types

    from trainers.dapt_init.clip_loading import check_tokenizer

    def shifted(texts, context_length=77):  # a vendored copy whose vocabulary was changed
        tokens = torch.zeros(len(texts), context_length, dtype=torch.long)
        tokens[:, :3] = torch.tensor([49406, 321, 49407])
        return tokens

    host_clip = types.ModuleType("clip.clip")
    host_clip.__file__ = "/somewhere/host/clip/clip.py"
    host_clip.tokenize = shifted
    with pytest.raises(DaptInitError, match="/somewhere/host/clip/clip.py") as raised:
        check_tokenizer(host_clip)
    assert "tokenizer is modified" in str(raised.value) and "\n" not in str(raised.value)
    from clip import clip as openai_clip

    check_tokenizer(openai_clip)  # CLIP's own passes
