"""A warm runner: ``python SCRIPT ARGS`` without paying Python's, torch's and the toolbox's
imports again for every run (for the tests only).

A cold ``python train.py`` spends 3-4 s importing torch, torchvision, clip and Dassl before it
reads its arguments; the integration tests start it well over a hundred times. The server here
(``python -m tests.warm_runner``, started once per test process, in the repository) runs
``train.py``'s module-level imports once, then forks one child per request. The child takes
the request's argv, environment, working directory and ``sys.path[0]`` as a fresh interpreter
would, writes its stdout and stderr to the files it is given, runs the script as ``__main__``
(or ``-c CODE``), runs the exit handlers and ends with the script's exit status (or dies by its
signal). ``run`` returns what ``subprocess.run(..., capture_output=True, text=True)`` returns.

What a fork cannot reproduce is left to a cold process: a request whose environment differs
from the server's (variables such as ``OMP_NUM_THREADS`` or ``PYTHONWARNINGS`` act at start-up),
a program other than this interpreter, or a script outside the repository (a host codebase
has its own ``trainers`` package). ``DAPT_TEST_COLD=1`` sends every run through a cold process.

Protocol: one JSON line per request on the server's stdin; two JSON lines back on the
descriptor it was started with as stdout: ``{"pid": N}`` as soon as the child exists, then
``{"status": S}`` (an exit status, or -signal as subprocess reports it).
"""
from __future__ import annotations

import atexit
import json
import os
import runpy
import selectors
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import types
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COLD_VARIABLE = "DAPT_TEST_COLD"


# ----------------------------------------------------------------------------- the server


def _preload() -> None:
    """What every train.py run imports, imported once (train.py's top level minus its main
    block, then what it imports lazily: the datasets, the trainer, the toolbox's builder)."""
    runpy.run_path(str(REPO / "train.py"), run_name="warm_train")
    import datasets  # noqa: F401
    import trainers.dapt_init.trainer  # noqa: F401
    from dassl.engine import build_trainer  # noqa: F401

    # The toolbox's system report (train.py prints it into every run's log) runs ~11
    # subprocesses, 'pip list' among them: seconds per run, and the same text for every run of
    # this interpreter. It is computed here once, by the toolbox, and each child prints that.
    import dassl.utils
    import dassl.utils.tools

    report = dassl.utils.tools.collect_env_info()
    dassl.utils.collect_env_info = dassl.utils.tools.collect_env_info = lambda: report


def _exit_status(stop: SystemExit) -> int:
    """The status ``sys.exit(code)`` gives a process (a message is printed, status 1)."""
    if stop.code is None:
        return 0
    if isinstance(stop.code, int):
        return stop.code & 0xFF
    print(stop.code, file=sys.stderr)
    return 1


def _is_runner_frame(filename: str) -> bool:
    return filename in (__file__, runpy.__file__) or filename.startswith("<frozen runpy")


def _child(request: dict, protocol: list[int]) -> None:
    """Become the requested process; never returns."""
    status = 1
    try:
        for fd in protocol:
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        stdin = os.open(os.devnull, os.O_RDONLY)
        out = os.open(request["stdout"], os.O_WRONLY | os.O_TRUNC)
        err = os.open(request["stderr"], os.O_WRONLY | os.O_TRUNC)
        os.dup2(stdin, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        for fd in (stdin, out, err):
            os.close(fd)
        # Fresh entropy, as a new interpreter has (the fork copied the server's generators).
        import random

        random.seed()
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
        argv = request["argv"][1:]
        main = types.ModuleType("__main__")
        sys.modules["__main__"] = main
        if argv[0] == "-c":
            sys.argv = ["-c", *argv[2:]]
            sys.path[0] = ""
            main.__dict__["__builtins__"] = __builtins__
            exec(compile(argv[1], "<string>", "exec"), main.__dict__)
        else:
            sys.argv = list(argv)
            sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
            runpy.run_path(argv[0], run_name="__main__")
        status = 0
    except SystemExit as stop:
        status = _exit_status(stop)
    except BaseException:  # noqa: B902 - as the interpreter does: print it, status 1
        kind, error, trace = sys.exc_info()
        # The traceback starts at the script, as a fresh interpreter's does (not in runpy).
        while trace is not None and _is_runner_frame(trace.tb_frame.f_code.co_filename):
            trace = trace.tb_next
        sys.excepthook(kind, error.with_traceback(trace), trace)
        status = 1
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(status)


def serve() -> int:
    # The protocol goes through its own descriptor: whatever the imports print cannot mix in.
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    _preload()
    sys.stdout.flush()
    sys.stderr.flush()
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request, [0, answers.fileno()])
        answers.write(json.dumps({"pid": pid}) + "\n")
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        answers.write(json.dumps({"status": code}) + "\n")
    return 0


