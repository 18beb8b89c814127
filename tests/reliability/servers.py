"""The one launcher of moto's standalone S3 API server, for the tests, the harnesses and the benchmarks.

``moto_server()`` starts ``python -m moto.server`` on 127.0.0.1 and a free port (another try
on a new port if it does not come up), logs to a temporary file (never an undrained pipe; the
log's tail is in the error when it fails), waits until it answers, and kills its whole process
group at the end. The server runs under :mod:`tests.reliability.lifeline` in a session of its
own, so it dies with the process that started it even when that one is killed, and after
``lifetime`` seconds in any case::

    with moto_server(lifetime=600) as url:          # a block
        ...
    server = moto_server()                          # or started and stopped by hand
    url = server.start()
    try:
        ...
    finally:
        server.stop()

``s3_environment(url)`` is the environment that points boto3 (and the aws cli) at it;
``s3_env(url)`` sets that in this process for a block and restores what was there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.reliability.lifeline import lifeline_command

__all__ = ["TEST_CREDENTIALS", "MotoServer", "free_port", "moto_server", "s3_env", "s3_environment"]

_REPO = Path(__file__).resolve().parents[2]

TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MotoServer:
    """One ``moto.server`` subprocess; ``start()`` returns its URL, ``stop()`` kills it (twice is fine)."""

    def __init__(self, *, lifetime: float = 1800.0, timeout: float = 60.0, env: dict[str, str] | None = None,
                 tries: int = 3) -> None:
        self.lifetime = lifetime
        self.timeout = timeout
        self.env = env
        self.tries = tries
        self.url = ""
        self._proc: subprocess.Popen | None = None
        self._log = None

    def start(self) -> str:
        last_error = ""
        for _ in range(self.tries):
            port = free_port()
            cmd = lifeline_command([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   self.lifetime)
            self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
            self._proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
                                          env={**os.environ, **(self.env or {})}, cwd=_REPO)
            self.url = f"http://127.0.0.1:{port}"
            if self._wait_ready():
                return self.url
            last_error = self._log_tail() if self._proc.poll() is not None else f"no answer in {self.timeout:g} s"
            self.stop()
        raise RuntimeError(f"moto_server did not start: {last_error}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline and self._proc is not None and self._proc.poll() is None:
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=2).close()
                return True
            except OSError:
                time.sleep(0.1)
        return False

    def _log_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-500:]

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            # the lifeline stops the server's own group on SIGTERM; SIGKILL the rest after that
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log, self._log = self._log, None
        if log is not None:
            log.close()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def moto_server(lifetime: float = 1800.0, *, timeout: float = 60.0, env: dict[str, str] | None = None) -> MotoServer:
    """A moto S3 API server on a free 127.0.0.1 port: ``with moto_server() as url`` (see the module)."""
    return MotoServer(lifetime=lifetime, timeout=timeout, env=env)


def s3_environment(url: str, tmp: Path | None = None) -> dict[str, str]:
    """Environment variables that point boto3 (and the aws cli) at the S3 API server at ``url``.

    Test credentials, no instance metadata lookups and, with ``tmp``, no shared config or
    credentials files (they are looked for in ``tmp``, where there are none).
    """
    env = {**TEST_CREDENTIALS, "AWS_ENDPOINT_URL": url, "AWS_EC2_METADATA_DISABLED": "true"}
    if tmp is not None:
        env.update(AWS_CONFIG_FILE=str(tmp / "no-aws-config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp / "no-aws-credentials"))
    return env


@contextlib.contextmanager
def s3_env(url: str, tmp: Path | None = None) -> Iterator[dict[str, str]]:
    """Point this process's kerascut_core at the S3 API server at ``url``; restore afterwards.

    Yields the environment (``s3_environment(url, tmp)``) for child processes.
    """
    from kerascut_core.aws import client as _s3

    env = s3_environment(url, tmp)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    _s3.clear_clients()
    try:
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _s3.clear_clients()
