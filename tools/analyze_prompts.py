"""The study's prompt analyses: first-token statistics per init (2) and a t-SNE of class texts (3).

One subcommand each, in analysis/ (shared helpers: common.py); this file only
dispatches:

    init-stats     first-token statistics of the initial (and saved) prompts per init (2)
    tsne           t-SNE of the class text features of trained runs (3)
    losses         loss terms, training accuracy and gradient norms per epoch
    nearest-words  nearest vocabulary tokens of each text context vector

Each command takes run folders alone: a run's data, config and CLIP weights come from its own
record (result.json, log.txt); flags given override them (a CLIP other than the run's own is
refused).

    python tools/analyze_prompts.py init-stats --seeds 1 2 3 --clip-weights ViT-B-16.pt
    python tools/analyze_prompts.py tsne --runs random=RUN_DIR same=RUN_DIR diff=RUN_DIR --epoch 1
    python tools/analyze_prompts.py losses RUN_DIR... --out losses.png
    python tools/analyze_prompts.py nearest-words --runs RUN_DIR... --epoch 1

User errors (a missing checkpoint, an unknown init, a checkpoint of another CLIP) end with one
``error: ...`` line and exit status 2, as train.py's do.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parent.parent

from analysis.init_stats import add_init_stats_parser  # noqa: E402
from analysis.losses import add_losses_parser  # noqa: E402
from analysis.nearest_words import add_nearest_words_parser  # noqa: E402
from analysis.tsne import add_tsne_parser  # noqa: E402
from trainers.dapt_init.errors import DaptInitError  # noqa: E402


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add_parser in (add_init_stats_parser, add_tsne_parser, add_losses_parser,
                       add_nearest_words_parser):
        add_parser(subparsers)
    return parser.parse_args(argv)


def run(argv: Sequence[str] | None = None) -> int:
    """Entry point: user errors become one ``error:`` line and exit status 2, no traceback."""
    args = parse_args(argv)
    try:
        return args.handler(args)
    except DaptInitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    from study.entry import run_main

    sys.exit(run_main(run))
