"""Every run of an output root placed in the study: its RunKey from the spec it recorded in
result.json (spec.py), else from its folder names (layout.py); its outcome; and whether it was
made with the published recipe (what a --reference compares it with)."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .layout import LayoutError, RunKey, find_seed_folders, parse_run_path
from .outcomes import RESULT_JSON_NAME, RunOutcome, read_run, result_record
from .spec import SPEC_KEY, SpecError, disagreements, key_from_spec


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


def place_run(seed_folder: Path,
              relative_parts: tuple[str, ...]) -> tuple[RunKey | None, list[str], str | None]:
    """(key, notes, why it has no place): the recorded spec first, then the folder names."""
    record = result_record(seed_folder)
    try:
        folder_key, layout_problem = parse_run_path(relative_parts), None
    except LayoutError as error:
        folder_key, layout_problem = None, f"path matches no layout: {error}"
    spec = record.get(SPEC_KEY) if record is not None else None
    notes: list[str] = []
    recorded_vis = vis_init_of_record(record)
    if spec is not None:
        trainer = record.get("trainer")
        try:
            key = key_from_spec(spec, trainer if isinstance(trainer, str) and trainer else None,
                                folder_key)
        except SpecError as error:
            notes.append(f"{RESULT_JSON_NAME}'s spec is unusable ({error}); placed by its "
                         "folder names")
        else:
            # A spec without a visual init: the record's field, then the folder's, as before.
            vis_init = key.vis_init or recorded_vis or (folder_key and folder_key.vis_init)
            key = replace(key, vis_init=vis_init or None)
            found = disagreements(key, folder_key) if folder_key is not None else []
            if found:
                notes.append(f"{RESULT_JSON_NAME}'s spec and the folder names disagree "
                             f"({'; '.join(found)}); used the spec")
            return key, notes, None
    if folder_key is None:
        return None, notes, layout_problem
    return replace(folder_key, vis_init=recorded_vis or folder_key.vis_init), notes, None


def collect_study(root: Path, keyword: str,
                  test_log: bool) -> tuple[list[StudyRun], list[tuple[str, RunOutcome]]]:
    """(runs placed in the study, every outcome with its path relative to root for reporting)."""
    runs: list[StudyRun] = []
    named_outcomes: list[tuple[str, RunOutcome]] = []
    for seed_folder in find_seed_folders(root):
        relative = seed_folder.relative_to(root)
        key, notes, problem = place_run(seed_folder, relative.parts)
        if key is None:
            outcome = RunOutcome(seed_folder, skip_reason=problem, notes=notes)
        else:
            outcome = read_run(seed_folder, keyword, test_log)
            outcome.notes[:0] = notes
            runs.append(StudyRun(key, outcome, unpublished_setting(seed_folder, key)))
        named_outcomes.append((relative.as_posix(), outcome))
    return runs, named_outcomes
