"""init-stats: mean / std / min / max of the first text prompt token (optionally all tokens, or
each token) as a training run starts, for each init method and seed, built through the
trainer's own code path (seed, load CLIP, PromptLearner: the order train.py draws in), and,
with --from-runs, of the tokens saved in run folders, so initial and trained tokens sit in
one table. The CLIP and prompt settings not given on the command line are the first run's.

    python tools/analyze_prompts.py init-stats --seeds 1 2 3 --clip-weights ViT-B-16.pt
    python tools/analyze_prompts.py init-stats --epoch 1 \\
        --from-runs output/eurosat/DAPT_Init/*/vit_b16_ep50_1shots/seed1
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
                                          check_weights, check_width, checkpoint_path,
                                          chosen_epoch, first_or_none, initial_text_prompts,
                                          logged_run_info, non_negative_int, resolved_settings,
                                          run_text_prompts)
from trainers.dapt_init.config import INIT_METHODS
from trainers.dapt_init.errors import DaptInitError

STATISTICS = ("mean", "std", "min", "max")
TOKEN_CHOICES = ("first", "all", "each")


@dataclass(frozen=True)
class StatsRow:
    init: str
    seed: int | str
    epoch: int  # 0: the initial prompts
    tokens: str  # "first", "all" or a token's 1-based index
    stats: dict[str, float]
    source: str  # "initial" or the run folder

    def cells(self) -> list[Any]:
        return [self.init, self.seed, self.epoch, self.tokens,
                *(self.stats[name] for name in STATISTICS), self.source]


TABLE_HEADER = ["init", "seed", "epoch", "tokens", *STATISTICS, "source"]


def token_statistics(values: torch.Tensor) -> dict[str, float]:
    """Mean, sample std (torch's default, n - 1), min and max over every entry, in fp64."""
    flat = values.detach().double().flatten()
    return {"mean": flat.mean().item(), "std": flat.std().item(),
            "min": flat.min().item(), "max": flat.max().item()}


def token_selections(text_prompts: torch.Tensor,
                     choices: Sequence[str]) -> list[tuple[str, torch.Tensor]]:
    """(label, tokens) pairs: "first" (token 1), "all" (all K pooled), "each" ("1".."K")."""
    selected: list[tuple[str, torch.Tensor]] = []
    for choice in choices:
        if choice == "first":
            selected.append(("first", text_prompts[0]))
        elif choice == "all":
            selected.append(("all", text_prompts))
        else:
            selected.extend((str(k + 1), token) for k, token in enumerate(text_prompts))
    return selected


def stats_rows(text_prompts: torch.Tensor, choices: Sequence[str], init: str, seed: int | str,
               epoch: int, source: str) -> list[StatsRow]:
    return [StatsRow(init, seed, epoch, label, token_statistics(tokens), source)
            for label, tokens in token_selections(text_prompts, choices)]


def initial_rows(inits: Sequence[str], seeds: Sequence[int], settings: InitSettings,
                 choices: Sequence[str]) -> tuple[list[StatsRow], int]:
    """Rows for every init x seed, and the CLIP's token width (to check checkpoints against)."""
    rows: list[StatsRow] = []
    width = 0
    for init in inits:
        for seed in seeds:
            # A fresh CLIP per draw: building it is part of the random stream a run consumes.
            prompts = initial_text_prompts(init, seed, settings)
            width = prompts.shape[-1]
            rows += stats_rows(prompts, choices, init, seed, 0, "initial")
    return rows, width


def run_rows(run_dirs: Sequence[Path], epoch: int | None, choices: Sequence[str],
             clip_width: int | None, clip_source: str) -> list[StatsRow]:
    """Rows from saved checkpoints, labelled with the init and seed their log.txt names."""
    epochs = [chosen_epoch(run_dir, epoch) for run_dir in run_dirs]  # all errors before work
    rows: list[StatsRow] = []
    for run_dir, saved_epoch in zip(run_dirs, epochs):
        prompts = run_text_prompts(run_dir, saved_epoch)
        if clip_width is not None:
            check_width(prompts, clip_width, checkpoint_path(run_dir, saved_epoch), clip_source)
        info = logged_run_info(run_dir)
        rows += stats_rows(prompts, choices, info.init or "?",
                           "?" if info.seed is None else info.seed, saved_epoch, str(run_dir))
    return rows


def sort_rows(rows: Sequence[StatsRow]) -> list[StatsRow]:
    """init in the study's order, then seed, epoch (initial first), source; tokens kept in order."""
    def key(row: StatsRow) -> tuple:
        rank = INIT_METHODS.index(row.init) if row.init in INIT_METHODS else len(INIT_METHODS)
        seed = (0, row.seed) if isinstance(row.seed, int) else (1, 0)  # "?" (unknown) last
        return rank, seed, row.epoch, row.source
    return sorted(rows, key=key)  # stable: a row's token selections keep their order


def render_table(rows: Sequence[StatsRow], table_format: str) -> str:
    if table_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(TABLE_HEADER)
        writer.writerows(row.cells() for row in rows)  # full precision: for re-analysis
        return buffer.getvalue().rstrip("\n")
    from tabulate import tabulate

    return tabulate([row.cells() for row in rows], headers=TABLE_HEADER,
                    tablefmt=table_format, floatfmt=".5f")


def init_stats(args: argparse.Namespace) -> int:
    if args.no_initial and not args.from_runs:
        raise DaptInitError("--no-initial leaves nothing to show: add --from-runs RUN_DIR ...")
    run_dirs = list(args.from_runs or [])
    rows: list[StatsRow] = []
    clip_width: int | None = None
    settings = InitSettings()
    if not args.no_initial:
        # The CLIP and prompt settings not given are the first run's own, so the initial rows
        # are those its run started from.
        for run_dir in run_dirs:
            chosen_epoch(run_dir, args.epoch)  # a missing folder or epoch fails first
        settings = resolved_settings(args, first_or_none(run_dirs))
        for run_dir in run_dirs:
            check_weights(run_dir, settings)
        rows, clip_width = initial_rows(args.inits, args.seeds, settings, args.tokens)
    rows += run_rows(run_dirs, args.epoch, args.tokens, clip_width, settings.clip_source)
    print(render_table(sort_rows(rows), args.format))
    return 0


def add_init_stats_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "init-stats", help="statistics of the text prompt tokens per init (analysis 2)",
        description="Mean, std (sample, n-1), min and max of the text prompt tokens a training "
                    "run starts from, per init method and seed (epoch 0 rows), and of the "
                    "tokens saved in run folders (--from-runs). With --from-runs, the CLIP and "
                    "prompt settings not given are the first run's own (its result.json and "
                    "log.txt).")
    add_clip_options(parser, "CLIP and prompt settings (must match the training runs)")
    parser.add_argument("--inits", nargs="+", choices=INIT_METHODS, default=list(INIT_METHODS),
                        help="init methods (default: all three)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1],
                        help="training seeds (train.py --seed); default 1")
    parser.add_argument("--tokens", nargs="+", choices=TOKEN_CHOICES, default=["first"],
                        help="rows per prompt: first (the report's first token; default), all "
                             "(all K tokens pooled), each (one row per token)")
    parser.add_argument("--from-runs", nargs="+", type=Path, metavar="RUN_DIR",
                        help="also rows from saved prompts: run folders (train.py --output-dir); "
                             "init and seed are read from their log.txt")
    parser.add_argument("--epoch", type=non_negative_int,
                        help="with --from-runs: the epoch whose prompts to read (0: initial; "
                             "default: the last saved)")
    parser.add_argument("--no-initial", action="store_true",
                        help="only the --from-runs rows (no CLIP is loaded)")
    parser.add_argument("--format", choices=TABLE_FORMATS, default="github",
                        help="table format (default github; csv keeps full precision)")
    parser.set_defaults(handler=init_stats)
