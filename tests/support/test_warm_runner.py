"""The warm runner (tests/support/warm_runner.py) behaves as a cold ``subprocess.run``: argv, working
directory, environment, sys.path[0], stdout and stderr, exit status (code, message, exception,
signal), exit handlers and timeouts, and a real train.py run gives the same files. Each case
runs the same command both ways and compares what came back."""
from __future__ import annotations

import fcntl
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.support import warm_runner
from tests.support.integration import (RUN_ENV, output_dir_of, prepared_workdir, read_result, run_train,
                               train_command)
from tests.support.toolbox import requires_toolbox

PROBE = """\
import atexit, os, sys
atexit.register(lambda: print("exit handler ran"))
print("argv", sys.argv, "cwd", os.getcwd(), "path0", sys.path[0], "name", __name__,
      "X", os.environ.get("WARM_PROBE_X"), "Y" in os.environ)
print("to stderr", file=sys.stderr)
sys.stdout.write("no newline at the end")
mode = sys.argv[1]
if mode == "code":
    sys.exit(3)
if mode == "message":
    sys.exit("a message for stderr")
if mode == "raise":
    def inner():
        raise ValueError("boom")
    inner()
if mode == "signal":
    os.kill(os.getpid(), 9)
if mode == "big":
    sys.exit(256 + 7)
"""


@pytest.fixture(scope="module")
def runner():
    env = {**RUN_ENV, "WARM_PROBE_X": "server"}
    runner = warm_runner.WarmRunner(env)
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("probe") / "probe.py"
    path.write_text(PROBE)
    return path


def cold(args, cwd, env, timeout=None):
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def same(warm: subprocess.CompletedProcess, cold_done: subprocess.CompletedProcess) -> None:
    assert (warm.args, warm.returncode, warm.stdout, warm.stderr) == (
        cold_done.args, cold_done.returncode, cold_done.stdout, cold_done.stderr)


