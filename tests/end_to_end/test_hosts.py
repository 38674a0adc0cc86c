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


def drive(hosts: list[dict], scratch: Path) -> subprocess.CompletedProcess:
    """Each host's runs (``{"root": DIR, "runs": [...], "report": FILE}``) from one driver
    (tests/support/host_driver.py): torch and the toolbox imported once, each host's own
    modules in a child of its own."""
    scratch.mkdir(parents=True, exist_ok=True)
    plan = scratch / "plan.json"
    plan.write_text(json.dumps({"hosts": hosts}))
    # As a user's shell has it: no PYTHONPATH entry for this repository (the tests add one
    # for the commands they start); each host's root comes first, as its train.py's folder.
    pythonpath = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                  if p and Path(p).resolve() != REPO]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore",
           "OUTDATED_IGNORE": "1", "PYTHONPATH": os.pathsep.join(pythonpath)}
    return subprocess.run([python(), str(REPO / "tests" / "support" / "host_driver.py"),
                           str(plan)], cwd=scratch, env=env, capture_output=True, text=True,
                          timeout=900)


def host_report(host: dict, driver: subprocess.CompletedProcess) -> dict:
    """A host's report: its runs' exit statuses and the modules it must not have used."""
    report = Path(host["report"])
    assert report.is_file(), f"{host['root']}: no report; the driver said {driver.stderr[-3000:]}"
    return json.loads(report.read_text())


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


@dataclass
class HostRuns:
    host: HostArchive
    root: Path  # the unpacked codebase
    out: Path
    statuses: dict[str, int]
    logs: dict[str, Path]
    pristine: dict[str, str]  # file digests of the archive as unpacked
    dropin_output: list[str]  # stdout of the first and the second tools/dropin.py
    misplaced: list[str]  # modules the host's process had from elsewhere (must be none)
    parser: Path | None  # the folder of its parse_test_res.py's output, where it has one
    parser_status: int | None = None  # that run's exit status


@dataclass
class Driven:
    """Every host's runs and this repository's reference runs, from one driver."""
    reference: dict[str, Path]
    hosts: dict[str, HostRuns | str]  # by host name; a string: why that host has no runs


def prepare_host(host: HostArchive, base: Path, work: Path) -> tuple[dict, HostRuns] | str:
    """``host`` unpacked into ``base``, the drop-in applied (twice: the second must find
    nothing to do), data beside it; its driver entry and what its tests read afterwards (or
    why it could not be prepared)."""
    digest = hashlib.sha256(host.archive.read_bytes()).hexdigest()
    if digest != host.sha256:
        return f"{host.archive} is not the archive its README lists"
    with tarfile.open(host.archive) as archive:
        archive.extractall(base, filter="data")
    (root,) = [p for p in base.iterdir() if p.is_dir()]
    pristine = file_digests(root)
    dropin_output = []
    for _ in range(2):  # the second run must find nothing to do
        done = subprocess.run([python(), str(REPO / "tools" / "dropin.py"), str(root)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            return f"tools/dropin.py failed: {done.stderr}"
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
    # The host's own parser on the run's folder, last (its stdout and stderr apart).
    parser = None
    if (root / "parse_test_res.py").is_file():
        parser = base / "parser"
        parser.mkdir()
        runs.append({"script": "parse_test_res.py", "argv": [str(out / "diff")],
                     "stdout": str(parser / "stdout"), "stderr": str(parser / "stderr")})
        labels.append("parser")
    entry = {"root": str(root), "runs": runs, "report": str(base / "report.json")}
    return entry, HostRuns(host, root, out, {}, {label: base / f"{label}.out"
                                                 for label in labels if label != "parser"},
                           pristine, dropin_output, [], parser)


@pytest.fixture(scope="module")
def driven(work, tmp_path_factory) -> Driven:
    """This repository's own train.py, uninterrupted, one run per family, and every host's
    runs: one driver for all (torch and the toolbox imported once), a child per codebase."""
    root = tmp_path_factory.mktemp("reference")
    reference = {family: root / family / "seed1" for family in FAMILIES}
    entries = [{"root": str(REPO), "report": str(root / "report.json"),
                "runs": [{"argv": train_args(work, out, family), "log": str(root / f"{family}.out")}
                         for family, out in reference.items()]}]
    hosts: dict[str, HostRuns | str] = {}
    for host in HOSTS:
        prepared = prepare_host(host, tmp_path_factory.mktemp(f"host_{host.name}"), work)
        if isinstance(prepared, str):
            hosts[host.name] = prepared
            continue
        entries.append(prepared[0])
        hosts[host.name] = prepared[1]
    driver = drive(entries, root / "driver")
    ours = host_report(entries[0], driver)
    assert ours["misplaced"] == [], ours["misplaced"]
    assert ours["statuses"] == [0] * len(FAMILIES), [(root / f"{f}.out").read_text()[-2000:]
                                                     for f in FAMILIES]
    for entry in entries[1:]:
        runs = next(h for h in hosts.values()
                    if not isinstance(h, str) and str(h.root) == entry["root"])
        report = Path(entry["report"])
        if not report.is_file():
            hosts[runs.host.name] = f"its process wrote no report: {driver.stderr[-3000:]}"
            continue
        found = json.loads(report.read_text())
        runs.misplaced = found["misplaced"]
        statuses = found["statuses"]
        assert len(statuses) == len(entry["runs"]), (runs.host.name, statuses)
        runs.statuses = dict(zip(runs.logs, statuses))
        if runs.parser is not None:
            runs.parser_status = statuses[-1]
    return Driven(reference, hosts)


@pytest.fixture(scope="module")
def reference(driven) -> dict[str, Path]:
    return driven.reference


@pytest.fixture(scope="module", params=HOSTS, ids=[h.name for h in HOSTS])
def host_runs(request, driven) -> HostRuns:
    runs = driven.hosts[request.param.name]
    assert not isinstance(runs, str), f"{request.param.name}: {runs}"
    return runs


def test_the_host_process_used_only_the_hosts_own_modules(host_runs):
    """Its trainers, datasets and clip are the host's, none of this repository's or another
    host's (the driver imported only the installed packages before the host's child)."""
    assert host_runs.misplaced == [], (host_runs.host.name, host_runs.misplaced)
    assert host_runs.statuses, host_runs.host.name


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
    """Its parse_test_res.py, run in the host's folder on the run's folder (forked from the
    host's process, as its train.py runs are)."""
    if host_runs.parser is None:
        pytest.skip(f"{host_runs.host.name} has no parse_test_res.py")
    stdout = (host_runs.parser / "stdout").read_text()
    stderr = (host_runs.parser / "stderr").read_text()
    assert host_runs.parser_status == 0, stderr[-2000:]
    summary = re.search(r"\* accuracy: ([\d.]+)% \+- ([\d.]+)%", stdout)
    assert summary, stdout[-2000:]
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
