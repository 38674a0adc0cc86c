"""The drop-in in real CoOp-family codebases: CoOp, DAPT, RPO and MaPLe's repository.

Each unmodified upstream archive in ``../shared/hosts/`` (checksums in its README) is unpacked
into a temporary folder, the README's drop-in steps are applied with ``tools/dropin.py`` (the
same edits for every codebase), and the codebase's own ``train.py`` runs DAPT_Init on tiny
EuroSAT-layout data with the small random CLIP: one run per init family, each covering other
keys (visual init, text encoder, precision), one of them killed after its first epoch and run
again. Every run must end with the prompts and test metrics of this repository's own
``train.py`` for the same command, bit for bit; the codebase's own ``--eval-only`` and its own
``parse_test_res.py`` must read the run. Where the archives are absent the tests are skipped
with that reason; CI sets ``DAPT_REQUIRE_HOSTS=1``, which makes their absence an error.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from tests.support.integration import REPO, prepared_workdir, python
from tests.support.toolbox import requires_toolbox

HOSTS_DIR = REPO.parent / "shared" / "hosts"
HOSTS_SKIP_REASON = (f"no host archives at {HOSTS_DIR} (unmodified CoOp-family codebases; "
                     "CI has them): the drop-in is tested on a generated host only "
                     "(tests/end_to_end/test_dropin.py)")


@dataclass(frozen=True)
class HostArchive:
    name: str  # the repository's name, e.g. "RPO"
    archive: Path
    commit: str
    sha256: str


def host_archives() -> list[HostArchive]:
    """The archives the hosts README lists (``| `NAME-short.tar.gz` | repo | commit | sha |``)."""
    readme = HOSTS_DIR / "README.md"
    if not readme.is_file():
        return []
    row = re.compile(r"^\|\s*`([^`]+\.tar\.gz)`\s*\|[^|]*\|\s*([0-9a-f]{40})\s*\|\s*([0-9a-f]{64})")
    hosts = []
    for line in readme.read_text().splitlines():
        found = row.match(line)
        if found and (HOSTS_DIR / found.group(1)).is_file():
            name = found.group(1).rsplit("-", 1)[0]
            hosts.append(HostArchive(name, HOSTS_DIR / found.group(1), found.group(2),
                                     found.group(3)))
    return hosts


HOSTS = host_archives()
requires_hosts = pytest.mark.skipif(not HOSTS, reason=HOSTS_SKIP_REASON)
pytestmark = [requires_toolbox, requires_hosts, pytest.mark.hosts]

EPOCHS = 2
# One run per init family; between them every visual init, both text encoders and PREC
# fp32 (the CPU runs fp32 anyway; the key must be accepted). "random" is DAPT's own setting.
FAMILIES = {
    "diff": ["TRAINER.DAPT_INIT.INIT_METHOD", "diff", "TRAINER.DAPT_INIT.VIS_INIT_METHOD",
             "same"],
    "same": ["TRAINER.DAPT_INIT.INIT_METHOD", "same", "TRAINER.DAPT_INIT.VIS_INIT_METHOD",
             "diff", "TRAINER.DAPT_INIT.TEXT_ENCODER", "shared_prefix"],
    "random": ["TRAINER.DAPT_INIT.INIT_METHOD", "random", "TRAINER.DAPT_INIT.VIS_INIT_METHOD",
               "random", "TRAINER.DAPT_INIT.TEXT_ENCODER", "full",
               "TRAINER.DAPT_INIT.PREC", "fp32"],
}
RESUMED = "random"  # the family whose host run is killed after epoch 1 and run again


def train_args(work: Path, out: Path, family: str) -> list[str]:
    """The command a user types in their codebase: its own dataset yaml, DAPT's EuroSAT values
    on the command line (README, drop-in step 3), our trainer yaml."""
    return [
        "--root", str(work / "data"), "--seed", "1", "--trainer", "DAPT_Init",
        "--dataset-config-file", "configs/datasets/eurosat.yaml",
        "--config-file", "configs/trainers/DAPT_Init/demo_small.yaml",
        "--output-dir", str(out),
        "DATASET.NUM_SHOTS", "2", "USE_CUDA", "False", "OPTIM.MAX_EPOCH", str(EPOCHS),
        "OPTIM.LR", "20.0", "TRAINER.DAPT_INIT.VIS_BETA", "100.0",
        "TRAINER.DAPT_INIT.TXT_BETA", "10.0",
        "TRAINER.DAPT_INIT.CLIP_WEIGHTS", str(work / "small_clip.pt"),
        *FAMILIES[family],
    ]


def drive(cwd: Path, runs: list[dict], scratch: Path) -> list[int]:
    """Run ``cwd``'s train.py once per run (tests/support/host_driver.py); their exit statuses."""
    scratch.mkdir(parents=True, exist_ok=True)
    plan = scratch / "plan.json"
    plan.write_text(json.dumps({"runs": runs, "report": str(scratch / "report.json")}))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore",
           "OUTDATED_IGNORE": "1"}
    done = subprocess.run([python(), str(REPO / "tests" / "support" / "host_driver.py"), str(plan)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((scratch / "report.json").read_text())


def final_prompts(run_dir: Path) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(run_dir / "prompt_learner" / f"model.pth.tar-{EPOCHS}",
                            map_location="cpu", weights_only=True)
    return checkpoint["state_dict"]


def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "result.json").read_text())["metrics"]


