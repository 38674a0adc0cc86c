"""Load CLIP by backbone name (clip's downloader) or from a local file.

A local file (``TRAINER.DAPT_INIT.CLIP_WEIGHTS``) serves offline machines and the tests: a
JIT archive as OpenAI ships it, or a plain state dict saved with ``torch.save``. Either way
``clip_model.build_clip_model`` builds the network from the weights, in fp16 as CLIP ships.
Of the ``clip`` package (openai-clip, or the copy a host codebase vendors) only the tokenizer
and the downloader are used, the parts every CoOp-family copy leaves unchanged; the tokenizer
is checked once against known token ids.
"""
from __future__ import annotations

import os
import re
import warnings
import zipfile
from typing import Any

import torch

from .clip_model import build_clip_model
from .config import VIT_RESOLUTIONS
from .errors import DaptInitError

CLIP_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "clip")
# A sentence and its token ids under CLIP's BPE vocabulary (SOS ... EOS): a copy of clip whose
# tokenizer gives other ids would feed the trainer other token embeddings.
TOKENIZER_PROBE = ("a photo of a cat.", (49406, 320, 1125, 539, 320, 2368, 269, 49407))
# The keys clip.build_model reads to infer a ViT CLIP's shape (a missing one is a KeyError
# deep inside clip; naming them all up front is the useful message).
SHAPE_KEYS = ("visual.conv1.weight", "visual.class_embedding", "visual.positional_embedding",
              "visual.proj", "visual.transformer.resblocks.0.attn.in_proj_weight",
              "text_projection", "positional_embedding", "token_embedding.weight",
              "transformer.resblocks.0.attn.in_proj_weight", "ln_final.weight")
SHAPE_SCALARS = ("input_resolution", "context_length", "vocab_size")  # build_model drops them
MAX_NAMED_KEYS = 8


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
    check_tokenizer(clip)
    return clip


def check_tokenizer(clip) -> None:
    """Refuse a copy of clip whose ``tokenize`` is not CLIP's (checked once per module)."""
    if getattr(clip, "_dapt_init_tokenizer_ok", False):
        return
    text, expected = TOKENIZER_PROBE
    try:
        ids = clip.tokenize([text])[0]
        found = tuple(int(i) for i in ids[:len(expected)])
        padded = ids.shape[-1] == 77 and not ids[len(expected):].any()
    except Exception as error:  # a changed signature or return type: name it, no traceback
        found, padded = f"{error.__class__.__name__}: {_first_line(error)}", False
    if found != expected or not padded:
        raise DaptInitError(
            f"the clip module at {getattr(clip, '__file__', clip.__name__)!r} tokenizes "
            f"{text!r} as {found} instead of CLIP's {expected} padded to 77 tokens: its "
            "tokenizer is modified; DAPT_Init needs CLIP's own (restore that copy's "
            "simple_tokenizer.py, or put openai-clip first on the path)."
        )
    clip._dapt_init_tokenizer_ok = True


def resolve_weights_file(backbone: str, weights_file: str = "") -> str:
    """The local path of the CLIP weights, downloading a named backbone if needed."""
    if weights_file:
        if os.path.isdir(weights_file):
            raise DaptInitError(f"CLIP weights file {weights_file!r} is a folder; give the "
                                "file itself (e.g. .../ViT-B-16.pt).")
        if os.path.exists(weights_file) and not os.path.isfile(weights_file):
            raise DaptInitError(f"CLIP weights file {weights_file!r} is not a regular file "
                                "(a pipe or device); give the weights file itself.")
        if not os.path.isfile(weights_file):
            raise DaptInitError(f"CLIP weights file {weights_file!r} does not exist.")
        return weights_file
    clip = import_clip()
    if backbone not in VIT_RESOLUTIONS:
        raise DaptInitError(
            f"unknown CLIP backbone {backbone!r}; choose one of {', '.join(VIT_RESOLUTIONS)}."
        )
    try:
        return clip._download(clip._MODELS[backbone], CLIP_CACHE)
    except OSError as error:  # urllib's URLError, a refused or timed-out connection
        # Offline machines are common: one line naming both ways on, not urllib's traceback.
        reason = getattr(error, "reason", None) or error
        raise DaptInitError(
            f"CLIP {backbone} is not in {CLIP_CACHE} and cannot be downloaded ({reason}); "
            "give a local copy with TRAINER.DAPT_INIT.CLIP_WEIGHTS /path/to/"
            f"{os.path.basename(clip._MODELS[backbone])}, or try the scripts offline with the "
            "demo's small CLIP and tiny data: TRIAL=1 bash scripts/dapt_init/main.sh ..."
        ) from None


