"""The sweep (scripts/dapt_init/sweep.sh, python -m study sweep): job grid, dry run, SLURM
array, the GPU / CPU pool and its interrupt, with the stand-in python of scripts_helpers."""
from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.scripts_helpers import (REPO, SCRIPT_ENV, SCRIPTS, arg, error_lines,  # noqa: F401
                                   fake, wait_for)  # fake: a fixture

# -------------------------------------------------------------------------------- sweep.sh


def jobs_of(text: str) -> list[tuple[str, ...]]:
    """(dataset, init, shots, seed) of each 'SEEDS=k bash .../main.sh D I S GPU' line."""
    found = re.findall(r"SEEDS=(\d+) bash scripts/dapt_init/main\.sh (\S+) (\S+) (\S+) ", text)
    return [(dataset, init, shots, seed) for seed, dataset, init, shots in found]


def test_sweep_dry_run_lists_datasets_x_inits_x_shots_x_seeds(fake):
    done = fake.run("sweep.sh", "--dry-run")
    assert done.returncode == 0, done.stderr
    expected = [(d, i, s, k) for d in ("eurosat", "oxford_pets") for i in ("random", "same", "diff")
                for s in ("1", "2", "4", "8", "16") for k in "123"]
    assert jobs_of(done.stdout) == expected
    summary = "90 jobs (2 datasets x 3 inits x 5 shots x 3 seeds): 0 finished, 90 to run"
    assert summary in done.stdout

    fake.finish("main.sh", "dtd", "same", "2", SEEDS="7")
    done = fake.run("sweep.sh", "--dry-run", DATASETS="dtd", INITS="same diff", SHOTS="2",
                    SEEDS="7 8")
    assert jobs_of(done.stdout) == [("dtd", "same", "2", "7"), ("dtd", "same", "2", "8"),
                                    ("dtd", "diff", "2", "7"), ("dtd", "diff", "2", "8")]
    assert "job 0 [finished]" in done.stdout and "job 1 [todo]" in done.stdout
    assert "4 jobs (1 datasets x 2 inits x 1 shots x 2 seeds): 1 finished, 3 to run" in done.stdout
    assert fake.calls() == []


