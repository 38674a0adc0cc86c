"""A warm runner: ``python SCRIPT ARGS`` without paying Python's, torch's and the toolbox's
imports again for every run (for the tests only).

A cold ``python train.py`` spends 3-4 s importing torch, torchvision, clip and Dassl before it
reads its arguments; the integration tests start it well over a hundred times. The server here
(``python -m tests.support.warm_runner``, started once per test process, in the repository) runs
``train.py``'s module-level imports once, then forks one child per request. The child takes
the request's argv, environment, working directory and ``sys.path[0]`` as a fresh interpreter
would, writes its stdout and stderr to the files it is given, runs the script as ``__main__``
(or ``-c CODE``), runs the exit handlers and ends with the script's exit status (or dies by its
signal). ``run`` returns what ``subprocess.run(..., capture_output=True, text=True)`` returns.

What a fork cannot reproduce is left to a cold process: a request whose environment differs
from the server's (variables such as ``OMP_NUM_THREADS`` or ``PYTHONWARNINGS`` act at start-up;
``CUDA_VISIBLE_DEVICES`` or ``KMP_*`` only once the library that reads them is loaded, which
the CUDA driver never is in a CPU server),
a program other than this interpreter, or a script outside the repository (a host codebase
has its own ``trainers`` package). ``DAPT_TEST_COLD=1`` sends every run through a cold process.

Protocol (tests/support/warm_python.py is the client side): a connection to the server's Unix socket
sends one JSON line (argv, cwd, env, fds) with the run's stdin, stdout and stderr descriptors
attached, then any other descriptor it inherits (fds: the numbers each gets in the run); the server forks a handler that answers ``{"cold": true}`` (run it yourself) or
forks the run and answers ``{"pid": N}``, then ``{"status": S}`` when it ends (an exit status,
or -signal as subprocess reports it). The server ends when its stdin closes.
"""
from __future__ import annotations

import atexit
import fcntl
import json
import os
import runpy
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import types
from pathlib import Path

from tests.support.warm_python import send_request

REPO = Path(__file__).resolve().parents[2]
COLD_VARIABLE = "DAPT_TEST_COLD"


# ----------------------------------------------------------------------------- the server


def _preload() -> None:
    """What every train.py run imports, imported once (train.py's top level minus its main
    block, then what it imports lazily: the datasets, the trainer, the toolbox's builder)."""
    runpy.run_path(str(REPO / "train.py"), run_name="warm_train")
    import datasets.classes  # noqa: F401
    import trainers.dapt_init.trainer  # noqa: F401
    from dassl.engine import build_trainer  # noqa: F401

    from tests.support.host_driver import compute_system_report_once

    compute_system_report_once()


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


def _place_fds(fds: list[int], targets: list[int]) -> None:
    """Leave open exactly ``targets``, ``fds[i]`` under the number ``targets[i]``: the
    descriptors a fresh process has (the standard three and any it inherited, such as a
    run folder's lock passed down by a script), nothing of the server's."""
    open_now = [int(name) for name in os.listdir("/proc/self/fd")]
    above = max(open_now + list(targets)) + 1
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, above) for fd in fds]
    for fd in range(above):  # the received copies, the server's own, the listing's (gone)
        if fd not in targets:
            try:
                os.close(fd)
            except OSError:
                pass
    for fd, target in zip(moved, targets):
        os.dup2(fd, target)
        os.close(fd)


def _child(request: dict, fds: list[int], closing: list) -> None:
    """Become the requested process (``fds``: its stdin, stdout, stderr); never returns."""
    status = 1
    try:
        for thing in closing:
            thing.close()
        # A group of its own: a run that signals its process group (os.killpg) must not reach
        # the test process the server shares a group with. (Signals sent to a PYTHON= wrapper,
        # or to the wrapper's group, are passed on to the run by the wrapper.)
        os.setpgrp()
        _place_fds(fds, request.get("fds", [0, 1, 2]))
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        for name, value in _ADDED_ENV.items():
            os.environ.setdefault(name, value)
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


