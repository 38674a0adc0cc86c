"""Bad data, bad state and a bad environment, driven through train.py, the scripts and the tools.

Each row of ``ROWS`` sets up one bad input on real files (tiny EuroSAT, small random CLIP, runs
killed at a known epoch), runs one command and asserts: the exit status, exactly one ``error:``
line on stderr, no traceback, and every file that existed before (in the row's watched
folders) byte for byte unchanged. Rows of the environment (a full disk, a rotted image, an
interrupt) then undo the fault and run the same command again: it must finish by resuming,
not by training from scratch. Mechanism tests that need the same runs follow the table.
Needs the toolbox (and, for the full-disk row, root to mount a small tmpfs).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch

from tests.support import warm_runner
from tests.support.integration import (REPO, RUN_ENV, prepared_workdir, read_result,
                               run_killed_after_epoch, run_train, train_command, warm_python)
from tests.support.toolbox import requires_toolbox

pytestmark = requires_toolbox

PROTOTYPES = "TRAINER.DAPT_INIT.PROTOTYPE_CACHE_DIR"


# ------------------------------------------------------------------------------------ helpers
def snapshot(*folders: Path) -> dict[str, bytes]:
    """Every file under ``folders``: path -> bytes (but ``.lock``, which holds the PID of the
    process that last took the run folder)."""
    files = {}
    for folder in folders:
        for root, _, names in os.walk(folder):
            for name in names:
                if name == ".lock":
                    continue
                path = os.path.join(root, name)
                files[path] = Path(path).read_bytes()
    return files


def changed_files(before: dict[str, bytes]) -> list[str]:
    """Files of ``before`` that are gone or hold other bytes now."""
    return [path for path, data in before.items()
            if not os.path.isfile(path) or Path(path).read_bytes() != data]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def script_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore",
            "OUTDATED_IGNORE": "1", **extra}


def rot_in_place(path: Path) -> None:
    """Garbage of the same size and modification time: the decode marker still matches, so the
    start-up check passes and the run meets the bad bytes when it reads the image."""
    info = path.stat()
    path.write_bytes(b"\0" * info.st_size)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict:
    """Tiny data, a small CLIP, and two runs of the demo command (2 shots, 3 epochs): one
    killed after epoch 1, one killed after epoch 3 (trained, not tested) on a data copy of its
    own (whose decode markers it made)."""
    root = tmp_path_factory.mktemp("bad_data")
    work = prepared_workdir(root / "work")
    cache = (PROTOTYPES, str(root / "prototypes"))
    epoch1 = train_command(work, "random", *cache, output_dir=root / "epoch1")
    assert run_killed_after_epoch(epoch1, 1).returncode == 9
    shutil.copytree(work / "data", root / "data3")
    epoch3 = train_command(work, "random", PROTOTYPES, str(root / "prototypes3"),
                           output_dir=root / "epoch3")
    epoch3[epoch3.index("--root") + 1] = str(root / "data3")
    assert run_killed_after_epoch(epoch3, 3).returncode == 9
    return {"root": root, "work": work, "cache": cache, "epoch1": epoch1, "epoch3": epoch3}


def copy_run(command: list[str], target: Path) -> list[str]:
    """``command`` on a copy of its run folder at ``target``."""
    source = Path(command[command.index("--output-dir") + 1])
    shutil.copytree(source, target, symlinks=True)
    copied = list(command)
    copied[copied.index("--output-dir") + 1] = str(target)
    return copied


# -------------------------------------------------------------------------------------- rows
@dataclass
class Case:
    """A prepared bad input: the command, where it runs, what must not change, how to undo the
    fault (None: not an environment fault) and what the re-run must print."""

    command: list[str]
    watched: list[Path]
    env: dict[str, str] | None = None
    fix: Callable[[], None] | None = None
    rerun_says: str = ""
    new_session: bool = False
    error_says: str = ""  # in the one error line


def tiny_data_over_real_eurosat(base: dict, tmp: Path) -> Case:
    real = tmp / "root" / "eurosat"
    (real / "2750" / "Forest").mkdir(parents=True)
    (real / "split_zhou_EuroSAT.json").write_text('{"train": [["Forest/real_1.jpg", 1, "x"]]}')
    (real / "2750" / "Forest" / "real_1.jpg").write_bytes(b"a real photo")
    return Case([sys.executable, str(REPO / "tools/tiny_data.py"), "eurosat", "--root",
                 str(tmp / "root")], [tmp / "root"], error_says="not made by tools/tiny_data.py")


def tiny_data_all_over_one_real_set(base: dict, tmp: Path) -> Case:
    real = tmp / "root" / "oxford_pets" / "images"
    real.mkdir(parents=True)
    (real / "Abyssinian_1.jpg").write_bytes(b"a real cat")
    return Case([sys.executable, str(REPO / "tools/tiny_data.py"), "all", "--root",
                 str(tmp / "root")], [tmp / "root"], error_says="oxford_pets already exists")


def tiny_data_root_is_a_file(base: dict, tmp: Path) -> Case:
    (tmp / "root").write_text("not a folder")
    return Case([sys.executable, str(REPO / "tools/tiny_data.py"), "dtd", "--root",
                 str(tmp / "root")], [tmp], error_says="Not a directory")


def lock_is_a_folder(base: dict, tmp: Path) -> Case:
    command = copy_run(base["epoch1"], tmp / "run")
    (tmp / "run" / ".lock").unlink()
    (tmp / "run" / ".lock").mkdir()
    return Case(command, [tmp / "run"], error_says="cannot take the run folder's lock")


def lock_is_a_folder_under_main_sh(base: dict, tmp: Path) -> Case:
    run = tmp / "out/eurosat/DAPT_Init/random/demo_small_2shots/seed1"
    run.mkdir(parents=True)
    (run / ".lock").mkdir()
    (run / "log.txt").write_text("an earlier attempt\n")
    return Case(main_sh(base), [tmp / "out"], env=main_env(base, tmp / "out"),
                error_says="cannot take the run folder's lock")


def garbage_pointer_and_no_checkpoint_loads(base: dict, tmp: Path) -> Case:
    command = copy_run(base["epoch1"], tmp / "run")
    folder = tmp / "run" / "prompt_learner"
    (folder / "checkpoint").write_bytes(b"\xff\xfe garbage \x00")
    (folder / "model.pth.tar-1").write_bytes((folder / "model.pth.tar-1").read_bytes()[:100])
    return Case(command, [tmp / "run"], error_says="none of the checkpoints beside it loads")


def image_rots_after_its_decode_check(base: dict, tmp: Path) -> Case:
    command = copy_run(base["epoch3"], tmp / "run")
    data = Path(command[command.index("--root") + 1])
    split = json.loads((data / "eurosat/split_zhou_EuroSAT.json").read_text())
    image = data / "eurosat/2750" / split["test"][0][0]
    good = image.read_bytes()
    rot_in_place(image)
    info = image.stat()

    def fix() -> None:
        image.write_bytes(good)
        os.utime(image, ns=(info.st_atime_ns, info.st_mtime_ns))

    # Named by the loader at test time (the start-up check still trusts the file).
    return Case(command, [tmp / "run"], fix=fix, rerun_says="model.pth.tar-3 (epoch 3 done)",
                error_says=f"image {image} cannot be read now")


def disk_full_while_training(base: dict, tmp: Path, disk: Path) -> Case:
    command = copy_run(base["epoch1"], disk / "run")
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as file:  # take every free block
        try:
            while True:
                file.write(b"\0" * 4096)
        except OSError:
            pass
    return Case(command, [disk / "run"], fix=filler.unlink,
                rerun_says="model.pth.tar-1 (epoch 1 done)",
                error_says="No space left on device")


def interrupted_script(base: dict, tmp: Path) -> Case:
    """Ctrl-C (SIGINT to the script's whole process group) while train.py trains epoch 2."""
    wrapper = tmp / "python_interrupted"
    hook = ("import os, runpy, signal, sys; sys.path.insert(0, os.getcwd()); "
            "import trainers.dapt_init.trainer as t; original = t.DAPT_Init.after_epoch\n"
            "def after_epoch(self):\n"
            "    original(self)\n"
            "    if self.epoch + 1 == 1: os.killpg(os.getpgrp(), signal.SIGINT)\n"
            "t.DAPT_Init.after_epoch = after_epoch; sys.argv = sys.argv[1:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    (tmp / "hook.py").write_text(hook)
    wrapper.write_text(f'#!/bin/bash\nexec {sys.executable} {tmp / "hook.py"} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    env = main_env(base, tmp / "out", PYTHON=str(wrapper))

    def fix() -> None:
        # The run signals its own process group: that group is the script's only in a process
        # of its own (a warm fork runs in a group of its own), so the fault needs the cold
        # interpreter above; the re-run after it does not.
        env["PYTHON"] = warm_python()

    return Case(main_sh(base), [tmp / "out"], env=env, fix=fix,
                rerun_says="model.pth.tar-1 (epoch 1 done)", new_session=True,
                error_says="interrupted (SIGINT)")


def main_sh(base: dict) -> list[str]:
    return ["bash", str(REPO / "scripts/dapt_init/main.sh"), "eurosat", "random", "2", "--",
            "TRAINER.DAPT_INIT.CLIP_WEIGHTS", str(base["work"] / "small_clip.pt"),
            "USE_CUDA", "False", *base["cache"]]


def main_env(base: dict, out: Path, **extra: str) -> dict[str, str]:
    # train.py through the warm interpreter unless a case brings its own PYTHON.
    extra = {"PYTHON": warm_python(), **extra}
    return script_env(DATA_ROOT=str(base["work"] / "data"), OUTPUT_ROOT=str(out), SEEDS="1",
                      CFG="demo_small", **extra)


# name -> (make the case, exit status)
ROWS: dict[str, tuple[Callable[..., Case], int]] = {
    "tiny_data over a real EuroSAT": (tiny_data_over_real_eurosat, 2),
    "tiny_data all, one real data set under the root": (tiny_data_all_over_one_real_set, 2),
    "tiny_data --root is a file": (tiny_data_root_is_a_file, 2),
    ".lock is a folder (train.py)": (lock_is_a_folder, 2),
    ".lock is a folder (main.sh)": (lock_is_a_folder_under_main_sh, 2),
    "garbage resume pointer, no checkpoint loads": (garbage_pointer_and_no_checkpoint_loads, 2),
    "an image rots after its decode check": (image_rots_after_its_decode_check, 2),
    "disk full while training": (disk_full_while_training, 2),
    "SIGINT on main.sh while training": (interrupted_script, 130),
}


@pytest.fixture
def full_disk(tmp_path):
    """A 2 MiB tmpfs (root only): a real file system that runs out of space."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
            capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs (a real full file system)")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def run_case(case: Case) -> subprocess.CompletedProcess:
    if not case.new_session:  # a repository script by this interpreter: forked warm
        return warm_runner.run(case.command, REPO, case.env or script_env(), 240,
                               warm_env=RUN_ENV)
    return subprocess.run(case.command, cwd=REPO, env=case.env or script_env(),
                          capture_output=True, text=True, timeout=240,
                          start_new_session=case.new_session)


@pytest.mark.parametrize("name", list(ROWS))
def test_bad_input_ends_in_one_line_and_changes_no_file(base, tmp_path, request, name):
    make, status = ROWS[name]
    if make is disk_full_while_training:
        case = make(base, tmp_path, request.getfixturevalue("full_disk"))
    else:
        case = make(base, tmp_path)
    before = snapshot(*case.watched)
    done = run_case(case)
    assert done.returncode == status, done.stderr[-3000:]
    (line,) = error_lines(done.stderr)
    assert case.error_says in line
    assert "Traceback" not in done.stderr + done.stdout, done.stderr[-3000:]
    assert changed_files(before) == []
    if case.fix is None:
        return
    # An environment fault: once it is undone, the same command finishes by resuming.
    case.fix()
    again = run_case(case)
    assert again.returncode == 0, again.stderr[-3000:]
    assert case.rerun_says in again.stdout
    assert "train from scratch" not in again.stdout


# ------------------------------------------------------------ mechanisms on the same runs
def test_a_garbage_pointer_resumes_from_the_newest_checkpoint_instead_of_replacing_it(base,
                                                                                       tmp_path):
    command = copy_run(base["epoch1"], tmp_path / "run")
    folder = tmp_path / "run" / "prompt_learner"
    first = (folder / "model.pth.tar-1").read_bytes()
    (folder / "checkpoint").write_text("garbage that names no file\n")
    done = run_train(command)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming from the newest checkpoint that loads" in done.stdout
    assert f"Resuming from {folder / 'model.pth.tar-1'} (epoch 1 done)" in done.stdout
    # It continued epoch 1's run: the epoch-1 checkpoint it resumed from was not retrained
    # and rewritten (a fresh start writes a new model.pth.tar-1 first), and it ends at epoch 3.
    assert "epoch [1/3]" not in done.stdout
    assert read_result(tmp_path / "run")["epoch"] == 3
    assert torch.load(folder / "model.pth.tar-3", weights_only=True)["epoch"] == 3
    assert first != (folder / "model.pth.tar-3").read_bytes()


def test_a_damaged_prototype_cache_is_recomputed_and_replaced(base, tmp_path):
    cache_dir = Path(base["cache"][1])
    (cached,) = sorted(cache_dir.glob("*.pt"))
    stored = torch.load(cached, weights_only=True)
    good = stored["prototypes"].clone()
    shutil.copytree(cache_dir, tmp_path / "prototypes")
    damaged = tmp_path / "prototypes" / cached.name
    stored["prototypes"] = torch.full_like(good, float("nan"))
    torch.save(stored, damaged)
    command = copy_run(base["epoch1"], tmp_path / "run")
    command[command.index(PROTOTYPES) + 1] = str(tmp_path / "prototypes")
    done = run_train(command)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "is damaged (it holds NaN or infinite values); recomputing" in done.stdout
    assert torch.equal(torch.load(damaged, weights_only=True)["prototypes"], good)


def test_a_sweep_job_another_sweep_holds_is_running_elsewhere_then_skipped(base, tmp_path):
    """Two identical sweeps: while the other sweep's run holds the folder (its lock), this
    sweep's job is "running elsewhere", not failed; once the other finished it, a re-run of
    the sweep skips it."""
    reference = subprocess.run(main_sh(base), cwd=REPO, env=main_env(base, tmp_path / "ref"),
                               capture_output=True, text=True, timeout=240)
    assert reference.returncode == 0, reference.stderr[-3000:]
    finished = tmp_path / "ref/eurosat/DAPT_Init/random/demo_small_2shots/seed1/result.json"
    folder = tmp_path / "out/eurosat/DAPT_Init/random/demo_small_2shots/seed1"
    folder.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys\n"
         f"fd = os.open({str(folder / '.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    # GPUS=cpu: the pool's slot is named the same on a machine with a GPU as without.
    env = main_env(base, tmp_path / "out", DATASETS="eurosat", INITS="random", SHOTS="2",
                   GPUS="cpu")
    overrides = main_sh(base)[main_sh(base).index("--"):]
    sweep = ["bash", str(REPO / "scripts/dapt_init/sweep.sh"), *overrides]
    try:
        assert holder.stdout.readline().strip() == "locked"
        done = subprocess.run(sweep, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=240)
        shutil.copy(finished, folder / "result.json")  # the other sweep finishes the run
    finally:
        holder.stdin.close()
        holder.wait()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[FAILED]" not in done.stdout and error_lines(done.stderr) == []
    assert "1 running elsewhere (not failures" in done.stdout
    again = subprocess.run(sweep, cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=240)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "sweep: all 1 jobs finished (0 run now)" in again.stdout
