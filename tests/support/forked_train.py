"""Many train.py runs from one interpreter: the imports once, a forked child per run (tests only).

A cold ``python train.py`` spends most of its time importing (torch, the toolbox, sklearn,
scipy: ~20 s of a ~25 s tiny run on a loaded 2-core machine) and in the toolbox's
``collect_env_info`` (a dozen subprocesses). ``TrainServer`` starts this file once as a
driver: it imports what ``train.py`` imports lazily, computes the system info once, then forks
one child per request that runs ``train.run(ARGS)`` with its stdout and stderr in files:
what ``python train.py ARGS`` does after its imports. A child's exit status is the run's; a
request may end its child with ``os._exit(9)`` after an epoch's checkpoint (no clean-up, as
``kill -9``) or give the GradScaler another initial scale (the product code is untouched).
The driver forks before any tensor work, so no child inherits a thread pool.

    protocol: one JSON request a line on the driver's stdin, one JSON answer a line back
    {"id": N, "argv": [...], "stdout": FILE, "stderr": FILE,
     "kill_after_epoch": N or null, "scale_power": N or null}  ->  {"id": N, "status": S}
"""
from __future__ import annotations

import itertools
import json
import os
import select
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------ driver
def _scale(power: int) -> None:
    import torch

    class Scaler(torch.amp.GradScaler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "init_scale": 2.0 ** power})

    torch.amp.GradScaler = Scaler


def _child(request: dict) -> None:
    """Runs in the forked child; never returns."""
    code = 1
    try:
        for fd, name in ((1, "stdout"), (2, "stderr")):
            out = os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(out, fd)
            os.close(out)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        if request.get("kill_after_epoch"):
            from tests.support.host_driver import kill_after

            kill_after(request["kill_after_epoch"])
        if request.get("scale_power") is not None:
            _scale(request["scale_power"])
        import train

        sys.argv = ["train.py", *request["argv"]]
        code = train.run(request["argv"])
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:  # noqa: B902  (a crash is the run's traceback and status 1)
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> int:
    answers = os.fdopen(os.dup(1), "w")  # the protocol's; fd 1 goes to stderr for strays
    os.dup2(2, 1)
    warnings.simplefilter("ignore")
    sys.path.insert(0, str(REPO))
    import datasets.classes  # noqa: F401  what train.main imports lazily, once
    import train  # noqa: F401
    import trainers.dapt_init.trainer  # noqa: F401
    from dassl.engine import build_trainer  # noqa: F401
    from tests.support.host_driver import compute_system_report_once

    compute_system_report_once()
    children: dict[int, int] = {}  # pid -> request id
    pending, reading = b"", True
    while reading or children:
        # Raw reads: a buffered readline could hold a second request select() cannot see.
        ready, _, _ = select.select([0] if reading else [], [], [], 0.05)
        if ready:
            chunk = os.read(0, 1 << 16)
            reading = bool(chunk)
            pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            request = json.loads(line)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _child(request)
            children[pid] = request["id"]
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            answers.write(json.dumps({"id": children.pop(pid), "status": code}) + "\n")
            answers.flush()
    answers.close()
    os._exit(0)  # nothing to clean up: skips seconds of torch's interpreter teardown


# ------------------------------------------------------------------------------ client
@dataclass
class Run:
    """A finished run, as ``subprocess.run(..., capture_output=True, text=True)`` has it."""
    returncode: int
    stdout: str
    stderr: str


class TrainServer:
    """The driver process; ``start`` runs train.py ``ARGS`` (the argv after ``train.py``) in a
    forked child at once, ``wait`` returns its result. Several may run at a time."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONWARNINGS": "ignore"}
        with open(folder / "driver.err", "w") as errors:
            self.process = subprocess.Popen(
                [sys.executable, __file__], cwd=REPO, env=env, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=errors, text=True, bufsize=1)
        self.answers = self.process.stdout.fileno()  # read raw: select() sees every byte
        self.pending = b""
        self.ids = itertools.count()
        self.statuses: dict[int, int] = {}

    def start(self, command: list[str], kill_after_epoch: int | None = None,
              scale_power: int | None = None) -> int:
        """``command`` as the tests build it: [python, train.py, ARGS...]."""
        assert Path(command[1]).name == "train.py", command[:2]
        number = next(self.ids)
        request = {"id": number, "argv": command[2:],
                   "stdout": str(self.folder / f"{number}.out"),
                   "stderr": str(self.folder / f"{number}.err"),
                   "kill_after_epoch": kill_after_epoch, "scale_power": scale_power}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return number

    def wait(self, number: int, timeout: float = 600) -> Run:
        """The run's result; the driver is ended and an error raised if no answer comes in
        ``timeout`` seconds (a hung run fails its test instead of hanging the suite)."""
        deadline = time.monotonic() + timeout
        while number not in self.statuses:
            if b"\n" not in self.pending:
                left = deadline - time.monotonic()
                ready, _, _ = select.select([self.answers], [], [], max(left, 0))
                if not ready:
                    self.process.kill()
                    raise TimeoutError(f"no answer for run {number} in {timeout} s: "
                                       + self.log(number))
                chunk = os.read(self.answers, 1 << 16)
                if not chunk:
                    raise RuntimeError("the train driver ended: " + self.log(number))
                self.pending += chunk
                continue
            line, self.pending = self.pending.split(b"\n", 1)
            answer = json.loads(line)
            self.statuses[answer["id"]] = answer["status"]
        return Run(self.statuses[number], (self.folder / f"{number}.out").read_text(),
                   (self.folder / f"{number}.err").read_text())

    def log(self, number: int) -> str:
        """The tails of the driver's stderr and of the run's."""
        tails = [path.read_text()[-3000:] for path in
                 (self.folder / "driver.err", self.folder / f"{number}.err") if path.exists()]
        return "\n".join(tails)

    def run(self, command: list[str], **options) -> Run:
        return self.wait(self.start(command, **options))

    def run_all(self, jobs: list[tuple[list[str], dict]], at_once: int = 2) -> list[Run]:
        """Each (command, options) run, at most ``at_once`` at a time (the CI has 2 cores)."""
        numbers, results = [], {}
        for command, options in jobs:
            if len(numbers) - len(results) >= at_once:
                oldest = next(n for n in numbers if n not in results)
                results[oldest] = self.wait(oldest)
            numbers.append(self.start(command, **options))
        return [results[n] if n in results else self.wait(n) for n in numbers]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=600)
        self.process.stdout.close()


if __name__ == "__main__":
    sys.exit(serve())
