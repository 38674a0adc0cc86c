"""Everything the report borrows from the rest of the repository, in one place.

The analysis commands (tools/prompt_analysis/), the results code (results/) and the run reader
(study/run.py, study/run_read.py) are reached only through the names below, so a move is
fixed here and nowhere else. Heavy imports (torch, clip, matplotlib through the tools) happen on
first use, so a report of a tree without prompt files never pays for them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

# The results code and the run reader import nothing heavy: taken eagerly.
from results.labels import INIT_ORDER  # noqa: E402
from results.logs import LOG_NAME, crash_message, log_files_newest_first  # noqa: E402
from results.numbers import summarize  # noqa: E402
from results.reference import ReferenceDataError, load_reference  # noqa: E402
from study.run import (RunKey, dataset_display_name, dataset_sort_key,  # noqa: E402
                       natural_key, normalized_dataset)
from study.run_read import (RunFolder, mapping_field, metric_of,  # noqa: E402
                            read_run_folders, record_format_problem)
from results.render import latex_escaped  # noqa: E402
from trainers.dapt_init.runstate import PROMPT_MODEL  # noqa: E402  (no torch, no toolbox)
from trainers.dapt_init.run_folder import lock_holder  # noqa: E402
from trainers.dapt_init.dapt_values import dapt_values  # noqa: E402  (plain data)

__all__ = [
    "INIT_ORDER", "LOG_NAME", "ReferenceDataError", "crash_message", "dataset_display_name",
    "dataset_sort_key", "load_reference", "log_files_newest_first", "natural_key",
    "normalized_dataset", "RunKey", "RunFolder", "mapping_field", "metric_of",
    "read_run_folders", "record_format_problem", "summarize", "lock_holder", "PROMPT_MODEL", "REPO",
    "latex_escaped", "dapt_values",
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
