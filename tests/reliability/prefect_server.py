"""A real ``prefect server start`` subprocess for integration tests, and the processes around it.

``start_server(tmp, procs)`` starts the server (SQLite under ``tmp/prefect-home``, a free port,
no UI, workers that poll every second) in its own process group, waits for ``/health`` and
returns ``(api, env)``: ``env`` is the environment every process of the test (workers, CLI runs)
gets, pointed at that server and at nothing of the machine's own Prefect. ``quiet=True`` also
turns off the server services a test does not use (schedules, late runs, triggers...), for less
CPU on CI; tests of automations leave it off.

    procs = Processes(tmp_path)
    try:
        api, env = start_server(tmp_path, procs)
        procs.start("worker", [sys.executable, "-m", "prefect", "worker", "start", ...], env)
    finally:
        procs.stop_all()
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.reliability.lifeline import lifeline_command

__all__ = ["Processes", "free_port", "start_server"]

REPO = Path(__file__).resolve().parents[2]

#: Server services that fan-out and deployment tests never need.
_UNUSED_SERVICES = ("SCHEDULER", "LATE_RUNS", "PAUSE_EXPIRATIONS", "FOREMAN", "TRIGGERS",
                    "CANCELLATION_CLEANUP", "CLEANUP_RECONCILER")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    """Subprocesses started by the test, each in its own process group, stopped in reverse."""

    def __init__(self, logs: Path, *, shared: Processes | None = None) -> None:
        self.logs = logs
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.shared = shared  # the session's processes (its server), whose logs this one also reads

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(lifeline_command(args), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        if not path.exists() and self.shared is not None:
            return self.shared.log(name)
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop_all(self) -> None:
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for _name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def start_server(tmp: Path, procs: Processes, *, quiet: bool = False, startup_s: float = 120) -> tuple[str, dict[str, str]]:
    """Start the server as ``procs``' process "server"; ``(api, env)`` once it answers."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    home = tmp / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api,
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_WORKER_PREFETCH_SECONDS": "1",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "PYTHONPATH": str(REPO),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    if quiet:
        env.update({f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false" for name in _UNUSED_SERVICES})
        env["PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED"] = "[]"
    server = procs.start(
        "server", [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)], env
    )
    deadline = time.monotonic() + startup_s
    while True:
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=2):
                return api, env
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prefect server did not start:\n{procs.log('server')}") from None
            time.sleep(0.3)