def is_torchscript_archive(path: str) -> bool:
    """OpenAI ships CLIP as TorchScript: a zip archive with a code/ folder."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in f"/{name}" for name in archive.namelist())


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """Weights from a JIT archive or a state dict file, on the CPU."""
    if is_torchscript_archive(path):
        try:
            with warnings.catch_warnings():  # torch.jit.load's deprecation notice is not for users
                warnings.simplefilter("ignore", FutureWarning)
                return dict(torch.jit.load(path, map_location="cpu").state_dict())
        except Exception as error:  # torch raises RuntimeError and others for a bad archive
            raise DaptInitError(
                f"cannot load the TorchScript archive {path!r} ({error.__class__.__name__}: "
                f"{_first_line(error)}); download it again or give a state dict saved with "
                "torch.save."
            ) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise DaptInitError(
            f"cannot read CLIP weights from {path!r} ({error.__class__.__name__}); it is "
            "neither a TorchScript archive nor a state dict saved with torch.save."
        ) from error
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(
            isinstance(key, str) and (isinstance(value, torch.Tensor) or key in SHAPE_SCALARS)
            for key, value in state.items()):
        raise DaptInitError(
            f"{path!r} holds a {type(state).__name__} that is not a state dict (names to "
            "tensors); give a CLIP TorchScript archive or model.state_dict() saved with "
            "torch.save."
        )
    return state


def _first_line(error: Exception) -> str:
    line = (str(error).strip().splitlines() or [""])[0]
    return line.split("  (Could this error message be improved?")[0]  # torch's own appeal


def _name_keys(keys: list[str]) -> str:
    more = len(keys) - MAX_NAMED_KEYS
    return ", ".join(keys[:MAX_NAMED_KEYS]) + (f" and {more} more" if more > 0 else "")


def build_clip(state_dict: dict[str, torch.Tensor], path: str) -> torch.nn.Module:
    """The model, with missing, misshapen or non-finite weights named in one line."""
    missing = [key for key in SHAPE_KEYS if key not in state_dict]
    fix = "Use an OpenAI CLIP file (or its state dict) as clip ships it."
    if missing:
        raise DaptInitError(f"{path!r} is not a complete ViT CLIP: it lacks "
                            f"{_name_keys(missing)}. {fix}")
    bad = next((key for key, value in state_dict.items() if isinstance(value, torch.Tensor)
                and value.is_floating_point() and not torch.isfinite(value).all()), None)
    if bad:
        raise DaptInitError(f"{path!r} is corrupt: the tensor {bad} holds NaN or infinite "
                            f"values. {fix}")
    try:
        return build_clip_model(state_dict)
    except (RuntimeError, ValueError, IndexError, KeyError) as error:
        # load_state_dict names the other missing keys; the rest are tensors of wrong shapes.
        text = str(error)
        found = re.search(r"Missing key\(s\) in state_dict: (.*)", text)
        if found:
            keys = re.findall(r'"([^"]+)"', found.group(1))
            problem = f"it lacks {_name_keys(keys)}"
        else:
            problem = " ".join(text.split())[:300]
        raise DaptInitError(f"{path!r} is not a loadable ViT CLIP: {problem}. {fix}") from None


def load_clip(backbone: str, weights_file: str = "") -> torch.nn.Module:
    """A CPU CLIP model in eval mode, fp16 as ``clip.build_model`` makes it."""
    path = resolve_weights_file(backbone, weights_file)
    state_dict = read_state_dict(path)
    if "visual.proj" not in state_dict and "visual.attnpool.c_proj.weight" in state_dict:
        raise DaptInitError(
            f"{path!r} holds a ResNet CLIP; DAPT_Init needs a vision transformer "
            "(visual prompts are inserted between the CLS token and the patches)."
        )
    return build_clip(state_dict, path)


def loaded_backbone(clip_model: torch.nn.Module) -> dict[str, Any]:
    """The architecture actually loaded (whatever the config or file name says)."""
    visual = clip_model.visual
    return {
        "input_resolution": int(visual.input_resolution),
        "patch_size": int(visual.conv1.kernel_size[0]),
        "vision_width": int(visual.conv1.out_channels),
        "vision_layers": len(visual.transformer.resblocks),
        "text_width": int(clip_model.ln_final.weight.shape[0]),
        "text_layers": len(clip_model.transformer.resblocks),
        "embed_dim": int(clip_model.text_projection.shape[1]),
    }
