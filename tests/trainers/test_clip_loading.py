"""Loading CLIP from a local file: state dict and TorchScript archive, and bad inputs."""
from __future__ import annotations

import pytest
import torch

from tools.small_clip import small_clip_state_dict
from trainers.dapt_init.clip_loading import load_clip, read_state_dict
from trainers.dapt_init.errors import DaptInitError


def test_state_dict_file_rebuilds_the_same_weights_in_fp16(small_clip_file):
    model = load_clip("ViT-B/16", small_clip_file)
    expected = small_clip_state_dict()
    assert model.visual.conv1.weight.dtype == torch.float16
    assert torch.equal(model.visual.conv1.weight, expected["visual.conv1.weight"].half())
    # clip converts convolutions, linear layers and projections only; embeddings stay fp32.
    assert torch.equal(model.token_embedding.weight, expected["token_embedding.weight"])
    assert model.visual.input_resolution == 32


def test_torchscript_archive_loads_like_openai_files(small_clip, tmp_path):
    path = tmp_path / "clip_jit.pt"
    small_clip.eval()
    scripted = torch.jit.trace_module(
        small_clip, {"encode_text": (torch.zeros(1, 77, dtype=torch.long),)}
    )
    # A traced method archive carries the whole CLIP's parameters under the same names.
    scripted.save(str(path))
    state = read_state_dict(str(path))
    assert torch.equal(state["token_embedding.weight"].float(),
                       small_clip.token_embedding.weight.float())


def test_missing_or_foreign_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(DaptInitError, match="does not exist"):
        load_clip("ViT-B/16", str(tmp_path / "nope.pt"))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(DaptInitError, match="neither a TorchScript archive nor a state dict"):
        load_clip("ViT-B/16", str(junk))


def test_a_backbone_that_cannot_be_downloaded_is_one_line_naming_the_local_file_key(tmp_path):
    # A real download attempt through a proxy that refuses connections (port 9 on this host),
    # with an empty home folder, so nothing is cached: what an offline machine meets.
    import os
    import subprocess
    import sys
    from pathlib import Path

    refused = "http://127.0.0.1:9"
    env = {**os.environ, "HOME": str(tmp_path), "https_proxy": refused,
           "HTTPS_PROXY": refused, "http_proxy": refused, "HTTP_PROXY": refused,
           "no_proxy": "", "NO_PROXY": "", "PYTHONWARNINGS": "ignore"}
    code = ("from trainers.dapt_init.clip_loading import resolve_weights_file\n"
            "from trainers.dapt_init.errors import DaptInitError\n"
            "try:\n    resolve_weights_file('ViT-B/16')\n"
            "except DaptInitError as error:\n    print(error)\n")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert done.returncode == 0, done.stderr
    message = done.stdout.strip()
    assert "\n" not in message
    assert "TRAINER.DAPT_INIT.CLIP_WEIGHTS /path/to/ViT-B-16.pt" in message
    assert "TRIAL=1" in message and str(tmp_path / ".cache" / "clip") in message
    assert not (tmp_path / ".cache" / "clip" / "ViT-B-16.pt").exists()
