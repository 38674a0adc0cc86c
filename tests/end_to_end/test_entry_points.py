"""study/entry.py and the signals of the sweep and train.py: a reader that closes the pipe
ends every entry point quietly (exit 141, nothing on stderr), and SIGHUP (a closed terminal or
ssh session) stops the sweep and train.py as SIGTERM / Ctrl-C do (exit 129, one line)
(issue 25, families 6 and 7)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from study.entry import BROKEN_PIPE
from tests.support.scripts_helpers import REPO, SCRIPT_ENV, SCRIPTS, fake, wait_for  # noqa: F401  (fixture)

PY = sys.executable
# (command, needs the fake's environment, exit status): each writes to stdout at once. An
# argparse --help ends 0: argparse itself drops a failed write of its help (quietly too).
PIPED = {
    "sweep-dry-run": (["bash", str(SCRIPTS / "sweep.sh"), "--dry-run"], True, BROKEN_PIPE),
    "sweep-slurm": (["bash", str(SCRIPTS / "sweep.sh"), "--slurm"], True, BROKEN_PIPE),
    "sweep-help": (["bash", str(SCRIPTS / "sweep.sh"), "--help"], False, BROKEN_PIPE),
    "study-sweep-help": ([PY, "-m", "study", "sweep", "--help"], False, BROKEN_PIPE),
    "study-help": ([PY, "-m", "study", "--help"], False, BROKEN_PIPE),
    "main-help": (["bash", str(SCRIPTS / "main.sh"), "--help"], False, BROKEN_PIPE),
    "main-dry-run": (["bash", str(SCRIPTS / "main.sh"), "eurosat", "diff", "4", "--dry-run"],
                     True, BROKEN_PIPE),
    "parse-test-res": ([PY, "parse_test_res.py", "{host}"], False, BROKEN_PIPE),
    "dropin-check": ([PY, "tools/dropin.py", "--check", "{host}"], False, BROKEN_PIPE),
    "parse-test-res-help": ([PY, "parse_test_res.py", "--help"], False, 0),
    "train-help": ([PY, "train.py", "--help"], False, 0),
    "analyze-prompts-help": ([PY, "tools/analyze_prompts.py", "init-stats", "--help"], False, 0),
    "dropin-help": ([PY, "tools/dropin.py", "--help"], False, 0),
    "report-help": ([PY, "tools/report.py", "--help"], False, 0),
    "demo-help": ([PY, "tools/demo.py", "--help"], False, 0),
    "prepare-data-help": ([PY, "tools/prepare_data.py", "--help"], False, 0),
    "tiny-data-help": ([PY, "tools/tiny_data.py", "--help"], False, 0),
}


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENV}
    # This checkout's packages, whichever checkout is installed.
    return {**env, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore", **extra}


@pytest.mark.parametrize("case", PIPED)
def test_a_closed_pipe_ends_an_entry_point_quietly_with_141(fake, case):
    command, fake_env, status = PIPED[case]
    host = fake.root / "host"
    (host / "trainers").mkdir(parents=True)
    (host / "train.py").write_text("import trainers.coop\n\ndef extend_cfg(cfg):\n    pass\n")
    command = [word.format(host=host) for word in command]
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line: `... | head -0`
    try:
        done = subprocess.run(command, cwd=REPO, stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=120,
                              env=_env({**fake.env, "DATASETS": "eurosat", "INITS": "diff",
                                        "SHOTS": "1", "SEEDS": "1"} if fake_env else {}))
    finally:
        os.close(write_end)
    assert done.returncode == status, done.stderr
    assert done.stderr == ""  # no traceback, no "Exception ignored ... BrokenPipeError"


def test_without_a_closed_pipe_the_status_is_the_commands_own(fake):
    done = subprocess.run([PY, "-m", "study", "--help"], cwd=REPO, capture_output=True,
                          text=True, env=_env({}))
    assert done.returncode == 0 and done.stdout.startswith("python -m study COMMAND")
    done = subprocess.run([PY, "-m", "study", "nonsense"], cwd=REPO, capture_output=True,
                          text=True, env=_env({}))
    assert done.returncode == 2 and done.stdout == ""


# Stands in for python as the sweep's job: writes its pid once it has its handlers, then
# blocks opening a FIFO no one writes; on SIGHUP or SIGTERM it records the signal's name and
# exits 128 + its number, as train.py does.
STANDIN = r"""#!/usr/bin/env python3
import os, signal, sys
base = os.environ["STANDIN_DIR"]
def on_signal(number, frame):
    with open(os.path.join(base, "signals"), "a") as file:
        file.write(signal.Signals(number).name + "\n")
    sys.exit(128 + number)
