"""Subprocess servers the harnesses need, each with a bounded lifetime and a guaranteed stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

__all__ = ["TEST_CREDENTIALS", "free_port", "moto_server", "s3_env"]

TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def moto_server(lifetime: float = 1800.0) -> Iterator[str]:
    """Start moto's standalone S3 API server on a free 127.0.0.1 port; yield its URL.

    The server is killed at the end of the block, and by ``timeout`` after ``lifetime`` seconds
    even if this process dies without cleaning up.
    """
    port = free_port()
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    if os.path.exists("/usr/bin/timeout"):
        cmd = ["/usr/bin/timeout", "-s", "KILL", str(int(lifetime)), *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start on {url}") from None
                time.sleep(0.1)
        yield url
    finally:
        # the server runs under `timeout` in its own session: kill the whole group, or the
        # server outlives a killed `timeout` (which cannot forward SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextlib.contextmanager
def s3_env(url: str) -> Iterator[dict[str, str]]:
    """Point this process's kerascut_core at the S3 API server at ``url``; restore afterwards.

    Yields the environment (test credentials and ``AWS_ENDPOINT_URL``) for child processes.
    """
    from kerascut_core.stores import _s3_client as _s3

    env = {**TEST_CREDENTIALS, "AWS_ENDPOINT_URL": url}
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
