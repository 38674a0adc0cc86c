"""CLIP's vision-transformer model, built here from its weights.

CoOp-family codebases vendor a ``clip/`` folder, and several change its ``model.py``: RPO's
blocks take the attention mask as an argument, MaPLe's ``build_model`` needs a
``design_details`` dict and builds prompt-carrying blocks. A drop-in trainer that called the
host's ``clip.build_model`` would compute whatever that host's copy computes. So the trainer
builds the network itself, from the state dict alone, and uses the host's clip only for what
every copy shares unchanged: the tokenizer and the downloader (``clip_loading.py``).

The modules, their parameter names and their arithmetic are openai-clip's (its weights load
unchanged, ``tests/test_clip_model.py`` checks every output against ``clip.build_model``'s
bit for bit), and so is the order in which they are constructed and initialised: building a
model draws from torch's global generator exactly as ``clip.build_model`` does, which the
original DAPT trainer's first prompt draws depend on.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

# The tokenizer's fixed sizes: ids up to 49407 (EOS) and 77 positions per text.
VOCAB_SIZE = 49408
CONTEXT_LENGTH = 77
HEAD_WIDTH = 64  # CLIP's attention heads are 64 wide (heads = width // 64)


class LayerNorm(nn.LayerNorm):
    """Layer norm computed in fp32 whatever the input's dtype (CLIP's fp16 weights)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.type(torch.float32)).type(x.dtype)


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    """x + attn(ln_1(x)), then x + mlp(ln_2(x)); sequence-first inputs (L, N, width)."""

    def __init__(self, width: int, heads: int, attn_mask: torch.Tensor | None = None):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(width, width * 4)),
            ("gelu", QuickGELU()),
            ("c_proj", nn.Linear(width * 4, width)),
        ]))
        self.ln_2 = LayerNorm(width)
        # A plain attribute, as in clip: not part of the state dict.
        self.attn_mask = attn_mask

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        mask = self.attn_mask
        if mask is not None:
            mask = mask.to(dtype=x.dtype, device=x.device)
        return self.attn(x, x, x, need_weights=False, attn_mask=mask)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int,
                 attn_mask: torch.Tensor | None = None):
        super().__init__()
        self.width = width
        self.layers = layers
        self.resblocks = nn.Sequential(*(ResidualAttentionBlock(width, heads, attn_mask)
                                         for _ in range(layers)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)


class VisionTransformer(nn.Module):
    """CLIP's ViT. ``forward`` is the unprompted one (class prototypes); training runs the
    prompted forward of model.py over these modules."""

    def __init__(self, input_resolution: int, patch_size: int, width: int, layers: int,
                 output_dim: int):
        super().__init__()
        self.input_resolution = input_resolution
        self.output_dim = output_dim
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch_size, stride=patch_size, bias=False)
        scale = width ** -0.5
        grid = input_resolution // patch_size
        # The draws below move the global generator as clip's constructor does (see module doc).
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = Transformer(width, layers, width // HEAD_WIDTH)
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Image features (B, output_dim), read at the CLS token."""
        x = self.conv1(images).flatten(2).permute(0, 2, 1)  # (B, P, width)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.transformer(self.ln_pre(x).permute(1, 0, 2)).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


@dataclass(frozen=True)
class ClipShape:
    """A ViT CLIP's sizes, read from its weights as clip.build_model reads them."""

    embed_dim: int
    image_resolution: int
    vision_layers: int
    vision_width: int
    patch_size: int
    context_length: int
    vocab_size: int
    text_width: int
    text_layers: int

    @classmethod
    def of(cls, state_dict: dict[str, torch.Tensor]) -> "ClipShape":
        """Sizes from the weights; raises KeyError for a missing key, ValueError otherwise."""
        conv = state_dict["visual.conv1.weight"]
        positions = state_dict["visual.positional_embedding"].shape[0]
        grid = math.isqrt(max(positions - 1, 0))
        if grid * grid != positions - 1 or grid == 0:
            raise ValueError(f"visual.positional_embedding has {positions} rows, not 1 + a "
                             "square number of patches")
        return cls(
            embed_dim=state_dict["text_projection"].shape[1],
            image_resolution=conv.shape[-1] * grid,
            vision_layers=_count_blocks(state_dict, "visual.transformer.resblocks."),
            vision_width=conv.shape[0],
            patch_size=conv.shape[-1],
            context_length=state_dict["positional_embedding"].shape[0],
            vocab_size=state_dict["token_embedding.weight"].shape[0],
            text_width=state_dict["ln_final.weight"].shape[0],
            text_layers=_count_blocks(state_dict, "transformer.resblocks."),
        )

    def problem(self) -> str | None:
        """What keeps these weights from working with clip's tokenizer and heads, or None."""
        if self.vocab_size != VOCAB_SIZE:
            return (f"token_embedding.weight has {self.vocab_size} rows; clip's tokenizer "
                    f"needs {VOCAB_SIZE}")
        if self.context_length != CONTEXT_LENGTH:
            return (f"positional_embedding has {self.context_length} positions; clip's "
                    f"tokenizer writes {CONTEXT_LENGTH}")
        for name, width in (("visual.conv1.weight", self.vision_width),
                            ("ln_final.weight", self.text_width)):
            if width == 0 or width % HEAD_WIDTH:
                return f"{name} gives width {width}, not a multiple of {HEAD_WIDTH} (CLIP's heads)"
        if self.vision_layers == 0 or self.text_layers == 0:
            return "it has no transformer blocks"
        return None


def _count_blocks(state_dict: dict[str, torch.Tensor], prefix: str) -> int:
    return len({key[len(prefix):].split(".")[0] for key in state_dict if key.startswith(prefix)})


class ClipModel(nn.Module):
    """A ViT CLIP: ``visual``, the text transformer and the embeddings around it."""

    def __init__(self, shape: ClipShape):
        super().__init__()
        self.context_length = shape.context_length
        self.visual = VisionTransformer(shape.image_resolution, shape.patch_size,
                                        shape.vision_width, shape.vision_layers, shape.embed_dim)
        causal = torch.empty(shape.context_length, shape.context_length)
        causal.fill_(float("-inf")).triu_(1)
        self.transformer = Transformer(shape.text_width, shape.text_layers,
                                       shape.text_width // HEAD_WIDTH, causal)
        self.vocab_size = shape.vocab_size
        self.token_embedding = nn.Embedding(shape.vocab_size, shape.text_width)
        self.positional_embedding = nn.Parameter(torch.empty(shape.context_length,
                                                             shape.text_width))
        self.ln_final = LayerNorm(shape.text_width)
        self.text_projection = nn.Parameter(torch.empty(shape.text_width, shape.embed_dim))
        self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))
        self._initialise(shape.text_width, shape.text_layers)

    def _initialise(self, width: int, layers: int) -> None:
        # The same draws, in the same order and sizes, as clip's initialisation: the values are
        # overwritten by the weights, but the generator's position afterwards is DAPT's.
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        out_std = width ** -0.5 * (2 * layers) ** -0.5
        for block in self.transformer.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=width ** -0.5)
            nn.init.normal_(block.attn.out_proj.weight, std=out_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=(2 * width) ** -0.5)
            nn.init.normal_(block.mlp.c_proj.weight, std=out_std)
        nn.init.normal_(self.text_projection, std=width ** -0.5)

    @property
    def dtype(self) -> torch.dtype:
        return self.visual.conv1.weight.dtype

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Unprompted image features (B, embed_dim), as CLIP computes them."""
        return self.visual(images.type(self.dtype))

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """Unprompted text features (N, embed_dim) of token ids (N, 77), read at EOS."""
        x = self.token_embedding(tokens).type(self.dtype) + self.positional_embedding.type(self.dtype)
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = self.ln_final(x).type(self.dtype)
        eos = tokens.argmax(dim=-1)  # EOS has the highest id
        return x[torch.arange(x.shape[0], device=x.device), eos] @ self.text_projection


def half_weights(model: nn.Module) -> None:
    """CLIP's fp16 conversion: linear, conv and attention weights and the projections; layer
    norms, embeddings and the logit scale stay fp32."""
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            for param in (module.weight, module.bias):
                if param is not None:
                    param.data = param.data.half()
        if isinstance(module, nn.MultiheadAttention):
            for name in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight",
                         "in_proj_bias", "bias_k", "bias_v"):
                param = getattr(module, name)
                if param is not None:
                    param.data = param.data.half()
        for name in ("text_projection", "proj"):
            param = getattr(module, name, None)
            if isinstance(param, torch.Tensor):
                param.data = param.data.half()


def build_clip_model(state_dict: dict[str, torch.Tensor]) -> ClipModel:
    """The model in eval mode with fp16 weights, as ``clip.build_model`` returns it.

    Raises KeyError / ValueError / RuntimeError for weights that do not make a ViT CLIP
    (``clip_loading.build_clip`` turns them into one line).
    """
    shape = ClipShape.of(state_dict)
    problem = shape.problem()
    if problem:
        raise ValueError(problem)
    model = ClipModel(shape)
    half_weights(model)  # before loading, as clip does: the weights are rounded on copy
    weights = {key: value for key, value in state_dict.items()
               if key not in ("input_resolution", "context_length", "vocab_size")}
    model.load_state_dict(weights)
    return model.eval()
