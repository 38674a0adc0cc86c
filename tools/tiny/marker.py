"""The generator writes only into folders it made: a data set folder tools/tiny_data.py made
holds a marker file, and one without it (possibly a real data set) is refused."""
from __future__ import annotations

from pathlib import Path

# A data set folder this tool made holds this file; one without it may hold a real data set.
MARKER = ".made_by_tiny_data"


class FolderNotOurs(Exception):
    """The target data set folder exists and was not made by this tool: nothing is written."""


def claim_dataset_dir(dataset_dir: Path) -> Path:
    """``dataset_dir``, made and marked as this tool's; refused (nothing written) when it exists
    without the marker, so a real data set under the same root is never overwritten. An empty
    folder is taken over; a folder this tool made may be regenerated."""
    dataset_dir = Path(dataset_dir)
    if dataset_dir.exists() and not (dataset_dir / MARKER).is_file():
        if not dataset_dir.is_dir() or any(dataset_dir.iterdir()):
            raise FolderNotOurs(
                f"{dataset_dir} already exists and was not made by tools/tiny_data.py (it has "
                f"no {MARKER}): refusing to write a tiny data set over it. Give --root a folder "
                "that holds no real data set (e.g. --root /tmp/tiny_data)."
            )
    dataset_dir.mkdir(parents=True, exist_ok=True)
    # Written before any image, so an interrupted generation can be run again.
    (dataset_dir / MARKER).write_text("tools/tiny_data.py\n", encoding="utf-8")
    return dataset_dir