def test_sweep_slurm_emits_a_job_array_with_one_task_per_job(fake):
    env = {"DATASETS": "eurosat", "INITS": "random diff", "SHOTS": "1 16", "SEEDS": "1 2",
           "SWEEP_SBATCH": "--partition=gpu --account=lab"}
    done = fake.run("sweep.sh", "--slurm", "--", "OPTIM.MAX_EPOCH", "3", **env)
    assert done.returncode == 0, done.stderr
    script = done.stdout
    assert script.startswith("#!/bin/bash\n")
    for line in ("#SBATCH --array=0-7", "#SBATCH --gres=gpu:1", "#SBATCH --partition=gpu",
                 "#SBATCH --account=lab", f"export DATA_ROOT={fake.data}"):
        assert line + "\n" in script, line
    listed = re.findall(r'^    "(\S+ \S+ \S+ \S+)"  # (\d+)$', script, flags=re.MULTILINE)
    expected = [f"eurosat {i} {s} {k}" for i in ("random", "diff") for s in ("1", "16")
                for k in "12"]
    assert listed == [(job, str(n)) for n, job in enumerate(expected)]
    assert fake.calls() == [] and not fake.out.exists()

    # Task 5 of the array runs job 5 (eurosat diff 1 shot, seed 2) and nothing else.
    batch = fake.root / "sweep.sbatch"
    batch.write_text(script)
    # DATA_ROOT and OUTPUT_ROOT come from the script itself, not from this environment.
    env = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENV}
    env.update(PYTHON=str(fake.python), FAKE_LOG=str(fake.calls_file), SLURM_ARRAY_TASK_ID="5",
               REAL_PYTHON=fake.env["REAL_PYTHON"], FAKE_TRAIN=fake.env["FAKE_TRAIN"])
    task = subprocess.run(["bash", str(batch)], cwd=fake.root, env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert task.returncode == 0, task.stderr
    [(_, args)] = fake.calls()
    assert arg(args, "--output-dir") == str(
        fake.out / "eurosat/DAPT_Init/diff/vit_b16_ep50_1shots/seed2")
    assert args[-2:] == ["OPTIM.MAX_EPOCH", "3"]


def test_sweep_keeps_each_gpu_busy_with_one_job_at_a_time(fake):
    locks = fake.root / "locks"
    locks.mkdir()
    env = {"DATASETS": "eurosat", "INITS": "same", "SHOTS": "1 2", "SEEDS": "1 2",
           "GPUS": "0 1", "FAKE_LOCKS": str(locks), "FAKE_BARRIER": "2"}
    done = fake.run("sweep.sh", "--", "USE_CUDA", "True", **env)
    assert done.returncode == 0, done.stdout + done.stderr
    calls = fake.calls()
    assert sorted(arg(a, "--output-dir") for _, a in calls) == sorted(
        str(fake.out / f"eurosat/DAPT_Init/same/{cfg}_{s}shots/seed{k}")
        for cfg, s in (("vit_b16_ep50", 1), ("vit_b16_ep100", 2)) for k in (1, 2))
    assert {gpu for gpu, _ in calls} == {"0", "1"}  # both GPUs were used, concurrently
    assert all(a[-2:] == ["USE_CUDA", "True"] for _, a in calls)
    assert "sweep: all 4 jobs finished (4 run now)" in done.stdout
    log = fake.out / "sweep_logs/eurosat_same_2shots_seed1.log"
    assert "train.py" in log.read_text()

    again = fake.run("sweep.sh", **env)
    assert again.returncode == 0 and again.stdout.count("skip (finished): job") == 4
    assert len(fake.calls()) == 4


def test_sweep_finishes_the_other_jobs_then_reports_the_failed_ones(fake):
    env = {"DATASETS": "oxford_pets", "INITS": "random diff", "SHOTS": "8", "SEEDS": "1 2",
           "GPUS": "0 1", "FAKE_FAIL": "random/vit_b16_8shots/seed2"}
    done = fake.run("sweep.sh", **env)
    assert done.returncode == 1
    assert "sweep: 1 of 4 jobs run failed:" in done.stderr
    assert "job 1: oxford_pets init=random shots=8 seed=2: exit status 7 (log: " in done.stderr
    for init, seed in (("random", 1), ("diff", 1), ("diff", 2)):
        assert (fake.out / f"oxford_pets/DAPT_Init/{init}/vit_b16_8shots/seed{seed}"
                / "result.json").exists()
    failed_log = fake.out / "sweep_logs/oxford_pets_random_8shots_seed2.log"
    assert "fake failure" in failed_log.read_text()


def test_sweep_dry_run_counts_every_job_once(fake):
    fake.finish("main.sh", "dtd", "same", "2", SEEDS="7")
    # Seed 8 finished with another learning rate: the sweep's runs are refused there.
    fake.finish("main.sh", "dtd", "same", "2", "--", "OPTIM.LR", "0.5", SEEDS="8")
    done = fake.run("sweep.sh", "--dry-run", DATASETS="dtd", INITS="same diff", SHOTS="2",
                    SEEDS="7 8")
    assert "job 1 [other-settings]" in done.stdout
    assert ("4 jobs (1 datasets x 2 inits x 1 shots x 2 seeds): 1 finished, 2 to run, "
            "1 finished with other settings") in done.stdout


def test_sweep_grid_dry_run_counts_and_tags_each_value_pair(fake):
    grid = ["--grid", "TRAINER.DAPT_INIT.VIS_BETA=1,10", "--grid", "OPTIM.MAX_EPOCH=1,2"]
    done = fake.run("sweep.sh", "--dry-run", *grid, DATASETS="eurosat", INITS="diff", SHOTS="1",
                    SEEDS="1 2")
    assert done.returncode == 0, done.stderr
    summary = ("8 jobs (1 datasets x 1 inits x 1 shots x 2 seeds x 2 vis_beta values x 2 "
               "epochs): 0 finished, 8 to run")
    assert done.stdout.splitlines()[-1] == summary
    listed = re.findall(r"^job (\d+) \[todo\]: SEEDS=(\d) GRID=TRAINER\.DAPT_INIT\.VIS_BETA=(\d+)"
                        r"\\ OPTIM\.MAX_EPOCH=(\d) bash scripts/dapt_init/main\.sh eurosat diff 1 "
                        r"GPU  # (\S+)$", done.stdout, flags=re.MULTILINE)
    expected = [(str(n), seed, beta, epochs, str(
        fake.out / f"eurosat/DAPT_Init/diff/vit_b16_ep50_1shots_vis_beta{beta}_ep{epochs}"
        f"/seed{seed}")) for n, (seed, beta, epochs) in enumerate(
            (k, b, e) for k in "12" for b in ("1", "10") for e in "12")]
    assert listed == expected
    assert fake.calls() == [] and not fake.out.exists()
    # With TAG, the user's tag comes first; the SLURM tasks carry the same grid values.
    done = fake.run("sweep.sh", "--slurm", *grid, DATASETS="eurosat", INITS="diff", SHOTS="1",
                    SEEDS="1", TAG="lr")
    tasks = re.findall(r'^    "([^"]+)"  # \d+$', done.stdout, flags=re.MULTILINE)
    assert tasks == [f"eurosat diff 1 1 TRAINER.DAPT_INIT.VIS_BETA={b} OPTIM.MAX_EPOCH={e}"
                     for b in ("1", "10") for e in "12"]
    done = fake.run("sweep.sh", "--dry-run", *grid, DATASETS="eurosat", INITS="diff", SHOTS="1",
                    SEEDS="1", TAG="lr")
    assert done.stdout.splitlines()[0].endswith(
        f"  # {fake.out}/eurosat/DAPT_Init/diff/vit_b16_ep50_1shots_lr_vis_beta1_ep1/seed1")


def test_sweep_jobs_get_their_own_visual_init_whatever_the_callers_environment(fake):
    # VIS_INIT=same in the caller's shell must not turn the random job into a second "same".
    done = fake.run("sweep.sh", "--grid", "OPTIM.MAX_EPOCH=3", DATASETS="eurosat", INITS="diff",
                    SHOTS="1", SEEDS="1", VIS_INITS="random same", VIS_INIT="same", GPUS="cpu")
    assert done.returncode == 0, done.stdout + done.stderr
    runs = sorted((arg(a, "TRAINER.DAPT_INIT.VIS_INIT_METHOD"), arg(a, "--output-dir"))
                  for _, a in fake.calls())
    base = fake.out / "eurosat/DAPT_Init"
    assert runs == [("random", str(base / "diff/vit_b16_ep50_1shots_ep3/seed1")),
                    ("same", str(base / "diff_vis-same/vit_b16_ep50_1shots_ep3/seed1"))]
    spec = json.loads(Path(runs[1][1], "result.json").read_text())["spec"]
    assert (spec["vis_init"], spec["tag"], spec["grid"]) == ("same", "ep3",
                                                             {"OPTIM.MAX_EPOCH": "3"})


def test_sweep_without_a_gpu_runs_on_the_cpu_and_names_each_jobs_fields(fake):
    # nvidia-smi that lists no GPU (as on a machine without a driver): the default pool is the CPU.
    bin_dir = fake.root / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    path = f"{bin_dir}:{os.environ['PATH']}"
    done = fake.run("sweep.sh", DATASETS="eurosat", INITS="diff", SHOTS="1", SEEDS="1 2", PATH=path)
    assert done.returncode == 0, done.stderr
    assert [gpu for gpu, _ in fake.calls()] == ["unset", "unset"]  # no CUDA_VISIBLE_DEVICES
    assert "sweep: 2 jobs, 2 to run on the CPU, one at a time" in done.stdout
    assert "[done] cpu: job 1: eurosat init=diff shots=1 seed=2" in done.stdout

    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 (UUID: GPU-1)'\n")
    done = fake.run("sweep.sh", DATASETS="eurosat", INITS="same", SHOTS="1", SEEDS="1", PATH=path)
    assert "on GPUs 0" in done.stdout and fake.calls()[-1][0] == "0"


# Stands in for python in the interrupt tests: records "<pid> <process group>" (written whole,
# then renamed, so the test never reads half of it), then blocks opening a FIFO that no one
# writes. On SIGINT it appends "SIGINT" to a file and exits 130 as train.py does, or with
# STANDIN_IGNORE=1 keeps blocking (a job that does not stop).
STANDIN = r"""#!/usr/bin/env python3
import os, signal, sys
base = os.environ["STANDIN_DIR"]
def on_int(number, frame):
    with open(os.path.join(base, "signals"), "a") as file:
        file.write("SIGINT\n")
    if os.environ.get("STANDIN_IGNORE") != "1":
        sys.exit(130)
signal.signal(signal.SIGINT, on_int)
with open(os.path.join(base, "pid.tmp"), "w") as file:
    file.write(f"{os.getpid()} {os.getpgid(0)}")
os.rename(os.path.join(base, "pid.tmp"), os.path.join(base, "pid"))
with open(os.path.join(base, "fifo")) as fifo:  # blocks: no writer ever comes
    fifo.read()
"""


def fifo_has_reader(fifo: Path) -> bool:
    """Whether a process is (still) blocked opening ``fifo`` for reading."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError as error:  # ENXIO: no reader
        assert error.errno == errno.ENXIO, error
        return False
    return True


@pytest.mark.parametrize("ignore", [False, True], ids=["job-stops", "second-signal-kills"])
def test_sweep_forwards_an_interrupt_to_the_running_job_and_exits_with_one_line(fake, ignore):
    standin_dir = fake.root / "standin"
    standin_dir.mkdir()
    os.mkfifo(standin_dir / "fifo")
    standin = fake.root / "standin_python"
    standin.write_text(STANDIN)
    standin.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENV}
    env.update(fake.env, PYTHON=str(standin), STANDIN_DIR=str(standin_dir),
               STANDIN_IGNORE="1" if ignore else "0", DATASETS="eurosat", INITS="diff",
               SHOTS="1", SEEDS="1 2", GPUS="cpu", PYTHONUNBUFFERED="1")
    sweep = subprocess.Popen(["bash", str(SCRIPTS / "sweep.sh")], cwd=fake.root, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(standin_dir / "pid", sweep)
        pid, group = map(int, (standin_dir / "pid").read_text().split())
        # The job runs in a process group of its own (a terminal's Ctrl-C reaches the sweep
        # only), so the stand-in can only get SIGINT by the sweep's forwarding.
        assert group != os.getpgid(0) and group != pid
        sweep.send_signal(signal.SIGINT)
        if ignore:
            wait_for(standin_dir / "signals", sweep)
            # The job ignored it and still runs; the sweep waits for it.
            assert fifo_has_reader(standin_dir / "fifo") and sweep.poll() is None
            sweep.send_signal(signal.SIGINT)
        out, err = sweep.communicate(timeout=60)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.communicate()
    assert sweep.returncode == 130, out + err
    assert (standin_dir / "signals").read_text() == "SIGINT\n"  # forwarded once, then killed
    assert not fifo_has_reader(standin_dir / "fifo")  # the stand-in is gone
    assert err.splitlines() == [
        "error: interrupted (SIGINT); stopping 1 running job(s); run the sweep again: finished "
        "runs are skipped and unfinished ones resume from their last checkpoint (a second "
        "signal kills the jobs)"]
    lines = out.splitlines()
    assert lines[0] == "sweep: 2 jobs, 2 to run on the CPU, one at a time"
    assert lines[1].startswith("[start] cpu: job 0: SEEDS=1 bash scripts/dapt_init/main.sh "
                               "eurosat diff 1 (log: ")
    assert len(lines) == 2  # job 1 never started; job 0 is not reported as failed
    assert len(fake.calls()) == 0
    # The job's run wrote nothing: its folder is gone, or (the job killed before it could
    # clean up) holds only the lock its claim took.
    left = [p.name for p in (fake.out / "eurosat").rglob("*") if p.is_file()]
    assert left == ([".lock"] if ignore and left else [])


def test_trial_runs_the_demo_clip_and_config_into_folders_of_their_own(fake):
    # A demo folder as tools/demo.py --prepare-only leaves it (contents do not matter here).
    demo = fake.root / "demo"
    (demo / "data/eurosat").mkdir(parents=True)
    (demo / "data/eurosat/split_zhou_EuroSAT.json").write_text("{}")
    (demo / "small_clip.pt").write_text("")
    env = {"TRIAL": "1", "DEMO_DIR": str(demo), "DATA_ROOT": ""}
    done = fake.run("main.sh", "eurosat", "diff", "4", **env)
    assert done.returncode == 0, done.stderr
    calls = [args for _, args in fake.calls()]
    assert [arg(a, "--output-dir") for a in calls] == [
        str(fake.out / f"eurosat/DAPT_Init/diff/demo_small_4shots_trial/seed{k}") for k in (1, 2)]
    for args in calls:
        assert arg(args, "--root") == str(demo / "data")
        assert arg(args, "--config-file") == "configs/trainers/DAPT_Init/demo_small.yaml"
        assert arg(args, "TRAINER.DAPT_INIT.CLIP_WEIGHTS") == str(demo / "small_clip.pt")
    # The user's choices win; the tag always says trial.
    done = fake.run("main.sh", "eurosat", "diff", "4", SEEDS="3", TAG="lr", CFG="vit_b16_ep100",
                    **env)
    assert arg(fake.calls()[-1][1], "--output-dir") == str(
        fake.out / "eurosat/DAPT_Init/diff/vit_b16_ep100_4shots_lr_trial/seed3")
    # The sweep's trial grid, and commands that say TRIAL=1.
    done = fake.run("sweep.sh", "--dry-run", **env)
    assert "18 jobs (1 datasets x 3 inits x 3 shots x 2 seeds)" in done.stdout
    command = "TRIAL=1 TAG=trial SEEDS=1 bash scripts/dapt_init/main.sh eurosat random 1 GPU"
    assert command in done.stdout
    assert "DATA_ROOT is not set" not in done.stdout
    assert fake.run("main.sh", "eurosat", "diff", "4", TRIAL="yes").returncode == 2


def test_codebase_runs_a_host_train_py_with_its_configs_and_the_same_rules(fake):
    # A CoOp-family host after the drop-in steps: its own train.py (no --check-finished) and
    # configs, with DAPT_Init's trainer configs copied in.
    host = fake.root / "CoOp"
    (host / "configs/datasets").mkdir(parents=True)
    (host / "configs/datasets/eurosat.yaml").write_text("DATASET:\n  NAME: EuroSAT\n")
    (host / "configs/trainers/DAPT_Init").mkdir(parents=True)
    for config in (REPO / "configs/trainers/DAPT_Init").glob("*.yaml"):
        (host / "configs/trainers/DAPT_Init" / config.name).write_text(config.read_text())
    (host / "train.py").write_text("# CoOp's train.py\n")
    env = {"CODEBASE": str(host), "OUTPUT_ROOT": "", "FAKE_CWD": str(fake.root / "cwd.log"),
           "SEEDS": "1 2"}
    done = fake.run("main.sh", "eurosat", "diff", "4", **env)
    assert done.returncode == 0, done.stderr
    assert (fake.root / "cwd.log").read_text().split() == [str(host)] * 2
    for seed, (_, args) in enumerate(fake.calls(), start=1):
        assert args[:2] == ["train.py", "--root"]
        assert arg(args, "--config-file") == "configs/trainers/DAPT_Init/vit_b16_ep100.yaml"
        assert arg(args, "--output-dir") == str(
            host / f"output/eurosat/DAPT_Init/diff/vit_b16_ep100_4shots/seed{seed}")
    # In a host the run itself (the drop-in trainer) claims its folder and skips it.
    done = fake.run("main.sh", "eurosat", "diff", "4", **env)
    assert done.returncode == 0 and len(fake.calls()) == 2
    assert done.stdout.count("skip (finished): ") == 2
    # The sweep loops there too; the host's datasets are the ones with a config.
    done = fake.run("sweep.sh", "--dry-run", DATASETS="eurosat", **env)
    summary = "30 jobs (1 datasets x 3 inits x 5 shots x 2 seeds): 2 finished, 28 to run"
    assert summary in done.stdout
    done = fake.run("main.sh", "oxford_pets", "diff", "4", **env)
    assert done.returncode == 2 and "valid datasets: eurosat" in done.stderr
    done = fake.run("main.sh", "eurosat", "diff", "4", CODEBASE=str(fake.root / "nowhere"))
    assert done.returncode == 2 and error_lines(done) == [
        f"error: CODEBASE='{fake.root / 'nowhere'}' has no train.py; point it at the root of the "
        "codebase that holds the drop-in unit (its train.py, trainers/dapt_init/ and configs/)"]
