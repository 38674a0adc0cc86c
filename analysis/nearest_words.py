"""Nearest words of the text prompts: for each context vector, the k tokens of CLIP's vocabulary
closest in token-embedding space (Euclidean distance), decoded with clip's tokenizer, as CoOp's
``interpret_prompt.py`` does.

    python tools/analyze_prompts.py nearest-words \\
        --runs output/eurosat/DAPT_Init/diff/vit_b16_ep100_4shots/seed1 --epoch 1
    python tools/analyze_prompts.py nearest-words --clip-weights ViT-B-16.pt --init diff --seed 1

The token embedding is the input layer of CLIP's text encoder, where the prompts sit, so the
distances are those of the space the prompts are trained in. A trained prompt usually lies far
from every word: the distances say how far. A run's prompts are read with the CLIP it
recorded (result.json), unless --clip-weights / --backbone say otherwise (then they must be
the same weights).
"""
from __future__ import annotations

import argparse
import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from analysis.common import (TABLE_FORMATS, InitSettings, add_clip_options,
                                          check_weights, check_width, first_or_none,
                                          initial_text_prompts, logged_run_info,
                                          non_negative_int, positive_int, resolved_settings,
                                          run_text_prompts, saved_epochs)
from trainers.dapt_init.config import INIT_METHODS
from trainers.dapt_init.errors import DaptInitError


@dataclass(frozen=True)
class PromptSource:
    """Text prompts (K, width) and where they come from."""
    label: str  # the run folder or "initial"
    init: str
    seed: int | str
    epoch: int  # 0: the initial prompts
    prompts: torch.Tensor
    clip: InitSettings  # the CLIP whose vocabulary it is compared with


