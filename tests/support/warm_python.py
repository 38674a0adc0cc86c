"""``python ARGS`` through the warm runner, for scripts that take an interpreter (PYTHON=...).

    python -I -S tests/support/warm_python.py SOCKET ARGS...

Sends ARGS, this process's working directory, environment and standard streams to the warm
runner's server at SOCKET (tests/support/warm_runner.py), which forks the run from its imported state;
signals this process gets are passed on to the run, and this process ends as the run ended (its
exit status, or killed by the same signal). Descriptors this process inherited beyond the
standard three (a lock a script passes down to train.py) are passed to the run under the same
numbers. Where the server would not run it the same way (or is gone) it becomes ``python ARGS`` itself (exec). Standard library only, so that it starts in
milliseconds; ``send_request`` is the protocol's client side, also used by warm_runner.py.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
             signal.SIGUSR2)


def inherited_fds() -> list[int]:
    """This process's inheritable descriptors above 2: what a program it exec'd would have."""
    numbers = sorted(int(name) for name in os.listdir("/proc/self/fd"))
    found = []
    for fd in numbers:
        try:
            if fd > 2 and os.get_inheritable(fd):
                found.append(fd)
        except OSError:  # the listing's own descriptor, closed by now
            pass
    return found


def send_request(path: str, argv: list[str], cwd: str, env: dict[str, str],
                 fds: list[int], extra: list[int] = ()) -> tuple[socket.socket, object, dict]:
    """Ask the server at ``path`` to run ``argv`` with ``fds`` as its stdin, stdout, stderr
    and each descriptor of ``extra`` under its own number. Returns the connection, a reader of
    its answer lines and the first answer: ``{"pid": N}`` (then ``{"status": S}`` follows
    when the run ends) or ``{"cold": true}``."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.connect(path)
    message = (json.dumps({"argv": argv, "cwd": cwd, "env": env, "fds": [0, 1, 2, *extra]})
               + "\n").encode()
    sent = socket.send_fds(connection, [message], [*fds, *extra])
    connection.sendall(message[sent:])
    reader = connection.makefile("rb")
    line = reader.readline()
    if not line:
        raise ConnectionError("the warm runner's server closed the connection")
    return connection, reader, json.loads(line)


def main() -> int:
    path, argv = sys.argv[1], [sys.executable, *sys.argv[2:]]
    try:
        _, reader, first = send_request(path, argv, os.getcwd(), dict(os.environ), [0, 1, 2],
                                        inherited_fds())
    except OSError:
        first = {"cold": True}
    if first.get("cold"):
        os.execv(sys.executable, argv)
    pid = first["pid"]
    for number in FORWARDED:
        signal.signal(number, lambda received, _: os.kill(pid, received))
    line = reader.readline()
    status = json.loads(line)["status"] if line else 1
    if status < 0:  # killed: end by the same signal, as the run's own process would
        if -status != signal.SIGKILL:  # (SIGKILL has no handler to reset)
            signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
    return status


if __name__ == "__main__":
    sys.exit(main())
