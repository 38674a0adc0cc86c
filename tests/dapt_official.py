"""Run the official DAPT's train.py on the CPU with device and download shims (tests only).

    cd DAPT_ROOT && PYTHONPATH=DAPT_ROOT/Dassl.pytorch \
        python /path/tests/dapt_official.py WEIGHTS INITIAL_PROMPTS -- TRAIN.PY ARGS...

Their files are not modified; this process patches, before running their ``train.py`` as
``__main__``: clip's downloader (returns the local ``WEIGHTS`` file), ``.to('cuda')`` (their
``build_model`` moves CLIP and the token ids to the GPU unconditionally: here the CPU), and
torch's scheduler ``__init__`` (their toolbox copy passes ``verbose`` positionally, which
torch >= 2.7 refuses; it is dropped). Nothing else: their model is built in CLIP's fp16 and
trains in it. Their prompts right after the model build are saved to ``INITIAL_PROMPTS``.
"""
from __future__ import annotations

import os
import runpy
import sys

import torch
from torch import nn
from torch.optim import lr_scheduler


def _cpu(value):
    return "cpu" if isinstance(value, str) and value.startswith("cuda") else value


def install_shims(weights: str, initial_prompts: str) -> None:
    tensor_to, module_to = torch.Tensor.to, nn.Module.to

    def to_tensor(self, *args, **kwargs):
        return tensor_to(self, *map(_cpu, args), **{k: _cpu(v) for k, v in kwargs.items()})

    def to_module(self, *args, **kwargs):
        return module_to(self, *map(_cpu, args), **{k: _cpu(v) for k, v in kwargs.items()})

    torch.Tensor.to, nn.Module.to = to_tensor, to_module

    original_init = lr_scheduler.LRScheduler.__init__

    def init_ignoring_verbose(self, optimizer, last_epoch=-1, verbose=None):
        original_init(self, optimizer, last_epoch)

    lr_scheduler.LRScheduler.__init__ = init_ignoring_verbose

    sys.path.insert(0, os.getcwd())
    from clip import clip  # theirs: the current folder is their repository

    clip._download = lambda url, *args, **kwargs: weights

    import trainers.dapt as dapt

    build_model = dapt.DAPT.build_model

    def build_and_keep(self):
        build_model(self)
        learner = self.model.prompt_learner
        torch.save({"vis_ctx": learner.vis_ctx.detach().clone(),
                    "txt_ctx": learner.txt_ctx.detach().clone()}, initial_prompts)

    dapt.DAPT.build_model = build_and_keep


def main() -> None:
    split = sys.argv.index("--")
    weights, initial_prompts = sys.argv[1:split]
    install_shims(weights, initial_prompts)
    sys.argv = ["train.py", *sys.argv[split + 1:]]
    runpy.run_path("train.py", run_name="__main__")


if __name__ == "__main__":
    main()
