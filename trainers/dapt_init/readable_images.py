"""An image that cannot be read while a run reads it, named in one line.

``NamesUnreadableImages`` is mixed into the toolbox's dataset wrapper by ``trainer.py`` (this
module imports no toolbox): the usual path pays nothing, and only when loading an item fails
is the file decoded again to tell a bad file from any other error.
"""
from __future__ import annotations

from typing import Any

from .errors import DaptInitError


class UnreadableImage(DaptInitError):
    """An image the run reads cannot be decoded (it changed after the start-up check)."""

    def __init__(self, message: str) -> None:
        # Raised in a loader worker, torch re-raises it in the main process as this type with
        # the worker's traceback as the message: keep the original one line, its last line.
        if "Original Traceback" in message:
            last = [line for line in message.splitlines() if line.strip()][-1]
            message = last.split(": ", 1)[-1]
        super().__init__(message)


def unreadable(path: str) -> str | None:
    """Why the image at ``path`` cannot be decoded, or None when it decodes."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.convert("RGB")
    except Exception as error:  # PIL raises many types for bad files; all mean "unreadable"
        return f"{type(error).__name__}: {error}"
    return None


class NamesUnreadableImages:
    """Mixin for a dataset with ``data_source`` items that have ``impath`` (Dassl's
    ``DatasetWrapper``): an item that fails to load because its image is bad raises
    ``UnreadableImage`` naming the file and the fix."""

    data_source: Any

    def __getitem__(self, idx: int) -> dict:
        try:
            return super().__getitem__(idx)  # type: ignore[misc]
        except Exception:
            path = self.data_source[idx].impath
            problem = unreadable(path)  # only on failure: the usual path pays nothing
            if problem is None:
                raise
            raise UnreadableImage(
                f"image {path} cannot be read now ({problem}); it decoded when the run "
                "started, so the file changed on disk. Replace it with a good copy and run the "
                "same command again: the run resumes from its last checkpoint."
            ) from None
