"""Run a command that dies with the process that started it, even when that one is SIGKILLed.

A test server (moto, ``prefect server start``, a worker) must not outlive an interrupted test
run. ``lifeline_command(cmd)`` wraps ``cmd`` as::

    python -m tests.reliability.lifeline <parent pid> <lifetime s> -- cmd ...

The wrapper starts ``cmd`` in a process group of its own, asks the kernel to send itself
SIGTERM when its parent dies (``PR_SET_PDEATHSIG``), also checks every half second that the
parent is still there, and then kills the command's whole group (servers start children of
their own: uvicorn, workers' flow runs). ``lifetime`` bounds it all the same.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time

__all__ = ["lifeline_command"]

_PR_SET_PDEATHSIG = 1


def lifeline_command(cmd: list[str], lifetime: float = 6 * 3600.0) -> list[str]:
    """``cmd`` wrapped so that it dies with this process (see the module)."""
    return [sys.executable, "-m", "tests.reliability.lifeline", str(os.getpid()), str(int(lifetime)), "--", *cmd]


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def main(argv: list[str]) -> int:
    parent, lifetime, cmd = int(argv[0]), float(argv[1]), argv[3:]
    _die_with_parent()
    child = subprocess.Popen(cmd, start_new_session=True)

    def stop(signum: int = signal.SIGTERM, *_: object) -> None:
        with contextlib.suppress(ProcessLookupError):  # the signal we got goes on (SIGINT stays SIGINT)
            os.killpg(child.pid, signum)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if os.getppid() != parent:  # the parent died before the death signal was armed
        stop()
    deadline = time.monotonic() + lifetime
    while child.poll() is None:
        if os.getppid() != parent or time.monotonic() > deadline:
            stop()
        time.sleep(0.5)
    return child.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
