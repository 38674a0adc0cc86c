"""Every run of an output root placed in the study: its RunKey from its folder names
(layout.py), its outcome, and whether it was made with the published recipe (what a
--reference compares it with)."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .layout import LayoutError, RunKey, find_seed_folders, parse_run_path
from .outcomes import RunOutcome, read_run, result_record


def recorded_vis_init(run_dir: Path) -> str | None:
    """The "vis_init_method" a DAPT_Init run recorded in result.json, if any."""
    return vis_init_of_record(result_record(run_dir))


def vis_init_of_record(record: dict[str, Any] | None) -> str | None:
    value = record.get("vis_init_method") if record is not None else None
    return value if isinstance(value, str) and value else None


# The published CLIP weights: the SHA-256 that clip's download URL carries for each backbone
# (clip refuses a download that does not match; tests/test_parse_study_polish.py holds this table
# to clip's own). A run that recorded a local file with another hash used other weights.
PUBLISHED_CLIP_SHA256 = {
    "ViT-B/32": "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
    "ViT-B/16": "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f",
    "ViT-L/14": "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836",
    "ViT-L/14@336px": "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02",
}
TRAINER_CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "trainers"
CONFIG_MAX_EPOCH = re.compile(r"^\s*MAX_EPOCH:\s*(\d+)", re.MULTILINE)
NOT_AS_PUBLISHED = "not as published"  # the column that says why, beside a --reference


def config_max_epoch(trainer: str, config: str) -> int | None:
    """MAX_EPOCH of configs/trainers/<trainer>/<config>.yaml, when that file is here."""
    try:
        text = (TRAINER_CONFIGS / trainer / f"{config}.yaml").read_text()
    except OSError:
        return None
    found = CONFIG_MAX_EPOCH.findall(text)
    return int(found[-1]) if found else None


def unpublished_setting(run_dir: Path, key: RunKey) -> tuple[str, ...]:
    """Why a DAPT_Init run is not the published recipe its reference numbers come from: CLIP
    weights other than the backbone's published file, or other epochs than its config's.
    Read from result.json; a run without one (older runs, other trainers) says nothing."""
    record = result_record(run_dir)
    if record is None:
        return ()
    reasons = []
    backbone = record.get("backbone")
    weights = (record.get("clip") or {}).get("weights") if isinstance(record.get("clip"),
                                                                      dict) else None
    if isinstance(weights, dict) and "sha256" in weights:
        if weights["sha256"] != PUBLISHED_CLIP_SHA256.get(backbone):
            reasons.append(f"not {backbone}'s published weights")
    keys = record.get("fingerprint_keys")
    epochs = keys.get("OPTIM.MAX_EPOCH") if isinstance(keys, dict) else None
    expected = config_max_epoch(key.trainer, key.config)
    if isinstance(epochs, int) and expected is not None and epochs != expected:
        reasons.append(f"{epochs} of {key.config}'s {expected} epochs")
    return tuple(reasons)


@dataclass
class StudyRun:
    key: RunKey
    outcome: RunOutcome
    unpublished: tuple[str, ...] = ()  # unpublished_setting(): empty for the published recipe


def collect_study(root: Path, keyword: str,
                  test_log: bool) -> tuple[list[StudyRun], list[tuple[str, RunOutcome]]]:
    """(runs placed in the study, every outcome with its path relative to root for reporting)."""
    runs: list[StudyRun] = []
    named_outcomes: list[tuple[str, RunOutcome]] = []
    for seed_folder in find_seed_folders(root):
        relative = seed_folder.relative_to(root)
        try:
            key = parse_run_path(relative.parts)
        except LayoutError as error:
            outcome = RunOutcome(seed_folder, skip_reason=f"path matches no layout: {error}")
        else:
            outcome = read_run(seed_folder, keyword, test_log)
            key = replace(key, vis_init=recorded_vis_init(seed_folder) or key.vis_init)
            runs.append(StudyRun(key, outcome, unpublished_setting(seed_folder, key)))
        named_outcomes.append((relative.as_posix(), outcome))
    return runs, named_outcomes
