"""The official DAPT in fp16 on the CPU as the reference: this trainer equals it bit for bit.

The unmodified mlvlab/DAPT archive (``../shared/hosts/``) is unpacked into a temporary folder
and its own ``train.py`` runs with its own toolbox copy, DAPT's EuroSAT values and the demo's
recipe, on tiny EuroSAT-layout data with the small random CLIP: first its ``PROTOTYPE_GEN``
run, then its training run, in CLIP's fp16 (``tests/support/dapt_official.py``: device, download and
scheduler-signature shims only). This repository's ``train.py`` runs the same command with
``INIT_METHOD random``, ``TEXT_ENCODER full``, ``PREC fp16`` and ``CPU_FP32 False``. Compared:
the initial prompts, the prototypes, every printed loss, the final prompts and the accuracy.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import torch

from tests.support.forked_train import TrainServer
from tests.support.integration import REPO, prepared_workdir, python
from tests.end_to_end.test_hosts import HOSTS, HOSTS_SKIP_REASON
from tests.support.toolbox import requires_toolbox

DAPT = [host for host in HOSTS if host.name == "DAPT"]
pytestmark = [requires_toolbox, pytest.mark.hosts,
              pytest.mark.skipif(not DAPT, reason=HOSTS_SKIP_REASON)]

# (seed, shots): two few-shot draws, one and two images a class.
SETTINGS = [(1, 2), (2, 1)]
EPOCHS = 3


def common_args(data: Path, seed: int, shots: int, out: Path) -> tuple[list[str], list[str]]:
    """(flags, opts) both codebases take: the demo's recipe with DAPT's EuroSAT values."""
    flags = ["--root", f"{data}/", "--seed", str(seed),  # DAPT joins ROOT + "eurosat"
             "--config-file", str(REPO / "configs/trainers/DAPT_Init/demo_small.yaml"),
             "--output-dir", str(out)]
    opts = ["DATASET.NUM_SHOTS", str(shots), "USE_CUDA", "False", "OPTIM.MAX_EPOCH",
            str(EPOCHS)]
    return flags, opts


def printed_losses(log: Path) -> list[str]:
    return re.findall(r"batch \[\d+/\d+\].*? loss ([\d.]+) \(", log.read_text())


def accuracy(log: Path) -> str:
    [value] = re.findall(r"\* accuracy: ([\d.]+)%", log.read_text())
    return value


@pytest.fixture(scope="module")
def dapt_root(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("dapt")
    with tarfile.open(DAPT[0].archive) as archive:
        archive.extractall(base, filter="data")
    (root,) = [p for p in base.iterdir() if p.is_dir()]
    return root


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return prepared_workdir(tmp_path_factory.mktemp("dapt_fp16_work"))


@pytest.fixture(scope="module")
def pairs(dapt_root, work, tmp_path_factory) -> dict:
    """Both codebases' runs for every setting. Theirs: one driver process (their imports once,
    a forked child per run: each setting's PROTOTYPE_GEN run, then its training run; the
    settings side by side). Ours: one forked driver too (tests/support/forked_train.py), running while
    theirs run."""
    weights = str(work / "small_clip.pt")
    ours = TrainServer(tmp_path_factory.mktemp("dapt_fp16_ours_driver"))
    started, plan, found = {}, [], {}
    for seed, shots in SETTINGS:
        base = tmp_path_factory.mktemp(f"pair_seed{seed}_{shots}shots")
        theirs_data = base / "dapt_data"  # their few-shot and prototype files go here
        shutil.copytree(work / "data", theirs_data)
        dataset = ["--trainer", "DAPT", "--dataset-config-file", "configs/datasets/eurosat.yaml"]
        plan.append([])  # the setting's two runs in order, beside the other setting's
        for label, extra in (("gen", ["TRAINER.DAPT.PROTOTYPE_GEN", "True"]), ("train", [])):
            flags, opts = common_args(theirs_data, seed, shots, base / f"dapt_{label}")
            plan[-1].append({"argv": [*dataset, *flags, *opts, *extra],
                         "log": str(base / f"dapt_{label}.console"),
                         "initial": str(base / f"dapt_{label}_initial.pt")})
        flags, opts = common_args(work / "data", seed, shots, base / "ours")
        started[seed, shots] = ours.start(
            [python(), str(REPO / "train.py"), "--trainer", "DAPT_Init",
             "--dataset-config-file", str(REPO / "configs/datasets/eurosat.yaml"),
             *flags, *opts, "TRAINER.DAPT_INIT.CLIP_WEIGHTS", weights,
             "TRAINER.DAPT_INIT.INIT_METHOD", "random",
             "TRAINER.DAPT_INIT.TEXT_ENCODER", "full",
             "TRAINER.DAPT_INIT.PREC", "fp16", "TRAINER.DAPT_INIT.CPU_FP32", "False",
             "TRAINER.DAPT_INIT.PROTOTYPE_CACHE_DIR", str(base / "prototypes")])
        found[seed, shots] = {"base": base, "seed": seed, "shots": shots,
                              "theirs_data": theirs_data}
    try:
        report = tmp_path_factory.mktemp("dapt_fp16_plan") / "report.json"
        plan_file = report.with_name("plan.json")
        plan_file.write_text(json.dumps({"chains": plan, "report": str(report)}))
        env = {**os.environ, "PYTHONPATH": str(dapt_root / "Dassl.pytorch"),
               "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore", "OUTDATED_IGNORE": "1"}
        done = subprocess.run([python(), str(REPO / "tests/support/dapt_official.py"), weights,
                               str(plan_file)],
                              cwd=dapt_root, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
        for chain, statuses in zip(plan, json.loads(report.read_text())):
            for run, status in zip(chain, statuses):
                assert status == 0, (run["argv"], Path(run["log"]).read_text()[-3000:])
        for key, number in started.items():
            result = ours.wait(number)
            assert result.returncode == 0, (key, result.stderr[-3000:])
    finally:
        ours.close()
    return found


@pytest.fixture(params=SETTINGS, ids=[f"seed{s}-{n}shots" for s, n in SETTINGS])
def pair(request, pairs) -> dict:
    return pairs[request.param]


def test_initial_prompts_are_dapts_in_fp16(pair):
    base = pair["base"]
    theirs = torch.load(base / "dapt_train_initial.pt", weights_only=True)
    ours = torch.load(base / "ours/prompt_learner/prompts-epoch0.pt", weights_only=True)
    for name in ("vis_ctx", "txt_ctx"):
        assert theirs[name].dtype == ours[name].dtype == torch.float16
        assert torch.equal(ours[name], theirs[name]), name


def test_prototypes_equal_dapts_file(pair):
    seed, shots = pair["seed"], pair["shots"]
    path = pair["theirs_data"] / f"eurosat/split_fewshot/shot_{shots}-seed_{seed}_prototype.pkl"
    with open(path, "rb") as file:
        theirs = pickle.load(file)
    assert theirs.dtype == torch.float16  # DAPT computes and keeps them in CLIP's fp16
    [cache] = list((pair["base"] / "prototypes").glob("*.pt"))
    record = torch.load(cache, weights_only=True)
    assert json.loads(record["key"])["dtype"] == "torch.float16"
    assert torch.equal(record["prototypes"], theirs.float())  # stored widened: exact


def test_losses_final_prompts_and_accuracy_equal_dapts(pair):
    base = pair["base"]
    assert printed_losses(base / "ours/log.txt") == printed_losses(base / "dapt_train/log.txt")
    assert len(printed_losses(base / "ours/log.txt")) >= EPOCHS
    ours = torch.load(base / f"ours/prompt_learner/model.pth.tar-{EPOCHS}",
                      weights_only=True)["state_dict"]
    # Their toolbox copy pickles more than tensors: load it as their own load_checkpoint does.
    theirs = torch.load(base / f"dapt_train/prompt_learner/model.pth.tar-{EPOCHS}",
                        weights_only=False)["state_dict"]
    for name in ("vis_ctx", "txt_ctx"):
        assert ours[name].dtype == torch.float16 and torch.isfinite(ours[name]).all()
        assert torch.equal(ours[name], theirs[name]), name
    assert accuracy(base / "ours/log.txt") == accuracy(base / "dapt_train/log.txt")