def warm_python_run(runner, args, cwd, env):
    """``args`` with ``python`` replaced by the runner's wrapper (as a script's PYTHON=)."""
    return subprocess.run([runner.python_wrapper, *args[1:]], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("mode,status", [("none", 0), ("code", 3), ("message", 1), ("raise", 1),
                                         ("signal", -9), ("big", 7)])
def test_a_script_gives_what_a_cold_process_gives(runner, probe, tmp_path, mode, status):
    # Another working directory and environment than the server's: the child takes the run's.
    env = {**runner.env, "WARM_PROBE_X": "run", "Y": "1"}
    args = [sys.executable, str(probe), mode]
    warm = runner.run(args, tmp_path, env)
    cold_done = cold(args, tmp_path, env)
    same(warm, cold_done)
    assert warm.returncode == status
    # Through the PYTHON wrapper: the same streams and status (a probe outside the
    # repository goes cold there; inside it, warm: the probe is copied into the repository).
    inside = warm_runner.REPO / "tests" / f"_warm_probe_{os.getpid()}.py"
    inside.write_text(probe.read_text())
    try:
        wrapped = warm_python_run(runner, [sys.executable, str(inside), mode], tmp_path, env)
        reference = cold([sys.executable, str(inside), mode], tmp_path, env)
    finally:
        inside.unlink()
    assert (wrapped.returncode, wrapped.stdout, wrapped.stderr) == (
        reference.returncode, reference.stdout, reference.stderr)
    assert f"cwd {tmp_path} path0 {probe.parent} name __main__ X run True" in warm.stdout
    assert ("exit handler ran" in warm.stdout) == (mode != "signal")
    if mode == "raise":  # the traceback starts at the script, not in the runner
        assert warm.stderr.count("File ") == 2 and "ValueError: boom" in warm.stderr


def test_dash_c_code_gets_its_argv_and_an_empty_path0(runner, tmp_path):
    args = [sys.executable, "-c", "import sys; print(sys.argv, repr(sys.path[0])); sys.exit(4)",
            "a", "b c"]
    warm = runner.run(args, tmp_path, runner.env)
    same(warm, cold(args, tmp_path, runner.env))
    assert warm.stdout == "['-c', 'a', 'b c'] ''\n" and warm.returncode == 4


def test_a_timeout_kills_the_child_and_raises_as_subprocess_does(runner, tmp_path):
    marker = tmp_path / "pid"
    code = f"import os, time; open({str(marker)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    with pytest.raises(subprocess.TimeoutExpired) as raised:
        runner.run([sys.executable, "-c", code], tmp_path, runner.env, timeout=2)
    assert raised.value.timeout == 2
    with pytest.raises(ProcessLookupError):  # reaped by the server: gone
        os.kill(int(marker.read_text()), 0)
    # The server still serves.
    assert runner.run([sys.executable, "-c", "print(5)"], tmp_path, runner.env).stdout == "5\n"


def test_runs_share_nothing_but_files(runner, tmp_path):
    # A module attribute set by one run is not there in the next (each is a fresh fork).
    code = ("import json; print(getattr(json, 'warm_mark', None)); json.warm_mark = 1; "
            "import random; print(random.random())")
    first = runner.run([sys.executable, "-c", code], tmp_path, runner.env)
    second = runner.run([sys.executable, "-c", code], tmp_path, runner.env)
    assert first.stdout.splitlines()[0] == second.stdout.splitlines()[0] == "None"
    # Fresh entropy per run, as two new interpreters have.
    assert first.stdout.splitlines()[1] != second.stdout.splitlines()[1]


def test_what_a_fork_cannot_reproduce_goes_cold(runner, probe, tmp_path, monkeypatch):
    train_py = str(warm_runner.REPO / "train.py")
    can = warm_runner.can_fork
    assert can([sys.executable, train_py], runner.env, runner.env)
    # Variables the run reads (the scripts' own, PYTHON among them) are the run's business.
    assert can([sys.executable, "-c", "pass"], {**runner.env, "DATA_ROOT": "x", "PYTHON": "y"},
               runner.env)
    # Start-up variables act before any import: another value is another process.
    for name in ("OMP_NUM_THREADS", "PYTHONHASHSEED", "CUDA_VISIBLE_DEVICES", "LC_ALL",
                 "KMP_INIT_AT_FORK"):
        assert not can([sys.executable, train_py], {**runner.env, name: "3"}, runner.env,
                       libraries={"libcuda.so.1", "libiomp5.so"})
    # Variables a native library reads when it loads: the GPU a sweep gives a job (the CUDA
    # driver), KMP_ (Intel's OpenMP; scikit-learn sets them on import). Forked only from a
    # server that has not loaded their reader; other CUDA variables never are.
    for name in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "KMP_INIT_AT_FORK"):
        assert can([sys.executable, train_py], {**runner.env, name: "3"}, runner.env,
                   libraries={"libgomp.so.1", "libcudart.so.13"})
    assert not can([sys.executable, train_py], {**runner.env, "CUDA_VISIBLE_DEVICES": "3"},
                   runner.env, libraries={"libcuda.so.1"})
    assert not can([sys.executable, train_py], {**runner.env, "KMP_INIT_AT_FORK": "3"},
                   runner.env, libraries={"libomp.so"})
    for name in ("CUDA_LAUNCH_BLOCKING", "CUDA_HOME", "PYTORCH_CUDA_ALLOC_CONF"):
        assert not can([sys.executable, train_py], {**runner.env, name: "1"}, runner.env,
                       libraries=set())
    # A variable the server's own imports set (torch sets TORCHINDUCTOR_CACHE_DIR), which the
    # caller's imports set too after the server started: the same value is the server's.
    added = {"TORCHINDUCTOR_CACHE_DIR": "/tmp/inductor"}
    assert can([sys.executable, train_py], {**runner.env, **added}, runner.env, added=added)
    assert not can([sys.executable, train_py], {**runner.env, "TORCHINDUCTOR_CACHE_DIR": "/x"},
                   runner.env, added=added)
    assert not can([sys.executable, train_py], {**runner.env, **added}, runner.env)
    # A script outside the repository (a host codebase's own train.py and trainers).
    assert not can([sys.executable, str(probe)], runner.env, runner.env)
    assert not can([sys.executable, "-m", "pytest"], runner.env, runner.env)
    # Such a run is run cold, and still gives what a cold process gives.
    env = {**runner.env, "OMP_NUM_THREADS": "3"}
    code = "import os, torch; print(os.environ['OMP_NUM_THREADS'], torch.get_num_threads())"
    same(runner.run([sys.executable, "-c", code], tmp_path, env),
         cold([sys.executable, "-c", code], tmp_path, env))
    # DAPT_TEST_COLD=1: run() never asks the server.
    monkeypatch.setenv(warm_runner.COLD_VARIABLE, "1")
    monkeypatch.setattr(warm_runner, "runner_for", lambda env: pytest.fail("asked the server"))
    done = warm_runner.run([sys.executable, "-c", "print(1)"], warm_runner.REPO, RUN_ENV, 60,
                           warm_env=RUN_ENV)
    assert done.stdout == "1\n"