# Variables that act when an interpreter (or torch, or the toolbox) starts, before any run
# reads its arguments: a run whose values differ is not this server's to fork.
# (PYTHON alone is the scripts' choice of interpreter, read by bash, not by Python.)
START_UP_PREFIXES = ("PYTHON", "OMP_", "MKL_", "KMP_", "OPENBLAS", "CUDA", "TORCH", "LD_",
                     "OUTDATED", "NUMEXPR", "GOMP", "PYTORCH", "LC_", "LANG", "DAPT_TEST_COLD")


# Start-up variables that a native library reads when it loads (or first initialises), not
# when the interpreter starts: while the server has not loaded that library it has not read
# them, and a child with other values reads its own when it loads it, as a fresh process does.
# The CUDA driver (torch loads it lazily): the GPU a sweep gives each job. Intel's or LLVM's
# OpenMP (torch here uses GNU's libgomp): KMP_ variables, which scikit-learn sets on import.
LIBRARY_VARIABLES = (
    (("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER"), ("libcuda.so",)),
    (("KMP_",), ("libiomp", "libomp.")),
)


def loaded_libraries() -> set[str]:
    """The file names of the shared libraries this process has loaded ('libcuda.so.1' once
    the CUDA driver is; torch's CUDA initialised counts as that)."""
    with open("/proc/self/maps") as maps:
        names = {os.path.basename(line.split()[-1]) for line in maps if "/" in line}
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        names.add("libcuda.so")
    return names


def unread_variables(libraries: set[str]) -> tuple[str, ...]:
    """Names (or prefixes) of start-up variables whose reader is not among ``libraries``."""
    return tuple(name for names, readers in LIBRARY_VARIABLES
                 if not any(library.startswith(readers) for library in libraries)
                 for name in names)


def start_up_variables(env: dict[str, str], unread: tuple[str, ...] = ()) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(START_UP_PREFIXES) and k != "PYTHON"
            and not k.startswith(unread)}


def can_fork(argv: list[str], env: dict[str, str], server_env: dict[str, str],
             libraries: set[str] | None = None, added: dict[str, str] | None = None) -> bool:
    """Whether a fork of the server runs ``argv`` as a fresh interpreter would (``libraries``:
    those the server has loaded; None: this process's, which is the server or a fork of it;
    ``added``: what the server's imports set in its environment. A request that holds one of
    those with the same value is as the server: a fresh process's imports would set it so, and
    a caller's imports may have set it after the server started, e.g. TORCHINDUCTOR_CACHE_DIR)."""
    server_env = {**server_env, **{k: v for k, v in (added or {}).items() if env.get(k) == v}}
    unread = unread_variables(loaded_libraries() if libraries is None else libraries)
    if len(argv) < 2 or start_up_variables(env, unread) != start_up_variables(server_env, unread):
        return False
    if argv[1] == "-c":
        return len(argv) >= 3
    script = Path(argv[1])
    return (script.suffix == ".py" and script.is_file()
            and script.resolve().is_relative_to(REPO))


MAX_FDS = 253  # the most descriptors one message carries (Linux's SCM_MAX_FD)

# The server's environment when it started, and what its imports added to it (torch sets
# variables such as CUDA_MODULE_LOADING when it is imported; a fresh run's imports would too).
_START_ENV: dict[str, str] = {}
_ADDED_ENV: dict[str, str] = {}


def _handle(connection: socket.socket, listener: socket.socket) -> None:
    """One request, in a forked handler: fork the run, report its pid, then its status."""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # this handler waits for its run
        listener.close()
        message, fds, _, _ = socket.recv_fds(connection, 1 << 20, MAX_FDS)
        while not message.endswith(b"\n"):
            more = connection.recv(1 << 20)
            if not more:
                return
            message += more
        request = json.loads(message)
        targets = request.get("fds", [0, 1, 2])
        if (len(fds) != len(targets) or targets[:3] != [0, 1, 2]
                or not can_fork(request["argv"], request["env"], _START_ENV, added=_ADDED_ENV)):
            connection.sendall(b'{"cold": true}\n')
            return
        pid = os.fork()
        if pid == 0:
            _child(request, list(fds), [connection])
        for fd in fds:
            os.close(fd)
        connection.sendall((json.dumps({"pid": pid}) + "\n").encode())
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        connection.sendall((json.dumps({"status": code}) + "\n").encode())
    finally:
        os._exit(0)


