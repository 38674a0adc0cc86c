"""The per-data-set report of prepare_data.py: what is present and missing, whether the split
file is valid and lists only images that exist, and the exact next step."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

# Split files are validated by the same code the data set classes use.
from datasets.fewshot import DatasetError, Splits, read_split_file, require_images

from .specs import Spec


def _describe_folder(path: Path) -> str:
    entries = [entry for entry in os.scandir(path) if not entry.name.startswith(".")]
    folders = sum(entry.is_dir() for entry in entries)
    files = len(entries) - folders
    # Only what is there: "10 folders, 0 files" read like a fault for a folder of class folders.
    parts = [f"{folders} folder{'s' * (folders != 1)}" if folders else "",
             f"{files} file{'s' * (files != 1)}" if files else ""]
    return ", ".join(part for part in parts if part) or "empty"


def check_entries(spec: Spec, dataset_dir: Path) -> tuple[list[str], list[str], list[str]]:
    """(present lines, missing required entries, absent optional entries)."""
    present, missing, absent = [], [], []
    for entry in spec.required + spec.optional:
        path = dataset_dir / entry
        found = path.is_dir() if entry.endswith("/") else path.is_file()
        if found:
            is_folder = entry.endswith("/")
            detail = _describe_folder(path) if is_folder else f"{path.stat().st_size:,} bytes"
            present.append(f"{entry} ({detail})")
        elif entry in spec.required:
            missing.append(entry)
        else:
            absent.append(entry)
    return present, missing, absent


def check_split(spec: Spec, dataset_dir: Path) -> tuple[str, str]:
    """("", problem) or (summary, "") for the split file and the images it lists."""
    try:
        splits: Splits = read_split_file(dataset_dir / spec.split_file, spec.name)
        require_images(spec.name, dataset_dir.parent, dataset_dir / spec.image_folder, splits,
                       spec.split_file)
    except DatasetError as error:
        return "", str(error)
    sizes = f"train {len(splits.train)} / val {len(splits.val or [])} / test {len(splits.test)}"
    return f"{spec.split_file} is valid and every listed image exists ({sizes})", ""


def next_step(spec: Spec, root: Path, missing: Sequence[str], problem: str) -> list[str]:
    """What the user should do now, as exact commands or manual steps."""
    if problem:
        return ["fix the PROBLEM above as it says, then run this check again"]
    if not missing:
        return []
    steps = []
    fetchable = [d for d in spec.downloads if d.provides in missing]
    if fetchable:
        steps.append(
            f"python tools/prepare_data.py --root {root} --dataset {spec.config} --download")
        steps.extend(f"  fetches {d.file} from {d.source} ({d.verification})" for d in fetchable)
    if spec.manual:  # licence steps, dead links, or what to do if a URL has moved
        steps.extend(spec.manual.replace("ROOT", str(root)).strip().splitlines())
    return steps


def report(spec: Spec, root: Path) -> bool:
    """Print one data set's report; True when it is ready to use."""
    dataset_dir = root / spec.folder
    print(f"== {spec.name} (--dataset {spec.config}; DATASET.NAME {spec.name}) in {dataset_dir}")
    if dataset_dir.is_dir():
        present, missing, absent = check_entries(spec, dataset_dir)
    else:
        present, missing, absent = [], [f"{spec.folder}/ (the data set folder itself)",
                                        *spec.required], []
    for line in present:
        print(f"   present: {line}")
    for entry in missing:
        print(f"   missing: {entry}")
    for entry in absent:
        print(f"   absent:  {entry} (optional: in CoOp's layout, not read by the data set class)")
    problem = ""
    if spec.split_file and not missing:
        summary, problem = check_split(spec, dataset_dir)
        print(f"   checked: {summary}" if summary else f"   PROBLEM: {problem}")
    missing_entries = [m for m in missing if not m.endswith("(the data set folder itself)")]
    steps = next_step(spec, root, missing_entries, problem)
    print(f"   status:  {'ready' if not steps else 'NOT READY'}")
    for number, step in enumerate(steps):
        print(f"   {'next:   ' if number == 0 else '        '} {step}")
    return not steps