@requires_toolbox
def test_a_warm_train_py_run_writes_what_a_cold_one_writes(tmp_path_factory):
    """The same train.py command cold and warm, each in its own (identically prepared) work
    folder: same prompts, same result, the same output apart from the folder and the timings.
    (The cold path of every train.py test that runs warm.)"""
    runs = {}
    for kind in ("cold", "warm"):
        workdir = prepared_workdir(tmp_path_factory.mktemp(kind))
        command = train_command(workdir, "diff", output_dir=workdir / "run")
        done = run_train(command, cold=kind == "cold")
        assert done.returncode == 0, done.stderr[-2000:]
        runs[kind] = (workdir, output_dir_of(command), done)
    (cold_work, cold_dir, cold_done), (warm_work, warm_dir, warm_done) = runs["cold"], runs["warm"]
    for name in ("model.pth.tar-3", "prompts-epoch0.pt", "prompts-epoch1.pt"):
        a = torch.load(cold_dir / "prompt_learner" / name, weights_only=True)
        b = torch.load(warm_dir / "prompt_learner" / name, weights_only=True)
        a, b = a.get("state_dict", a), b.get("state_dict", b)
        assert sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a), name
    assert read_result(cold_dir)["metrics"] == read_result(warm_dir)["metrics"]

    def stable(text: str, workdir: Path) -> list[str]:
        # Timings differ between any two runs (the lines keep their losses), and the prototype
        # file's key (it hashes the weights' path); nothing else may.
        text = re.sub(r"(time|data) [\d.]+ \([\d.]+\)|eta [\d:]+|Elapsed: [\d:]+", "T", text)
        text = re.sub(r"_[0-9a-f]{16}\.pt", "_KEY.pt", text)
        return text.replace(str(workdir), "WORK").splitlines()

    assert stable(warm_done.stdout, warm_work) == stable(cold_done.stdout, cold_work)
    assert "** System info **" in warm_done.stdout
    assert warm_done.stdout.count("epoch [") == 6


def test_the_python_wrapper_passes_signals_on_and_ends_as_the_run_ended(runner, tmp_path):
    # A script's PYTHON= gets SIGTERM (a scheduler's cancel): the run gets it and dies by it,
    # and the wrapper ends killed by the same signal, as the run's own process would.
    code = "import os, sys, time; print(os.getpid(), flush=True); time.sleep(120)"
    wrapper = subprocess.Popen([runner.python_wrapper, "-c", code], cwd=tmp_path,
                               env=runner.env, stdout=subprocess.PIPE, text=True)
    run_pid = int(wrapper.stdout.readline())
    assert run_pid != wrapper.pid  # forked by the server, not the wrapper's own interpreter
    wrapper.send_signal(15)
    assert wrapper.wait(timeout=60) == -15
    wrapper.stdout.close()
    with pytest.raises(ProcessLookupError):
        os.kill(run_pid, 0)