signal.signal(signal.SIGHUP, on_signal)
signal.signal(signal.SIGTERM, on_signal)
with open(os.path.join(base, "pid.tmp"), "w") as file:
    file.write(str(os.getpid()))
os.rename(os.path.join(base, "pid.tmp"), os.path.join(base, "pid"))
with open(os.path.join(base, "fifo")) as fifo:
    fifo.read()
"""


def _signalled_sweep(fake, env: dict[str, str], ready: Path, number: int
                     ) -> tuple[subprocess.Popen, str, str]:
    """sweep.sh started in ``fake``'s folder, sent signal ``number`` once ``ready`` exists;
    the ended process and its output (the process is killed if it outlives the test)."""
    sweep = subprocess.Popen(["bash", str(SCRIPTS / "sweep.sh")], cwd=fake.root, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(ready, sweep)
        sweep.send_signal(number)
        out, err = sweep.communicate(timeout=60)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.communicate()
    return sweep, out, err


@pytest.mark.parametrize("number", [signal.SIGHUP, signal.SIGTERM], ids=["SIGHUP", "SIGTERM"])
def test_sighup_stops_the_sweep_as_sigterm_does(fake, number):
    standin_dir = fake.root / "standin"
    standin_dir.mkdir()
    os.mkfifo(standin_dir / "fifo")
    standin = fake.root / "standin_python"
    standin.write_text(STANDIN)
    standin.chmod(0o755)
    env = _env({**fake.env, "PYTHON": str(standin), "STANDIN_DIR": str(standin_dir),
                "DATASETS": "eurosat", "INITS": "diff", "SHOTS": "1", "SEEDS": "1 2",
                "GPUS": "cpu", "PYTHONUNBUFFERED": "1"})
    sweep, out, err = _signalled_sweep(fake, env, standin_dir / "pid", number)
    name = signal.Signals(number).name
    assert sweep.returncode == 128 + number, out + err  # 129 for SIGHUP, as a shell says
    assert (standin_dir / "signals").read_text() == f"{name}\n"  # forwarded to the job
    assert err.splitlines() == [
        f"error: interrupted ({name}); stopping 1 running job(s); run the sweep again: "
        "finished runs are skipped and unfinished ones resume from their last checkpoint (a "
        "second signal kills the jobs)"]
    assert len([line for line in out.splitlines() if line.startswith("[start]")]) == 1


# train.py with SIGHUP arriving while its main() runs (sent by the process to itself at the
# start of main(), so the test needs no timing); the rest of train.py is the real one.
HANGUP_DRIVER = """
import os, signal, sys
import train
real_main = train.main
def main(args):
    os.kill(os.getpid(), signal.SIGHUP)
    real_main(args)
