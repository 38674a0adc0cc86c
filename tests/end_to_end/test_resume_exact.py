"""kill -9 at exact points of a real train.py run, re-run, and compare with an uninterrupted
run bit for bit; two processes on one folder; the scripts' skip rule on a real finished run.

One uninterrupted reference run (the demo's "diff" run, trained once per test session and
shared with other modules: tests/support/shared_runs.py) serves every test; none writes into
it. The interrupted run is one chain of processes, each SIGKILLed at the next point
(tests/support/killer.py patches one call in its own process; the product code is untouched)
and each resuming what the previous one left.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from tests.support.integration import REPO, read_result, run_train, train_command, warm_python
from tests.support.toolbox import requires_toolbox

pytestmark = requires_toolbox

KILLER = str(REPO / "tests" / "support" / "killer.py")
SIGKILLED = -9


@pytest.fixture(scope="module")
def workdir(shared_runs) -> Path:
    return shared_runs.workdir


@pytest.fixture(scope="module")
def reference(shared_runs) -> Path:
    """The uninterrupted run, in the folder main.sh would use (CFG=demo_small, SEEDS=1): the
    demo's "diff" command, trained once per session (tests/support/shared_runs.py); read-only."""
    return shared_runs["demo/diff"]


def run_chain(command: list[str], report: Path, *steps: str) -> list[dict]:
    """Run the steps (one train.py process each, see tests/support/killer.py); their records."""
    args = [command[0], KILLER, "--report", str(report)]
    for step in steps:
        args += ["--step", step]
    done = run_train(args + ["--", *command[1:]], timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(report.read_text())


def checkpoint_names(run_dir: Path) -> list[str]:
    return sorted(os.listdir(run_dir / "prompt_learner"))


def pointer(run_dir: Path) -> str:
    return (run_dir / "prompt_learner" / "checkpoint").read_text().strip()


def load(run_dir: Path, epoch: int) -> dict:
    return torch.load(run_dir / f"prompt_learner/model.pth.tar-{epoch}", weights_only=True)


def assert_same_tensors(a, b) -> None:
    """Nested dicts / lists of tensors and plain values, equal bit for bit."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same_tensors(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_tensors(x, y)
    else:
        assert a == b


def test_killed_at_each_point_and_rerun_equals_the_uninterrupted_run(workdir, reference,
                                                                      tmp_path):
    run_dir = tmp_path / "run"
    # Its own prototype cache, so this run computes them too (the key cannot change results).
    command = train_command(workdir, "diff", "TRAINER.DAPT_INIT.PROTOTYPE_CACHE_DIR",
                            str(tmp_path / "prototypes"), output_dir=run_dir)
    second_process = tmp_path / "second_process.json"
    prototypes, mid_epoch, before_rename, before_pointer, final_test, rerun = run_chain(
        command, tmp_path / "chain.json",
        # 1. During the prototypes, before any checkpoint.
        "--kill call:DAPT_Init.class_prototypes:1",
        # 2. From scratch again; a second train.py on the same folder is started while this
        #    one trains; killed mid-epoch 2 (its 4th batch; an epoch has 2).
        f"--spawn call:DAPT_Init.forward_backward:1 {second_process} "
        "--kill call:DAPT_Init.forward_backward:4",
        # 3. Resumed from epoch 1; killed with epoch 2's checkpoint written, not yet renamed.
        "--kill replace:model.pth.tar-2",
        # 4. Resumed from epoch 1; killed after renaming epoch 2's checkpoint, before the resume
        #    pointer names it: a later checkpoint of a killed process is left behind.
        "--kill replace:checkpoint",
        # 5. Resumed from epoch 1 (replacing that epoch 2); killed in the final test.
        "--kill call:DAPT_Init.model_inference:1",
        # 6. The same command, uninterrupted, finishes it.
        "",
    )
    assert [step["status"] for step in (prototypes, mid_epoch, before_rename, before_pointer,
                                        final_test)] == [SIGKILLED] * 5
    assert prototypes["pointer"] is None and not prototypes["result"]
    assert not [name for name in prototypes["files"] if name.startswith("model")]
    assert mid_epoch["pointer"] == "model.pth.tar-1"
    leftover = [name for name in before_rename["files"] if name.startswith(".tmp-")]
    assert len(leftover) == 1 and leftover[0].endswith("model.pth.tar-2")
    assert before_rename["pointer"] == "model.pth.tar-1"
    assert leftover[0] not in before_pointer["files"]  # cleaned by the next start
    assert "model.pth.tar-2" in before_pointer["files"]
    assert before_pointer["pointer"] == "model.pth.tar-1"
    assert final_test["pointer"] == "model.pth.tar-3" and not final_test["result"]
    assert rerun["status"] == 0 and rerun["result"]

    second = json.loads(second_process.read_text())
    assert second["returncode"] == 4  # RUNNING_ELSEWHERE: refused, another process holds it
    lines = second["stderr"].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert f"in use by PID {second['holder_pid']}" in lines[0]
    assert second["after"] == second["before"]  # it touched nothing

    # Final prompts, optimizer state and the torch generator (batches, crops, dropout): bit for
    # bit. (Python's and NumPy's streams differ for another reason: the reference drew the
    # few-shot subset with them, later runs read it from its cache.)
    mine, theirs = load(run_dir, 3), load(reference, 3)
    for key in ("state_dict", "optimizer", "scheduler", "epoch"):
        assert_same_tensors(mine[key], theirs[key])
    assert torch.equal(mine["rng"]["torch_cpu"], theirs["rng"]["torch_cpu"])
    # What is left is what an uninterrupted run leaves: no killed process's checkpoint or
    # temporary file is kept as this run's own.
    assert checkpoint_names(run_dir) == checkpoint_names(reference)
    assert [name for name in checkpoint_names(run_dir)
            if name.startswith(("model", ".tmp-"))] == ["model.pth.tar-3"]
    result, expected = read_result(run_dir), read_result(reference)
    assert result["metrics"] == expected["metrics"] and result["epoch"] == 3
    assert result["fingerprint"] == expected["fingerprint"]


def test_checkpoints_carry_every_generator_state_as_plain_tensors(reference):
    rng = load(reference, 3)["rng"]  # weights_only=True above: no pickled objects
    assert set(rng) == {"torch_cpu", "torch_cuda", "numpy", "python"}
    assert rng["torch_cpu"].dtype == torch.uint8 and rng["torch_cuda"] == []  # a CPU run
    assert rng["python"]["state"].shape == (625,) and rng["numpy"]["keys"].shape == (624,)


# ------------------------------------------------------------------------------ scripts


def run_script(name: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    keep = {k: v for k, v in os.environ.items()
            if k not in ("TAG", "EPOCHS", "SEEDS", "CFG", "OUTPUT_ROOT", "DATA_ROOT")}
    return subprocess.run(["bash", str(REPO / "scripts/dapt_init" / name), *args],
                          env={**keep, "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore",
                               "PYTHON": warm_python(), **env},
                          capture_output=True, text=True, timeout=240, check=False)


@pytest.fixture(scope="module")
def script_env(workdir) -> dict[str, str]:
    return {"DATA_ROOT": str(workdir / "data"), "OUTPUT_ROOT": str(workdir / "output"),
            "CFG": "demo_small", "SEEDS": "1", "DATASETS": "eurosat", "INITS": "diff",
            "SHOTS": "2"}


def overrides(workdir: Path, *extra: str) -> list[str]:
    return ["--", "TRAINER.DAPT_INIT.CLIP_WEIGHTS", str(workdir / "small_clip.pt"),
            "USE_CUDA", "False", *extra]


def log_files(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.iterdir() if p.name.startswith("log.txt"))


def test_main_skips_a_finished_run_only_for_its_own_settings(workdir, reference, script_env):
    logs = log_files(reference)
    same = run_script("main.sh", "eurosat", "diff", "2", *overrides(workdir), env=script_env)
    assert same.returncode == 0, same.stderr
    assert same.stdout.splitlines() == [f"skip (finished): {reference}"]

    other = run_script("main.sh", "eurosat", "diff", "2",
                       *overrides(workdir, "OPTIM.LR", "0.5", "TRAIN.PRINT_FREQ", "1"),
                       env=script_env)
    assert other.returncode == 2
    [line] = other.stderr.strip().splitlines()
    assert line.startswith(f"error: {reference} holds a finished run with other settings: "
                           "OPTIM.LR 20.0 -> 0.5. ")  # PRINT_FREQ cannot change a result
    assert "another OUTPUT_ROOT or TAG" in line and "remove that folder" in line
    assert log_files(reference) == logs  # neither started a run there


def test_sweep_dry_run_states_and_the_epochs_grid(workdir, reference, script_env):
    done = run_script("sweep.sh", "--dry-run", *overrides(workdir), env=script_env)
    assert done.returncode == 0, done.stderr
    assert "job 0 [finished]: SEEDS=1 bash scripts/dapt_init/main.sh eurosat diff 2" \
        in done.stdout

    done = run_script("sweep.sh", "--dry-run", *overrides(workdir, "OPTIM.LR", "0.5"),
                      env=script_env)
    assert "job 0 [other-settings]" in done.stdout

    done = run_script("sweep.sh", "--dry-run", *overrides(workdir),
                      env={**script_env, "EPOCHS": "3 5"})
    assert done.returncode == 0, done.stderr
    jobs = [line for line in done.stdout.splitlines() if line.startswith("job ")]
    assert len(jobs) == 2
    for n, (line, epochs) in enumerate(zip(jobs, ("3", "5"))):
        # Its own folder (TAG ep<N>): the untagged reference does not count as finished.
        assert line.startswith(f"job {n} [todo]: SEEDS=1 GRID=OPTIM.MAX_EPOCH={epochs} bash "
                               "scripts/dapt_init/main.sh eurosat diff 2 GPU --")
        assert line.endswith(f"USE_CUDA False  # {script_env['OUTPUT_ROOT']}/eurosat/DAPT_Init/"
                             f"diff/demo_small_2shots_ep{epochs}/seed1")
    assert "2 jobs (1 datasets x 1 inits x 1 shots x 1 seeds x 2 epochs)" in done.stdout


def test_a_locked_run_is_running_elsewhere_for_the_scripts(workdir, reference, script_env,
                                                           tmp_path):
    import shutil

    from trainers.dapt_init.run_folder import RunLock

    # The finished run, copied where main.sh looks under another OUTPUT_ROOT: the lock below
    # writes this process's PID into the folder's lock file.
    script_env = {**script_env, "OUTPUT_ROOT": str(tmp_path / "output")}
    run_dir = tmp_path / reference.relative_to(workdir)
    shutil.copytree(reference, run_dir)
    lock = RunLock(str(run_dir))  # this test process holds the folder, as a live run would
    lock.write_pid()
    try:
        main = run_script("main.sh", "eurosat", "diff", "2", *overrides(workdir),
                          env=script_env)
        dry = run_script("sweep.sh", "--dry-run", *overrides(workdir), env=script_env)
        sweep = run_script("sweep.sh", *overrides(workdir), env=script_env)
    finally:
        lock.release()
    assert main.returncode == 4
    assert f"running elsewhere: {run_dir} is in use by PID {os.getpid()}" in main.stdout
    assert "job 0 [running-elsewhere]" in dry.stdout
    assert sweep.returncode == 0, sweep.stderr
    assert "running elsewhere: job 0: eurosat init=diff shots=2 seed=1" in sweep.stdout
    assert "1 running elsewhere (not failures" in sweep.stdout


def test_the_shared_runs_are_unchanged(shared_runs, reference):
    # Last in the module: its tests read the session's shared runs, none may write into them.
    assert shared_runs.changed() == []
