"""Run the official DAPT's train.py on the CPU with device and download shims (tests only).

    cd DAPT_ROOT && PYTHONPATH=DAPT_ROOT/Dassl.pytorch \
        python /path/tests/support/dapt_official.py WEIGHTS PLAN.json

PLAN.json: {"chains": [[{"argv": [TRAIN.PY ARGS...], "log": FILE, "initial": FILE}, ...],
...], "report": FILE}. The shims are installed and their ``train.py``'s imports run once; then
the chains run side by side, each its runs in order (a run may need the previous one's files),
each run a forked child executing their ``train.py`` as ``__main__`` with its arguments
(stdout and stderr in ``log``), exactly what ``python train.py ARGS`` does after the imports.
The report lists each chain's exit statuses (null for a run not reached).

Their files are not modified; this process patches, before running their ``train.py`` as
``__main__``: clip's downloader (returns the local ``WEIGHTS`` file), ``.to('cuda')`` (their
``build_model`` moves CLIP and the token ids to the GPU unconditionally: here the CPU), and
torch's scheduler ``__init__`` (their toolbox copy passes ``verbose`` positionally, which
torch >= 2.7 refuses; it is dropped). Nothing else: their model is built in CLIP's fp16 and
trains in it. Their prompts right after the model build are saved to the run's ``initial``.
"""
from __future__ import annotations

import json
import os
import runpy
import sys

import torch
from torch import nn
from torch.optim import lr_scheduler

# Beside this file (run as a script, its folder is on the path): one fork helper for all drivers.
from host_driver import run_forked  # noqa: E402


def _cpu(value):
    return "cpu" if isinstance(value, str) and value.startswith("cuda") else value


INITIAL_PROMPTS = {"path": ""}  # where the running child saves its initial prompts


def install_shims(weights: str) -> None:
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
                    "txt_ctx": learner.txt_ctx.detach().clone()}, INITIAL_PROMPTS["path"])

    dapt.DAPT.build_model = build_and_keep


def main() -> None:
    weights, plan_path = sys.argv[1:3]
    with open(plan_path) as plan_file:
        plan = json.load(plan_file)
    install_shims(weights)
    runpy.run_path("train.py", run_name="dapt_train")  # their imports, once

    def body(run: dict) -> int:
        log = os.open(run["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(log, 1)
        os.dup2(log, 2)
        INITIAL_PROMPTS["path"] = run["initial"]
        sys.argv = ["train.py", *run["argv"]]
        runpy.run_path("train.py", run_name="__main__")
        return 0

    def chain(runs: list[dict], report: str) -> int:
        statuses = []
        for run in runs:
            statuses.append(run_forked(lambda run=run: body(run)))
            if statuses[-1] != 0:
                break
        with open(report, "w") as file:
            json.dump(statuses + [None] * (len(runs) - len(statuses)), file)
        return 0

    reports = [f"{plan['report']}.{number}" for number in range(len(plan["chains"]))]
    pids = []
    for runs, report in zip(plan["chains"], reports):
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os._exit(chain(runs, report))
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    statuses = []
    for report in reports:
        with open(report) as file:
            statuses.append(json.load(file))
    with open(plan["report"], "w") as file:
        json.dump(statuses, file)


if __name__ == "__main__":
    main()