train.main = main
sys.exit(train.run(sys.argv[1:]))
"""


def test_sighup_stops_train_py_with_one_line_and_129(tmp_path):
    out_dir = tmp_path / "seed1"
    done = subprocess.run([PY, "-c", HANGUP_DRIVER, "--output-dir", str(out_dir), "--seed", "1"],
                          cwd=REPO, capture_output=True, text=True, env=_env({}))
    assert done.returncode == 129, done.stderr
    assert done.stderr.splitlines() == [
        "error: interrupted (SIGHUP). Checkpoints are written atomically: run the same command "
        "again and it resumes from its last finished epoch."]
    assert not out_dir.exists()


# (command ({FILE}, {BINARY}, {FIFO}, {DIR} made per test), words of its one error line): odd
# values and odd files are refused up front, one line, status 2, no traceback and no hang.
ODD = {
    "vis-tokens-huge": ([PY, "tools/analyze_prompts.py", "init-stats", "--vis-tokens",
                         "100000000"], "--vis-tokens: must be at most 1024"),
    "txt-tokens-over-context": ([PY, "tools/analyze_prompts.py", "init-stats", "--txt-tokens",
                                 "74"], "--txt-tokens: must be at most 73"),
    "noise-scale-nan": ([PY, "tools/analyze_prompts.py", "init-stats", "--noise-scale", "nan"],
                        "must be a finite number of at least 0, got nan"),
    "noise-scale-inf": ([PY, "tools/analyze_prompts.py", "init-stats", "--noise-scale", "1e400"],
                        "must be a finite number of at least 0, got inf"),
    "noise-scale-over-bound": ([PY, "tools/analyze_prompts.py", "init-stats", "--noise-scale",
                                "101"], "must be at most 100"),
    "perplexity-nan": ([PY, "tools/analyze_prompts.py", "tsne", "--perplexity", "nan", "--runs",
                        "diff={DIR}"], "--perplexity: must be a finite number"),
    "clip-weights-folder": ([PY, "tools/analyze_prompts.py", "init-stats", "--clip-weights",
                             "{DIR}"], "is a folder; give the file itself"),
    "clip-weights-fifo": ([PY, "tools/analyze_prompts.py", "init-stats", "--clip-weights",
                           "{FIFO}"], "is not a regular file"),
    "parser-binary-reference": ([PY, "parse_test_res.py", "{DIR}", "--study", "--reference",
                                 "{BINARY}"], "is not UTF-8 text"),
    "parser-fifo-reference": ([PY, "parse_test_res.py", "{DIR}", "--study", "--reference",
                               "{FIFO}"], "is not a regular file"),
    "report-binary-reference": ([PY, "tools/report.py", "{DIR}", "--out", "{DIR}/report",
                                 "--reference", "{BINARY}"], "is not UTF-8 text"),
    "demo-workdir-file": ([PY, "tools/demo.py", "--workdir", "{FILE}"],
                          "is a file, not a folder"),
    "demo-shots-negative": ([PY, "tools/demo.py", "--shots", "-1"], "must be at least 1"),
    "small-clip-under-file": ([PY, "tools/small_clip.py", "{FILE}/clip.pt"],
                              "is a file, not a folder"),
}


@pytest.mark.parametrize("case", ODD)
def test_odd_values_and_files_are_one_error_line(tmp_path, case):
    command, words = ODD[case]
    (tmp_path / "a_file").write_text("x\n")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00\x01dataset,init\n")
    os.mkfifo(tmp_path / "fifo")  # a read of it blocks forever: the tools must not open it
    (tmp_path / "folder").mkdir()
    names = {"FILE": tmp_path / "a_file", "BINARY": tmp_path / "binary.csv",
             "FIFO": tmp_path / "fifo", "DIR": tmp_path / "folder"}
    command = [word.format(**names) for word in command]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120,
                          env=_env({}))
    assert done.returncode == 2, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and words in errors[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "folder" / "report").exists()


# Stands in for nvidia-smi, which the sweep asks for its GPUs while it plans (GPUS unset):
# says it started, then blocks on a FIFO no one writes. A signal then reaches the planning.
NVIDIA_SMI = """#!/bin/sh
: > "$STANDIN_DIR/asked"
read line < "$STANDIN_DIR/fifo"
"""


@pytest.mark.parametrize("number", [signal.SIGHUP, signal.SIGTERM], ids=["SIGHUP", "SIGTERM"])
def test_a_signal_while_the_sweep_plans_is_one_line_and_no_job_starts(fake, number):
    standin_dir = fake.root / "standin"
    (standin_dir / "bin").mkdir(parents=True)
    os.mkfifo(standin_dir / "fifo")
    (standin_dir / "bin" / "nvidia-smi").write_text(NVIDIA_SMI)
    (standin_dir / "bin" / "nvidia-smi").chmod(0o755)
    env = _env({**fake.env, "STANDIN_DIR": str(standin_dir), "DATASETS": "eurosat",
                "INITS": "diff", "SHOTS": "1", "SEEDS": "1",
                "PATH": f"{standin_dir / 'bin'}:{os.environ['PATH']}"})
    sweep, out, err = _signalled_sweep(fake, env, standin_dir / "asked", number)
    name = signal.Signals(number).name
    assert sweep.returncode == 128 + number, out + err
    assert err.splitlines() == [f"error: interrupted ({name}); no job was running"]
    assert out == "" and fake.calls() == []


def test_under_nohup_sighup_stays_ignored_and_the_sweep_goes_on(fake):
    standin_dir = fake.root / "standin"
    standin_dir.mkdir()
    os.mkfifo(standin_dir / "fifo")
    standin = fake.root / "standin_python"
    standin.write_text(STANDIN)
    standin.chmod(0o755)
    env = _env({**fake.env, "PYTHON": str(standin), "STANDIN_DIR": str(standin_dir),
                "DATASETS": "eurosat", "INITS": "diff", "SHOTS": "1", "SEEDS": "1",
                "GPUS": "cpu", "PYTHONUNBUFFERED": "1"})
    sweep = subprocess.Popen(["bash", str(SCRIPTS / "sweep.sh")], cwd=fake.root, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    try:
        wait_for(standin_dir / "pid", sweep)
        sweep.send_signal(signal.SIGHUP)  # ignored (nohup): dropped when sent
        with open(standin_dir / "fifo", "w") as fifo:  # lets the job end, status 0
            fifo.write("done\n")
        out, err = sweep.communicate(timeout=60)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.communicate()
    assert sweep.returncode == 0, out + err
    assert "[done] cpu: job 0: eurosat init=diff shots=1 seed=1" in out
    assert not (standin_dir / "signals").exists() and err == ""
