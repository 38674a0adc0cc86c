"""DAPT's prompted CLIP: visual and text prompt tokens around a frozen CLIP.

Data flow (B images, C classes, K text tokens, V visual tokens):
    images -> patches + CLS -> [CLS, V visual prompts, patches] -> ViT -> z~ (B, D)
    classes -> [SOS, K text prompts, class name, '.', EOS] -> text transformer -> w~ (C, D)
               (shared_prefix: [SOS, K prompts] once, then each class's tokens up to EOS)
    logits = exp(logit_scale) * z~ . w~^T   (both L2-normalised)
Only ``PromptLearner`` holds trainable parameters.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, NamedTuple, Sequence

import torch
from torch import nn

from .clip_loading import import_clip
from .config import TEXT_ENCODERS
from .errors import DaptInitError
from .init_rules import EOS_TOKEN_ID, draw_text_prompts, initial_visual_prompts
from .text_encoder import SharedPrefixTextEncoder, standard_block_problem


# Under PREC amp, autocast's low-precision dtype: float16 on every device (a GPU's default,
# and what the CPU's autocast supports since torch 2.x), so the CPU runs the GPU's casts.
AMP_DTYPE = torch.float16


@dataclass(frozen=True)
class PromptSettings:
    vis_tokens: int = 16
    txt_tokens: int = 16
    vis_dropout: float = 0.0
    init_method: str = "random"
    noise_scale: float = 0.1  # for the text and the visual same / diff noise
    vis_init_method: str = "random"
    text_encoder: str = "shared_prefix"  # shared_prefix | full (DAPT's formulation)

    @classmethod
    def from_config(cls, node) -> "PromptSettings":
        """From a ``TRAINER.DAPT_INIT`` config node."""
        return cls(node.VIS_NUM_TOKENS, node.TXT_NUM_TOKENS, node.VIS_DROPOUT,
                   node.INIT_METHOD, node.INIT_NOISE_SCALE,
                   node.VIS_INIT_METHOD, node.TEXT_ENCODER)


def tokenize_prompts(clip, placeholder: str, names: Sequence[str], n_tokens: int) -> torch.Tensor:
    """Token ids of "<placeholder> <name>." per class; a clear error when one does not fit."""
    try:
        return torch.cat([clip.tokenize(f"{placeholder} {name}.") for name in names])
    except RuntimeError as error:  # clip: "Input ... is too long for context length 77"
        longest = max(names, key=len)
        raise DaptInitError(
            f"TRAINER.DAPT_INIT.TXT_NUM_TOKENS is {n_tokens}: with class names such as "
            f"{longest!r} the text prompt exceeds CLIP's 77-token context. Use fewer text "
            "tokens (DAPT uses 16)."
        ) from error


class PromptLearner(nn.Module):
    """The trainable prompts and the frozen token embeddings around the text prompts."""

    def __init__(self, clip_model: nn.Module, classnames: Sequence[str], settings: PromptSettings):
        super().__init__()
        clip = import_clip()
        dtype = clip_model.dtype
        visual = clip_model.visual
        patch_size = visual.conv1.weight.shape[-1]
        token_embedding = clip_model.token_embedding

        # Draw order matters for reproducing DAPT: visual prompts, then text prompts.
        visual_prompts = initial_visual_prompts(settings.vis_init_method, settings.vis_tokens,
                                                visual.class_embedding, patch_size,
                                                settings.noise_scale)
        eos_embedding = token_embedding.weight[EOS_TOKEN_ID]
        text_prompts = draw_text_prompts(
            settings.init_method, settings.txt_tokens, eos_embedding, settings.noise_scale
        )
        self.vis_ctx = nn.Parameter(visual_prompts.to(dtype))  # (1, V, vis_width)
        self.txt_ctx = nn.Parameter(text_prompts.to(dtype))  # (K, width)
        self.vis_dropout = nn.Dropout(settings.vis_dropout)

        # "X X ... X <class name>." gives the token layout; the X slots are replaced by txt_ctx.
        placeholder = " ".join(["X"] * settings.txt_tokens)
        names = [name.replace("_", " ") for name in classnames]
        tokenized = tokenize_prompts(clip, placeholder, names, settings.txt_tokens)  # (C, 77)
        with torch.no_grad():
            embedded = token_embedding(tokenized.to(token_embedding.weight.device))
        # DAPT builds these in CLIP's fp16 (its only precision): round them as it does, so
        # fp32 / amp runs compute in fp32 from DAPT's very inputs (no-op under fp16).
        embedded = embedded.to(torch.float16).to(dtype)
        # Rebuilt from CLIP at every start, so they stay out of checkpoints.
        self.register_buffer("token_prefix", embedded[:, :1, :].cpu(), persistent=False)
        self.register_buffer(
            "token_suffix", embedded[:, 1 + settings.txt_tokens:, :].cpu(), persistent=False
        )
        self.register_buffer("tokenized_prompts", tokenized, persistent=False)
        self.n_classes = len(classnames)
        # The shared-prefix path encodes positions up to the longest EOS only.
        self.n_prefix = 1 + settings.txt_tokens  # SOS + K context tokens
        self.n_suffix = int(tokenized.argmax(dim=-1).max()) + 1 - self.n_prefix

    def insert_visual_prompts(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, 1 + P, w) -> (B, 1 + V + P, w): prompts right after CLS."""
        batch = tokens.shape[0]
        prompts = self.vis_dropout(self.vis_ctx.expand(batch, -1, -1)).to(tokens.dtype)
        return torch.cat([tokens[:, :1], prompts, tokens[:, 1:]], dim=1)

    def text_prompt_embeddings(self) -> torch.Tensor:
        """(C, 77, width): [SOS, K prompts, class name, '.', EOS, padding]."""
        context = self.txt_ctx.unsqueeze(0).expand(self.n_classes, -1, -1)
        return torch.cat([self.token_prefix, context.to(self.token_prefix.dtype),
                          self.token_suffix], dim=1)

    def shared_prefix_inputs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``SharedPrefixTextEncoder``'s inputs: prefix (C, 1 + K, width) as a broadcast view
        of one [SOS, K prompts] sequence, suffix (C, T, width) up to the longest EOS, and each
        class's EOS position."""
        sos = self.token_prefix[:1]  # the same SOS embedding for every class
        prefix = torch.cat([sos, self.txt_ctx.unsqueeze(0).to(sos.dtype)], dim=1)
        return (prefix.expand(self.n_classes, -1, -1), self.token_suffix[:, :self.n_suffix],
                self.tokenized_prompts.argmax(dim=-1))


