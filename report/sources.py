"""Everything the report borrows from the rest of the repository, in one place.

The analysis commands (tools/prompt_analysis/) and the results code (parse_test_res.py's
public names, backed by results/) are reached only through the names below, so a move is
fixed here and nowhere else. Heavy imports (torch, clip, matplotlib through the tools) happen on
first use, so a report of a tree without prompt files never pays for them.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# parse_test_res imports nothing heavy: taken eagerly.
from parse_test_res import (INIT_ORDER, LOG_NAME, RESULT_JSON_FORMAT,  # noqa: E402
                            RESULT_JSON_NAME, LayoutError, ReferenceDataError,
                            crash_message,
                            dataset_display_name, dataset_sort_key, find_seed_folders,
                            latex_escaped, load_reference, log_files_newest_first, natural_key,
                            normalized_dataset, parse_run_path)
from trainers.dapt_init.runstate import PROMPT_MODEL  # noqa: E402  (no torch, no toolbox)
from trainers.dapt_init.run_folder import lock_holder  # noqa: E402
from trainers.dapt_init.dapt_values import dapt_values  # noqa: E402  (plain data)

__all__ = [
    "INIT_ORDER", "LOG_NAME", "RESULT_JSON_FORMAT", "RESULT_JSON_NAME", "LayoutError",
    "ReferenceDataError", "crash_message", "dataset_display_name", "dataset_sort_key",
    "find_seed_folders", "latex_escaped", "load_reference", "log_files_newest_first", "natural_key",
    "normalized_dataset", "parse_run_path", "lock_holder", "dapt_values", "PROMPT_MODEL", "REPO",
    "prompt_tools", "loss_tools", "model_tools",
]


def prompt_tools() -> Any:
    """token_statistics (init-stats), embed_2d, draw_panels, Panel, mean_pairwise_cosine
    (tsne), from tools/prompt_analysis/ (imports torch)."""
    from types import SimpleNamespace

    from tools.prompt_analysis import init_stats, tsne
    return SimpleNamespace(token_statistics=init_stats.token_statistics,
                           embed_2d=tsne.embed_2d, draw_panels=tsne.draw_panels,
                           Panel=tsne.Panel, mean_pairwise_cosine=tsne.mean_pairwise_cosine)


def loss_tools() -> Any:
    """tools/prompt_analysis/losses.py: read_run, group_lines, draw_lines, present_panels."""
    from tools.prompt_analysis import losses
    return losses


class ModelTools:
    """The trainer's plain-torch pieces the t-SNE needs (principle 2: no toolbox)."""

    def __init__(self) -> None:
        from trainers.dapt_init import checkpoint, clip_loading, model
        self.load_run_prompts = checkpoint.load_run_prompts
        self.prompt_epochs = checkpoint.prompt_epochs
        self.load_prompt_state = checkpoint.load_prompt_state
        self.load_clip = clip_loading.load_clip
        self.DAPTModel = model.DAPTModel
        self.PromptSettings = model.PromptSettings


def model_tools() -> ModelTools:
    return ModelTools()