def nearest_tokens(vectors: torch.Tensor, embedding: torch.Tensor,
                   k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(distances, token ids), both (K, k), nearest first, by Euclidean distance in fp64.

    The direct (non-matmul) distance keeps near-ties in the right order, which the
    ||a||^2 - 2ab + ||b||^2 shortcut does not guarantee.
    """
    distances = torch.cdist(vectors.double(), embedding.double(),
                            compute_mode="donot_use_mm_for_euclid_dist")
    nearest = torch.topk(distances, k, dim=1, largest=False, sorted=True)
    return nearest.values, nearest.indices


def run_sources(run_dirs: Sequence[Path], epoch: int | None,
                args: argparse.Namespace) -> list[PromptSource]:
    """Each run's prompts, with its own CLIP (or the one given, checked to be its own)."""
    sources = []
    for run_dir in run_dirs:
        epochs = saved_epochs(run_dir)
        chosen = epoch if epoch is not None else (epochs[-1] if epochs else 1)
        prompts = run_text_prompts(run_dir, chosen)
        info = logged_run_info(run_dir)
        sources.append(PromptSource(str(run_dir), info.init or "?",
                                    "?" if info.seed is None else info.seed, chosen, prompts,
                                    resolved_settings(args, run_dir)))
    for source in sources:  # all prompts read before any weights are hashed
        check_weights(Path(source.label), source.clip)
    return sources


def initial_sources(inits: Sequence[str], seeds: Sequence[int],
                    settings: InitSettings) -> list[PromptSource]:
    return [PromptSource("initial", init, seed, 0, initial_text_prompts(init, seed, settings),
                         settings)
            for init in inits for seed in seeds]


HEADER = ["source", "init", "seed", "epoch", "position", "rank", "token_id", "token", "word",
          "distance"]


def result_rows(sources: Sequence[PromptSource], k: int) -> list[list[Any]]:
    """One row per source x context position x rank."""
    from clip.simple_tokenizer import SimpleTokenizer

    tokenizer = SimpleTokenizer()
    embeddings = token_embeddings(sources, k)
    rows = []
    for source in sources:
        embedding = embeddings[source.clip.backbone, source.clip.clip_weights]
        check_width(source.prompts, embedding.shape[1], Path(source.label),
                    source.clip.clip_source)
        distances, ids = nearest_tokens(source.prompts, embedding, k)
        for position in range(source.prompts.shape[0]):
            for rank in range(k):
                token_id = int(ids[position, rank])
                rows.append([source.label, source.init, source.seed, source.epoch, position + 1,
                             rank + 1, token_id, tokenizer.decoder[token_id],
                             tokenizer.decode([token_id]).strip(),
                             float(distances[position, rank])])
    return rows


def token_embeddings(sources: Sequence[PromptSource],
                     k: int) -> dict[tuple[str, str], torch.Tensor]:
    """The token embedding of each CLIP the sources use, loaded once each, in fp32."""
    from trainers.dapt_init.clip_loading import load_clip

    embeddings: dict[tuple[str, str], torch.Tensor] = {}
    for source in sources:
        key = (source.clip.backbone, source.clip.clip_weights)
        if key not in embeddings:
            embedding = load_clip(*key).token_embedding.weight.detach().float()
            if not 1 <= k <= embedding.shape[0]:
                raise DaptInitError(f"-k {k} must be between 1 and the vocabulary size "
                                    f"{embedding.shape[0]}.")
            embeddings[key] = embedding
    return embeddings


def render(rows: Sequence[Sequence[Any]], table_format: str) -> str:
    if table_format == "csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([HEADER, *rows])
        return buffer.getvalue().rstrip("\n")
    from tabulate import tabulate

    # Readable form, about 80 characters wide for k = 5 (one row of everything took ~200): per
    # source a title line (its folder is long), then per context position the distances of
    # the nearest and the k-th token and the k tokens, nearest first (csv: every distance).
    grouped: dict[tuple, dict[int, list[tuple[str, float]]]] = {}
    for source, init, seed, epoch, position, _, _, token, _, distance in rows:
        grouped.setdefault((source, init, seed, epoch), {}).setdefault(position, []).append(
            (token, distance))
    blocks = []
    for (source, init, seed, epoch), positions in grouped.items():
        table = [[position, f"{found[0][1]:.4f}" if len(found) == 1
                  else f"{found[0][1]:.4f} - {found[-1][1]:.4f}",
                  " ".join(token for token, _ in found)] for position, found in positions.items()]
        blocks.append(f"{source}: init {init}, seed {seed}, epoch {epoch}\n" + tabulate(
            table, headers=["position", "distance", "nearest tokens, nearest first"],
            tablefmt=table_format, disable_numparse=True, colalign=("right", "left", "left")))
    return "\n\n".join(blocks)


def nearest_words(args: argparse.Namespace) -> int:
    if not args.runs and not args.init:
        raise DaptInitError("nothing to interpret: give --runs RUN_DIR ... and/or "
                            "--init INIT ... (initial prompts).")
    sources = run_sources(args.runs or [], args.epoch, args)  # a missing checkpoint fails first
    # Initial prompts: the CLIP and prompt settings given, else the first run's own.
    sources += initial_sources(args.init or [], args.seeds,
                               resolved_settings(args, first_or_none(args.runs)))
    print(render(result_rows(sources, args.k), args.format))
    return 0


def add_nearest_words_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "nearest-words", help="nearest vocabulary tokens of each text context vector",
        description="For each text context vector of a run (--runs, --epoch) or of the initial "
                    "prompts of an init (--init, --seeds), the k nearest tokens of CLIP's "
                    "vocabulary by Euclidean distance in token-embedding space, decoded with "
                    "clip's tokenizer (as CoOp's interpret_prompt.py).")
    add_clip_options(parser, "CLIP (default: each run's own; for --init also the prompt "
                             "settings)",
                     note="--init: ")
    parser.add_argument("--runs", nargs="+", type=Path, metavar="RUN_DIR",
                        help="run folders (train.py --output-dir); init and seed from log.txt")
    parser.add_argument("--epoch", type=non_negative_int,
                        help="with --runs: the saved epoch (default: the last saved)")
    parser.add_argument("--init", nargs="+", choices=INIT_METHODS,
                        help="also the initial prompts of these inits, built as a run builds "
                             "them")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1],
                        help="with --init: training seeds (default 1)")
    parser.add_argument("-k", type=positive_int, default=5,
                        help="tokens per context vector (default 5)")
    parser.add_argument("--format", choices=TABLE_FORMATS, default="github",
                        help="github (default) or plain: a row per context vector; csv: a row "
                             "per vector and rank, full precision")
    parser.set_defaults(handler=nearest_words)
