"""Shared-prefix text encoding: the same class features as the full path, for far less work.

Two facts about DAPT's text side make most of the full path's work unnecessary:

- CLIP's text transformer is causal and reads each feature at the EOS position, so positions
  after the longest EOS never influence any feature;
- every class prompt starts with the same SOS + K context tokens, so under causal attention the
  hidden states of those K + 1 positions are identical for every class at every layer.

``SharedPrefixTextEncoder`` therefore runs the shared prefix once (one sequence) and, per class,
only the tokens after it up to the longest EOS; at every layer each class's tokens attend to the
prefix's keys and values, as a decoder reuses a cached prefix. The gradient reaches the context
tokens through that one prefix. It reads the weights of the CLIP model it is given and reuses
its layer norms and MLPs; only the attention is written out here, so it needs the residual
blocks the trainer builds (``clip_model.py``, ``standard_block_problem``); the model falls back
to the full path for any other.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .clip_model import ResidualAttentionBlock


def standard_block_problem(block: nn.Module, width: int) -> str | None:
    """Why ``block`` is not a block this encoder can read, or None.

    It reads the weights of ``clip_model.ResidualAttentionBlock``, the block the trainer builds
    itself (whatever clip a host vendors). A block of any other class may compute something
    else, and so may one of ours changed after loading: both use the full path.
    """
    kind = type(block)
    if kind is not ResidualAttentionBlock:
        return (f"its blocks are {kind.__module__}.{kind.__qualname__}, not the trainer's own "
                "(load CLIP through clip_loading.load_clip)")
    replaced = [name for name in ("forward", "attention") if name in vars(block)]
    if replaced:
        return f"a block's {replaced[0]} was replaced after loading"
    mask = block.attn_mask
    if not isinstance(mask, torch.Tensor) or mask.dim() != 2:
        return "its attention has no causal mask"
    size = mask.shape[0]
    causal = torch.full((size, size), float("-inf")).triu_(1)
    if mask.shape != (size, size) or not torch.equal(mask.float().cpu(), causal):
        return "its attention mask is not CLIP's causal mask"
    return _probe_problem(block, size, width)


@torch.no_grad()
def _probe_problem(block: nn.Module, length: int, width: int) -> str | None:
    """Run the block's own forward and ours on one random sequence; they must agree.

    This catches a block that looks standard but computes something else (e.g. a host's
    modified copy importable as ``clip``). The input comes from a private generator, so the
    global random stream is untouched.
    """
    weight = block.attn.in_proj_weight
    x = torch.randn(length, 1, width, generator=torch.Generator().manual_seed(0))
    x = x.to(weight.device, weight.dtype)
    theirs = block(x).transpose(0, 1).float()  # CLIP's blocks are sequence-first
    split = length // 4
    batch_first = x.transpose(0, 1)
    prefix, suffix = SharedPrefixTextEncoder._block(block, batch_first[:, :split],
                                                    batch_first[:, split:])
    ours = torch.cat([prefix, suffix], dim=1).float()
    tolerance = 1e-4 if weight.dtype == torch.float32 else 2e-2
    if not (ours - theirs).abs().max() <= tolerance * (1 + theirs.abs().max()):
        return "its forward does not compute x + attn(ln_1(x)), then x + mlp(ln_2(x))"
    return None


def _causal_mask(size: int, like: torch.Tensor) -> torch.Tensor:
    return torch.full((size, size), float("-inf"), device=like.device, dtype=like.dtype).triu_(1)


class SharedPrefixTextEncoder(nn.Module):
    """CLIP's text transformer for prompts that share their first tokens; features at EOS.

    ``forward(prefix, suffix, eos_positions)``:
        prefix (C, P, width): the shared SOS + context embeddings; every row is the same (pass
            an ``expand``-ed view). Only row 0 is encoded; the class dimension is there so that
            ``nn.DataParallel`` can split the classes and each GPU encodes its own prefix once.
        suffix (C, T, width): each class's token embeddings after the prefix, up to the longest
            EOS position in the whole class set (inclusive).
        eos_positions (C,): each class's EOS position in the full sequence (P <= eos < P + T).
    Returns (C, D) unnormalised features, equal to ``PromptedTextEncoder``'s.
    """

    def __init__(self, clip_model: nn.Module):
        super().__init__()
        self.blocks = nn.ModuleList(clip_model.transformer.resblocks)
        self.positional_embedding = clip_model.positional_embedding
        self.ln_final = clip_model.ln_final
        self.text_projection = clip_model.text_projection

    def forward(self, prefix: torch.Tensor, suffix: torch.Tensor,
                eos_positions: torch.Tensor) -> torch.Tensor:
        n_prefix, n_suffix = prefix.shape[1], suffix.shape[1]
        positions = self.positional_embedding.to(suffix.dtype)
        x_prefix = prefix[:1] + positions[:n_prefix]  # (1, P, width)
        x_suffix = suffix + positions[n_prefix:n_prefix + n_suffix]  # (C, T, width)
        for block in self.blocks:
            x_prefix, x_suffix = self._block(block, x_prefix, x_suffix)
        rows = torch.arange(x_suffix.shape[0], device=x_suffix.device)
        at_eos = x_suffix[rows, eos_positions.to(x_suffix.device) - n_prefix]  # (C, width)
        return self.ln_final(at_eos).to(suffix.dtype) @ self.text_projection

    @staticmethod
    def _block(block: nn.Module, x_prefix: torch.Tensor,
               x_suffix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One residual block: x + attn(ln_1(x)), then x + mlp(ln_2(x)), as CLIP's forward."""
        attn = block.attn
        heads, width = attn.num_heads, attn.embed_dim
        head_dim = width // heads

        def project(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            q, k, v = F.linear(block.ln_1(x), attn.in_proj_weight, attn.in_proj_bias).chunk(3, -1)
            # (N, L, width) -> (N, heads, L, head_dim); q scaled before the product, as torch's
            # multi-head attention does.
            split = [t.unflatten(-1, (heads, head_dim)).transpose(1, 2) for t in (q, k, v)]
            split[0] = split[0] * (1.0 / math.sqrt(head_dim))
            return tuple(split)

        q_p, k_p, v_p = project(x_prefix)  # (1, heads, P, head_dim)
        q_s, k_s, v_s = project(x_suffix)  # (C, heads, T, head_dim)
        n_prefix = k_p.shape[2]

        # Prefix: causal attention within itself (it never sees the class tokens).
        scores = q_p @ k_p.transpose(-2, -1) + _causal_mask(n_prefix, q_p)
        out_p = scores.float().softmax(-1).to(v_p.dtype) @ v_p
        # Suffix: every prefix position, plus the class's own tokens up to itself. The prefix's
        # keys and values broadcast over the classes (no per-class copy).
        to_prefix = q_s @ k_p.transpose(-2, -1)  # (C, heads, T, P)
        to_self = q_s @ k_s.transpose(-2, -1) + _causal_mask(k_s.shape[2], q_s)
        weights = torch.cat([to_prefix, to_self], dim=-1).float().softmax(-1).to(v_s.dtype)
        out_s = weights[..., :n_prefix] @ v_p + weights[..., n_prefix:] @ v_s

        def merge(out: torch.Tensor) -> torch.Tensor:
            return F.linear(out.transpose(1, 2).flatten(2), attn.out_proj.weight,
                            attn.out_proj.bias)

        x_prefix = x_prefix + merge(out_p).to(x_prefix.dtype)
        x_suffix = x_suffix + merge(out_s).to(x_suffix.dtype)
        x_prefix = x_prefix + block.mlp(block.ln_2(x_prefix))
        x_suffix = x_suffix + block.mlp(block.ln_2(x_suffix))
        return x_prefix, x_suffix