def _reap(*_) -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def serve(path: str) -> int:
    # Whatever the imports print goes to stderr; stdout only says "ready".
    ready = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    _START_ENV.update(os.environ)
    _preload()
    _ADDED_ENV.update({k: v for k, v in os.environ.items() if k not in _START_ENV})
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    # Handlers are reaped as they end, by waiting for them (not SIG_IGN, whose reaping drops
    # their CPU time: the test process's own accounting, /usr/bin/time included, would not
    # count the runs forked here once the server is waited for).
    signal.signal(signal.SIGCHLD, _reap)
    sys.stdout.flush()
    sys.stderr.flush()
    ready.write("ready\n")
    ready.close()
    events = selectors.DefaultSelector()
    events.register(listener, selectors.EVENT_READ)
    events.register(sys.stdin, selectors.EVENT_READ)  # end of file: the tests have ended
    while True:
        for key, _ in events.select():
            if key.fileobj is sys.stdin:
                if not sys.stdin.buffer.read1(1024):
                    listener.close()
                    os.unlink(path)
                    _reap()
                    return 0
                continue
            connection, _ = listener.accept()
            if os.fork() == 0:
                events.close()
                _handle(connection, listener)
            connection.close()


# ----------------------------------------------------------------------------- the client


class WarmRunner:
    """One server (started with ``env``, listening in a folder of its own); ``run`` forks a
    process from it, ``python_wrapper`` is an interpreter for scripts (``PYTHON=...``)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = dict(env)
        self.folder = tempfile.mkdtemp(prefix="warm_")
        self.socket = os.path.join(self.folder, "socket")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.warm_runner", self.socket], cwd=REPO, env=self.env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if self.process.stdout.readline() != b"ready\n":
            raise RuntimeError("the warm runner's server did not start")
        self.python_wrapper = os.path.join(self.folder, "python")
        with open(self.python_wrapper, "w") as wrapper:
            wrapper.write(f'#!/bin/sh\nexec "{sys.executable}" -I -S '
                          f'"{REPO / "tests" / "support" / "warm_python.py"}" "{self.socket}" "$@"\n')
        os.chmod(self.python_wrapper, 0o755)

    def run(self, args: list[str], cwd: str | os.PathLike, env: dict[str, str],
            timeout: float | None = None) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory(prefix="warm_run_") as folder:
            paths = [os.devnull, os.path.join(folder, "stdout"), os.path.join(folder, "stderr")]
            fds = [os.open(paths[0], os.O_RDONLY)] + [
                os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC) for path in paths[1:]]
            try:
                connection, reader, first = send_request(
                    self.socket, list(map(str, args)), str(cwd), env, fds)
            finally:
                for fd in fds:
                    os.close(fd)
            with connection:
                if first.get("cold"):
                    return subprocess.run(args, cwd=cwd, env=env, capture_output=True,
                                          text=True, timeout=timeout)
                connection.settimeout(timeout)
                timed_out = False
                try:
                    line = reader.readline()
                except (socket.timeout, TimeoutError):
                    timed_out = True
                    os.kill(first["pid"], 9)
                    connection.settimeout(None)
                    # A file object that timed out reads no more; nothing was buffered in it.
                    line = connection.makefile("rb").readline()
                status = json.loads(line)["status"]

            def read(path: str) -> str:
                # As subprocess's text mode reads a pipe: locale encoding, universal newlines.
                with open(path, newline=None) as handle:
                    return handle.read()

            stdout, stderr = read(paths[1]), read(paths[2])
        if timed_out:
            raise subprocess.TimeoutExpired(args, timeout, output=stdout, stderr=stderr)
        return subprocess.CompletedProcess(args, status, stdout, stderr)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)


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
    timeout=timeout)``, forked from a warm server (started with ``warm_env``) when it would
    behave the same; ``warm_env=None`` or DAPT_TEST_COLD=1: always cold."""
    if (os.environ.get(COLD_VARIABLE) != "1" and warm_env is not None and args
            and str(args[0]) == sys.executable):
        return runner_for(warm_env).run(args, cwd, env, timeout)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1]))
