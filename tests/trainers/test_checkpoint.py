"""Checkpoints: toolbox layout, weights_only round trip, clear errors for bad files."""
from __future__ import annotations

import os

import pytest
import torch

from trainers.dapt_init.checkpoint import (checkpoint_name, latest_checkpoint, load_prompt_state,
                                           read_checkpoint, save_checkpoint)
from trainers.dapt_init.errors import DaptInitError


class Prompts(torch.nn.Module):
    def __init__(self, text_tokens: int = 4):
        super().__init__()
        self.txt_ctx = torch.nn.Parameter(torch.randn(text_tokens, 8))
        self.vis_ctx = torch.nn.Parameter(torch.randn(1, 2, 8))


def test_round_trip_with_weights_only_and_the_latest_pointer(tmp_path):
    prompts = Prompts()
    optimizer = torch.optim.SGD(prompts.parameters(), lr=0.1, momentum=0.9)
    prompts.txt_ctx.sum().backward()
    optimizer.step()
    state = {"state_dict": prompts.state_dict(), "epoch": 3,
             "optimizer": optimizer.state_dict(), "scheduler": {"last_epoch": 3}, "val_result": None}
    path = save_checkpoint(state, str(tmp_path / "prompt_learner"), checkpoint_name(3), latest=True)
    assert latest_checkpoint(str(tmp_path / "prompt_learner")) == path
    assert sorted(os.listdir(tmp_path / "prompt_learner")) == ["checkpoint", "model.pth.tar-3"]
    loaded = torch.load(path, weights_only=True)  # what the stock toolbox does on torch >= 2.6
    restored = Prompts()
    load_prompt_state(restored, loaded["state_dict"], path)
    assert torch.equal(restored.txt_ctx, prompts.txt_ctx)
    assert loaded["optimizer"]["state"][0]["momentum_buffer"].shape == (4, 8)


def test_best_model_does_not_move_the_resume_pointer(tmp_path):
    folder = str(tmp_path)
    state = {"state_dict": Prompts().state_dict(), "epoch": 1}
    save_checkpoint(state, folder, checkpoint_name(1), latest=True)
    save_checkpoint(state, folder, "model-best.pth.tar", latest=False)
    assert latest_checkpoint(folder).endswith(checkpoint_name(1))


def test_a_model_of_another_shape_names_the_tensor_and_both_shapes(tmp_path):
    path = str(tmp_path / "model.pth.tar-1")
    torch.save({"state_dict": Prompts(text_tokens=16).state_dict()}, path)
    with pytest.raises(DaptInitError, match=r"txt_ctx: checkpoint \(16, 8\), model \(4, 8\)"):
        load_prompt_state(Prompts(text_tokens=4), read_checkpoint(path)["state_dict"], path)


def test_a_truncated_checkpoint_is_named_with_the_fix(tmp_path):
    path = tmp_path / "model.pth.tar-2"
    torch.save({"state_dict": Prompts().state_dict()}, path)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(DaptInitError, match="model.pth.tar-2.*delete it"):
        read_checkpoint(str(path))


def test_no_pointer_means_nothing_to_resume(tmp_path):
    assert latest_checkpoint(str(tmp_path)) is None