def file_digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return prepared_workdir(tmp_path_factory.mktemp("host_work"))


@pytest.fixture(scope="module")
def reference(work, tmp_path_factory) -> dict[str, Path]:
    """This repository's own train.py, uninterrupted, one run per family."""
    root = tmp_path_factory.mktemp("reference")
    runs = {family: root / family / "seed1" for family in FAMILIES}
    statuses = drive(REPO, [{"argv": train_args(work, out, family),
                             "log": str(root / f"{family}.out")}
                            for family, out in runs.items()], root / "driver")
    assert statuses == [0] * len(FAMILIES), [(root / f"{f}.out").read_text()[-2000:]
                                             for f in FAMILIES]
    return runs


@dataclass
class HostRuns:
    host: HostArchive
    root: Path  # the unpacked codebase
    out: Path
    statuses: dict[str, int]
    logs: dict[str, Path]
    pristine: dict[str, str]  # file digests of the archive as unpacked
    dropin_output: list[str]  # stdout of the first and the second tools/dropin.py


@pytest.fixture(scope="module", params=HOSTS, ids=[h.name for h in HOSTS])
def host_runs(request, work, tmp_path_factory) -> HostRuns:
    host: HostArchive = request.param
    digest = hashlib.sha256(host.archive.read_bytes()).hexdigest()
    assert digest == host.sha256, f"{host.archive} is not the archive its README lists"
    base = tmp_path_factory.mktemp(f"host_{host.name}")
    with tarfile.open(host.archive) as archive:
        archive.extractall(base, filter="data")
    (root,) = [p for p in base.iterdir() if p.is_dir()]
    pristine = file_digests(root)
    dropin_output = []
    for _ in range(2):  # the second run must find nothing to do
        done = subprocess.run([python(), str(REPO / "tools" / "dropin.py"), str(root)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        dropin_output.append(done.stdout)
    data = base / "work"
    shutil.copytree(work / "data", data / "data")  # the host's own few-shot caches go here
    shutil.copy(work / "small_clip.pt", data / "small_clip.pt")
    out = base / "output"
    runs, labels = [], []

    def add(label: str, argv: list[str], **extra) -> None:
        labels.append(label)
        runs.append({"argv": argv, "log": str(base / f"{label}.out"), **extra})

    for family in FAMILIES:
        args = train_args(data, out / family / "seed1", family)
        if family == RESUMED:
            add(f"{family}-killed", args, kill_after_epoch=1)
        add(family, args)
    # The host's own --eval-only, into the training folder itself (a host has no guard
    # against that): the trainer keeps the training's result.json beside the new one.
    diff_dir = out / "diff" / "seed1"
    eval_args = train_args(data, diff_dir, "diff")
    at = eval_args.index("DATASET.NUM_SHOTS")
    add("eval", eval_args[:at] + ["--eval-only", "--model-dir", str(diff_dir),
                                  "--load-epoch", str(EPOCHS)] + eval_args[at:])
    statuses = drive(root, runs, base / "driver")
    return HostRuns(host, root, out, dict(zip(labels, statuses)),
                    {label: base / f"{label}.out" for label in labels}, pristine, dropin_output)


def test_every_run_in_the_host_finishes(host_runs):
    expected = {label: 9 if label.endswith("-killed") else 0 for label in host_runs.statuses}
    failed = {label: host_runs.logs[label].read_text()[-3000:]
              for label, status in host_runs.statuses.items() if status != expected[label]}
    assert not failed, f"{host_runs.host.name}: {failed}"


@pytest.mark.parametrize("family", list(FAMILIES))
def test_host_runs_equal_this_repository_bit_for_bit(host_runs, reference, family):
    """Prompts and test metrics of the host's run (for RESUMED: killed and re-run) equal
    this repository's uninterrupted run of the same command."""
    run_dir = host_runs.out / family / "seed1"
    ours, theirs = final_prompts(reference[family]), final_prompts(run_dir)
    assert sorted(ours) == sorted(theirs) == ["txt_ctx", "vis_ctx"]
    for name in ours:
        assert torch.equal(ours[name], theirs[name]), (host_runs.host.name, family, name)
    assert metrics(run_dir) == metrics(reference[family])
    recorded = json.loads((run_dir / "result.json").read_text())
    assert recorded["init_method"] == family and recorded["epoch"] == EPOCHS


def test_the_resumed_run_really_resumed(host_runs):
    """The killed process left epoch 1's checkpoint; the re-run resumed from it and trained
    epoch 2 only. (The toolbox's logger leaves an existing log.txt alone and writes the
    re-run's log to log.txt-<time>.)"""
    run_dir = host_runs.out / RESUMED / "seed1"
    (rerun_log,) = run_dir.glob("log.txt-*")
    text = rerun_log.read_text()
    assert "model.pth.tar-1 (epoch 1 done)" in text
    assert "epoch [1/" not in text and f"epoch [{EPOCHS}/{EPOCHS}]" in text
    assert "epoch [2/" not in (run_dir / "log.txt").read_text()  # the killed run's


def test_host_eval_only_reproduces_the_trained_metrics_and_keeps_the_trained_result(
        host_runs, reference):
    run_dir = host_runs.out / "diff" / "seed1"
    (kept,) = run_dir.glob("result.json-*")
    trained = json.loads(kept.read_text())
    assert trained["metrics"] == metrics(reference["diff"])  # the training's own record
    assert metrics(run_dir) == trained["metrics"]  # the evaluation's


def test_the_hosts_own_parser_reads_the_run(host_runs):
    parser = host_runs.root / "parse_test_res.py"
    if not parser.is_file():
        pytest.skip(f"{host_runs.host.name} has no parse_test_res.py")
    done = subprocess.run([python(), str(parser), str(host_runs.out / "diff")],
                          cwd=host_runs.root, capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore",
                               "OUTDATED_IGNORE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    summary = re.search(r"\* accuracy: ([\d.]+)% \+- ([\d.]+)%", done.stdout)
    assert summary, done.stdout[-2000:]
    assert float(summary.group(1)) == pytest.approx(
        metrics(host_runs.out / "diff" / "seed1")["accuracy"], abs=0.005)


def test_the_dropin_changed_only_what_the_readme_says(host_runs):
    """Only train.py changed, plus the two copied folders; a second application is a no-op."""
    now = file_digests(host_runs.root)
    ours = ("trainers/dapt_init/", "configs/trainers/DAPT_Init/")
    changed = {path for path in set(now) | set(host_runs.pristine)
               if now.get(path) != host_runs.pristine.get(path)
               and not path.startswith(ours) and not path.startswith("output")}
    assert changed == {"train.py"}
    assert "nothing to do" in host_runs.dropin_output[1]
    assert file_digests(host_runs.root / "trainers" / "dapt_init") == file_digests(
        REPO / "trainers" / "dapt_init")