# ----------------------------------------------------------------------------- the client


class WarmRunner:
    """One server, started for one environment; ``run`` forks a process from it."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = dict(env)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.warm_runner"], cwd=REPO, env=self.env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.lock = threading.Lock()

    def can_run(self, args: list[str], env: dict[str, str]) -> bool:
        if self.process.poll() is not None or env != self.env or len(args) < 2:
            return False
        if args[0] != sys.executable:
            return False
        if args[1] == "-c":
            return len(args) >= 3
        script = Path(args[1])
        return (script.suffix == ".py" and script.is_file()
                and script.resolve().is_relative_to(REPO))

    def _answer(self, deadline: float | None) -> dict | None:
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        try:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not selector.select(left):
                return None
        finally:
            selector.close()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the warm runner's server ended")
        return json.loads(line)

    def run(self, args: list[str], cwd: str | os.PathLike, env: dict[str, str],
            timeout: float | None = None) -> subprocess.CompletedProcess:
        with self.lock, tempfile.TemporaryDirectory(prefix="warm_run_") as folder:
            out, err = os.path.join(folder, "stdout"), os.path.join(folder, "stderr")
            Path(out).touch()
            Path(err).touch()
            request = {"argv": list(map(str, args)), "cwd": str(cwd), "env": env,
                       "stdout": out, "stderr": err}
            deadline = None if timeout is None else time.monotonic() + timeout
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            pid = self._answer(None)["pid"]
            answer = self._answer(deadline)
            timed_out = answer is None
            if timed_out:
                os.kill(pid, 9)
                answer = self._answer(None)

            def read(path: str) -> str:
                # As subprocess's text mode reads a pipe: locale encoding, universal newlines.
                with open(path, newline=None) as handle:
                    return handle.read()

            stdout, stderr = read(out), read(err)
        if timed_out:
            raise subprocess.TimeoutExpired(args, timeout, output=stdout, stderr=stderr)
        return subprocess.CompletedProcess(args, answer["status"], stdout, stderr)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=30)


_RUNNERS: dict[tuple, WarmRunner] = {}


def runner_for(env: dict[str, str]) -> WarmRunner:
    """The server for ``env`` (started on first use; ended when this process exits)."""
    key = tuple(sorted(env.items()))
    runner = _RUNNERS.get(key)
    if runner is None or runner.process.poll() is not None:
        runner = _RUNNERS[key] = WarmRunner(env)
    return runner


@atexit.register
def _close_all() -> None:
    for runner in _RUNNERS.values():
        try:
            runner.close()
        except Exception:  # noqa: BLE001 - at exit, a server that will not end is killed
            runner.process.kill()


def run(args: list[str], cwd: str | os.PathLike, env: dict[str, str], timeout: float | None,
        warm_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
    timeout=timeout)``, forked from a warm server when it would behave the same. ``warm_env``
    is the environment the server is started with (runs with another go cold)."""
    if os.environ.get(COLD_VARIABLE) != "1" and warm_env is not None:
        runner = runner_for(warm_env)
        if runner.can_run(args, env):
            return runner.run(args, cwd, env, timeout)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


if __name__ == "__main__":
    sys.exit(serve())