FD_PROBE = """\
import fcntl, os, sys
fd = int(sys.argv[1])
print("open", sorted(int(n) for n in os.listdir("/proc/self/fd")), os.get_inheritable(fd))
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the lock its parent holds: the same one
os.write(fd, b"written through the inherited descriptor\\n")
again = os.open(os.readlink(f"/proc/self/fd/{fd}"), os.O_RDONLY)
try:
    fcntl.flock(again, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    print("a new descriptor of the file is locked out")
print("pid", os.getpid(), file=sys.stderr)
"""


def test_the_python_wrapper_passes_inherited_descriptors_under_their_numbers(runner, tmp_path):
    # A script passes the run folder's lock down to train.py as an inherited descriptor
    # (study/scripts.py, pass_fds): through the wrapper the run holds the same lock under the
    # same number, and no descriptor of the server's, as a cold interpreter does.
    outputs = {}
    for kind, python in (("cold", sys.executable), ("warm", runner.python_wrapper)):
        lock = tmp_path / f"{kind}.lock"
        opened = os.open(lock, os.O_RDWR | os.O_CREAT)
        fd = os.dup2(opened, 40)  # a number of its own, above the usual ones
        os.close(opened)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            done = subprocess.Popen([python, "-c", FD_PROBE, str(fd)], cwd=tmp_path,
                                    env=runner.env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, pass_fds=(fd,))
            out, err = done.communicate(timeout=120)
        finally:
            os.close(fd)
        outputs[kind] = (done.returncode, out, lock.read_text(), int(err.split()[-1]), done.pid)
    (status, out, written, _, _), (warm_status, warm_out, warm_written, run_pid, wrapper_pid) = (
        outputs["cold"], outputs["warm"])
    assert (warm_status, warm_out, warm_written) == (status, out, written)
    assert out == "open [0, 1, 2, 3, 40] True\na new descriptor of the file is locked out\n"
    assert written == "written through the inherited descriptor\n" and status == 0
    assert run_pid != wrapper_pid  # forked by the server, not the wrapper's own interpreter


def test_a_library_variable_its_reader_has_not_loaded_is_forked_and_runs_as_cold(
        runner, tmp_path):
    # Whether the server loaded the CUDA driver or Intel's / LLVM's OpenMP, from its memory
    # map (a GPU machine has the driver loaded: there the run goes cold, still as cold).
    maps = Path(f"/proc/{runner.process.pid}/maps").read_text()
    readers = re.findall(r"/(libcuda\.so[^/\s]*|libiomp[^/\s]*|libomp\.[^/\s]*)$", maps, re.M)
    env = {**runner.env, "CUDA_VISIBLE_DEVICES": "1", "KMP_BLOCKTIME": "7"}
    code = ("import os, sys, torch; print(os.environ['CUDA_VISIBLE_DEVICES'], "
            "os.environ['KMP_BLOCKTIME'], torch.cuda.device_count(), torch.cuda.is_available(),"
            " torch.get_num_threads()); "
            f"print(os.getppid() == {os.getpid()}, file=sys.stderr)")
    warm = runner.run([sys.executable, "-c", code], tmp_path, env)
    cold_done = cold([sys.executable, "-c", code], tmp_path, env)
    assert (warm.returncode, warm.stdout) == (cold_done.returncode, cold_done.stdout)
    assert warm.stdout.startswith("1 7 ") and cold_done.stderr.splitlines()[-1] == "True"
    # Forked (its parent is not this process) exactly when neither reader is loaded.
    assert warm.stderr.splitlines()[-1] == str(bool(readers))


@requires_toolbox
def test_runs_stay_warm_after_the_test_process_imported_what_sets_variables():
    # A test worker imports the toolbox, scikit-learn and torch's compiler pieces as its tests
    # go; they add start-up variables (KMP_*, TORCHINDUCTOR_CACHE_DIR) to its environment
    # after the server started. A run_train then must still be forked: a fork has torch
    # imported before the run's first line, a fresh interpreter does not.
    import dassl.engine  # noqa: F401
    import sklearn  # noqa: F401
    import torch._inductor.config  # noqa: F401

    done = run_train([sys.executable, "-c", "import sys; print('torch' in sys.modules)"])
    assert done.returncode == 0, done.stderr
    assert done.stdout == "True\n"