class PromptedImageEncoder(nn.Module):
    """CLIP's ViT forward with visual prompts inserted after the input layer norm."""

    def __init__(self, clip_model: nn.Module):
        super().__init__()
        self.visual = clip_model.visual

    def forward(self, images: torch.Tensor, prompt_learner: PromptLearner) -> torch.Tensor:
        visual = self.visual
        x = visual.conv1(images)  # (B, w, grid, grid)
        x = x.flatten(2).permute(0, 2, 1)  # (B, P, w)
        cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
        x = visual.ln_pre(x)
        x = prompt_learner.insert_visual_prompts(x)  # (B, 1 + V + P, w)
        x = visual.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = visual.ln_post(x[:, 0, :])
        return x @ visual.proj if visual.proj is not None else x


class PromptedTextEncoder(nn.Module):
    """CLIP's text transformer over given token embeddings; features at the EOS position."""

    def __init__(self, clip_model: nn.Module):
        super().__init__()
        self.transformer = clip_model.transformer
        self.positional_embedding = clip_model.positional_embedding
        self.ln_final = clip_model.ln_final
        self.text_projection = clip_model.text_projection

    def forward(self, embeddings: torch.Tensor, tokenized: torch.Tensor) -> torch.Tensor:
        x = embeddings + self.positional_embedding.to(embeddings.dtype)
        x = self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = self.ln_final(x).to(embeddings.dtype)
        eos_positions = tokenized.argmax(dim=-1)  # EOS has the highest token id
        x = x[torch.arange(x.shape[0], device=x.device), eos_positions]
        return x @ self.text_projection


