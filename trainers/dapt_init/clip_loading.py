"""Load CLIP by backbone name (clip's downloader) or from a local file.

A local file (``TRAINER.DAPT_INIT.CLIP_WEIGHTS``) serves offline machines and the tests: a
JIT archive as OpenAI ships it, or a plain state dict saved with ``torch.save``. Either way
``clip.build_model`` rebuilds the model, in fp16 as CLIP ships.
"""
from __future__ import annotations

import os
import warnings
import zipfile

import torch

from .config import VIT_RESOLUTIONS
from .errors import DaptInitError

CLIP_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "clip")


def import_clip():
    """``from clip import clip``, with the fix named when setuptools dropped pkg_resources."""
    try:
        with warnings.catch_warnings():  # clip's own pkg_resources import, not the user's concern
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
            from clip import clip
    except ModuleNotFoundError as error:
        if error.name == "pkg_resources":
            raise DaptInitError(
                "clip needs pkg_resources, which setuptools 81 and later no longer ship: "
                "run pip install 'setuptools<81'."
            ) from error
        raise
    return clip


def resolve_weights_file(backbone: str, weights_file: str = "") -> str:
    """The local path of the CLIP weights, downloading a named backbone if needed."""
    if weights_file:
        if not os.path.isfile(weights_file):
            raise DaptInitError(f"CLIP weights file {weights_file!r} does not exist.")
        return weights_file
    clip = import_clip()
    if backbone not in VIT_RESOLUTIONS:
        raise DaptInitError(
            f"unknown CLIP backbone {backbone!r}; choose one of {', '.join(VIT_RESOLUTIONS)}."
        )
    return clip._download(clip._MODELS[backbone], CLIP_CACHE)


def is_torchscript_archive(path: str) -> bool:
    """OpenAI ships CLIP as TorchScript: a zip archive with a code/ folder."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in f"/{name}" for name in archive.namelist())


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """Weights from a JIT archive or a state dict file, on the CPU."""
    if is_torchscript_archive(path):
        with warnings.catch_warnings():  # torch.jit.load's deprecation notice is not for users
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(path, map_location="cpu").state_dict()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise DaptInitError(
            f"cannot read CLIP weights from {path!r} ({error.__class__.__name__}); it is "
            "neither a TorchScript archive nor a state dict saved with torch.save."
        ) from error
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    return state


def load_clip(backbone: str, weights_file: str = "") -> torch.nn.Module:
    """A CPU CLIP model in eval mode, fp16 as ``clip.build_model`` makes it."""
    clip = import_clip()
    path = resolve_weights_file(backbone, weights_file)
    state_dict = read_state_dict(path)
    if "visual.proj" not in state_dict:
        raise DaptInitError(
            f"{path!r} holds a ResNet CLIP; DAPT_Init needs a vision transformer "
            "(visual prompts are inserted between the CLS token and the patches)."
        )
    return clip.build_model(state_dict)

