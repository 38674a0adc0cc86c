"""Kept prompts (prompts-epoch<N>.pt) and load_run_prompts, on files written here."""
from __future__ import annotations

import os

import pytest
import torch

from tests.trainers.test_config import toolbox_like_cfg
from trainers.dapt_init.checkpoint import (load_run_prompts, prompt_epochs, save_checkpoint,
                                           save_prompts)
from trainers.dapt_init.config import validate_config
from trainers.dapt_init.errors import DaptInitError


def prompts(offset: float) -> dict[str, torch.Tensor]:
    return {"vis_ctx": torch.full((1, 3, 8), offset), "txt_ctx": torch.full((4, 6), -offset)}


def write_checkpoint(run_dir, epoch: int, offset: float) -> None:
    state = {"state_dict": prompts(offset), "epoch": epoch, "optimizer": {"state": {}},
             "scheduler": None, "val_result": None}
    save_checkpoint(state, str(run_dir / "prompt_learner"), f"model.pth.tar-{epoch}",
                    latest=True)


def test_kept_prompts_hold_the_two_tensors_only_and_load_without_unpickling(tmp_path):
    grad_prompts = {k: v.clone().requires_grad_() for k, v in prompts(1.5).items()}
    path = save_prompts({**grad_prompts, "other": torch.zeros(2)}, str(tmp_path), 0)
    assert path == str(tmp_path / "prompt_learner" / "prompts-epoch0.pt")
    stored = torch.load(path, weights_only=True)
    assert sorted(stored) == ["txt_ctx", "vis_ctx"]
    assert all(torch.equal(stored[k], prompts(1.5)[k]) for k in stored)
    assert not any(v.requires_grad for v in stored.values())
    assert os.listdir(tmp_path / "prompt_learner") == ["prompts-epoch0.pt"]  # no temporary file


def test_load_run_prompts_prefers_the_kept_file_and_falls_back_to_the_checkpoint(tmp_path):
    save_prompts(prompts(1.0), str(tmp_path), 1)
    write_checkpoint(tmp_path, 1, 99.0)  # same epoch in both: the small file is read
    write_checkpoint(tmp_path, 3, 3.0)
    save_prompts(prompts(0.0), str(tmp_path), 0)
    assert prompt_epochs(str(tmp_path)) == [0, 1, 3]
    for epoch, offset in ((0, 0.0), (1, 1.0), (3, 3.0)):
        loaded = load_run_prompts(str(tmp_path), epoch)
        assert sorted(loaded) == ["txt_ctx", "vis_ctx"]
        assert all(torch.equal(loaded[k], prompts(offset)[k]) for k in loaded)


def test_a_missing_epoch_names_the_saved_ones(tmp_path):
    save_prompts(prompts(0.0), str(tmp_path), 0)
    write_checkpoint(tmp_path, 5, 5.0)
    with pytest.raises(DaptInitError, match=r"has no prompts for epoch 2; saved epochs: 0, 5\."):
        load_run_prompts(str(tmp_path), 2)
    with pytest.raises(DaptInitError, match=r"saved epochs: none"):
        load_run_prompts(str(tmp_path / "elsewhere"), 1)


def test_a_file_without_prompts_is_reported(tmp_path):
    folder = tmp_path / "prompt_learner"
    folder.mkdir()
    torch.save({"ctx": torch.zeros(2)}, folder / "prompts-epoch1.pt")
    with pytest.raises(DaptInitError, match=r"no text prompts 'txt_ctx' \(it holds ctx\)"):
        load_run_prompts(str(tmp_path), 1)


@pytest.mark.parametrize("value", [[0], [2, -1], ["10"], 5, [True]])
def test_keep_epochs_must_be_a_list_of_epochs(value):
    assert toolbox_like_cfg().TRAINER.DAPT_INIT.KEEP_EPOCHS == []
    validate_config(toolbox_like_cfg(**{"TRAINER.DAPT_INIT.KEEP_EPOCHS": [10, 50]}))
    cfg = toolbox_like_cfg()
    cfg.TRAINER.DAPT_INIT.KEEP_EPOCHS = value
    with pytest.raises(DaptInitError, match=r"KEEP_EPOCHS is .*; it must be a list of epochs"):
        validate_config(cfg)