def choose_text_encoder(clip_model: nn.Module, requested: str) -> str:
    """``requested``, or "full" with one printed line when CLIP's blocks are not standard."""
    if requested not in TEXT_ENCODERS:
        raise DaptInitError(f"TRAINER.DAPT_INIT.TEXT_ENCODER is {requested!r}; valid values "
                            f"are {', '.join(TEXT_ENCODERS)}.")
    if requested == "full":
        return "full"
    transformer = clip_model.transformer
    blocks = list(getattr(transformer, "resblocks", []))
    problems = [standard_block_problem(block, transformer.width) for block in blocks]
    problem = next((p for p in problems if p), None if blocks else "it has no resblocks")
    if problem:
        print(f"Note: TRAINER.DAPT_INIT.TEXT_ENCODER shared_prefix needs the trainer's own "
              f"CLIP blocks, but {problem}: using the full text encoder")
        return "full"
    return "shared_prefix"


class Features(NamedTuple):
    logits: torch.Tensor  # (B, C)
    image_features: torch.Tensor  # (B, D), L2-normalised
    text_features: torch.Tensor  # (C, D), L2-normalised


class DAPTModel(nn.Module):
    """Prompted CLIP. ``forward`` returns logits only (what the toolbox's ``test()`` needs)."""

    def __init__(self, clip_model: nn.Module, classnames: Sequence[str], settings: PromptSettings):
        super().__init__()
        self.prompt_learner = PromptLearner(clip_model, classnames, settings)
        self.image_encoder = PromptedImageEncoder(clip_model)
        self.text_encoder_kind = choose_text_encoder(clip_model, settings.text_encoder)
        # ``text_encoder`` is the active one (the trainer may wrap it in nn.DataParallel).
        if self.text_encoder_kind == "shared_prefix":
            self.text_encoder = SharedPrefixTextEncoder(clip_model)
        else:
            self.text_encoder = PromptedTextEncoder(clip_model)
        self.logit_scale = clip_model.logit_scale
        self._frozen_text_features: torch.Tensor | None = None

    @property
    def dtype(self) -> torch.dtype:
        return self.image_encoder.visual.conv1.weight.dtype

    def encode_text(self) -> torch.Tensor:
        """Normalised text features of every class, (C, D)."""
        if self._frozen_text_features is not None:
            return self._frozen_text_features
        learner = self.prompt_learner
        if self.text_encoder_kind == "shared_prefix":
            features = self.text_encoder(*learner.shared_prefix_inputs())
        else:
            features = self.text_encoder(learner.text_prompt_embeddings(),
                                         learner.tokenized_prompts)
        return features / features.norm(dim=-1, keepdim=True)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised prompted image features, (B, D)."""
        features = self.image_encoder(images.to(self.dtype), self.prompt_learner)
        return features / features.norm(dim=-1, keepdim=True)

    def features(self, images: torch.Tensor) -> Features:
        image_features = self.encode_image(images)
        text_features = self.encode_text()
        logits = self.logit_scale.exp() * image_features @ text_features.t()
        return Features(logits, image_features, text_features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images).logits

    @contextmanager
    def frozen_text_features(self) -> Iterator[None]:
        """Encode the class texts once for a whole evaluation instead of once per batch.

        The prompts do not change while testing, so every batch would recompute the same
        (C, D) matrix; for ImageNet's 1000 classes that dominates test time.
        """
        with torch.no_grad():
            self._frozen_text_features = self.encode_text()
        try:
            yield
        finally:
            self._frozen_text_features = None
