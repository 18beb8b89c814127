"""Servers started for tests die with the process that started them, even when it is SIGKILLed.

An interrupted run must not leave moto or Prefect servers behind (tests/reliability/lifeline.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]

STARTER = """
import sys, time
from tests.reliability.servers import moto_server
url = moto_server().start()
print(url, flush=True)
time.sleep(120)
"""


def test_a_killed_test_process_takes_its_moto_server_with_it():
    starter = subprocess.Popen([sys.executable, "-c", STARTER], cwd=REPO, stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        url = starter.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        port = url.rsplit(":", 1)[1]
        servers = [p for p in psutil.process_iter(["cmdline"])
                   if "moto.server" in (p.info["cmdline"] or []) and port in (p.info["cmdline"] or [])]
        assert servers, "the server is running"
        os.kill(starter.pid, signal.SIGKILL)
        starter.wait(10)
        _gone, alive = psutil.wait_procs(servers, timeout=10)
        assert alive == [], f"still running after its starter was killed: {[p.pid for p in alive]}"
    finally:
        if starter.poll() is None:
            starter.kill()


def test_the_lifeline_ends_a_server_that_outlives_its_lifetime():
    from tests.reliability.lifeline import lifeline_command

    started = time.monotonic()
    out = subprocess.run(lifeline_command([sys.executable, "-c", "import time; time.sleep(60)"], lifetime=1),
                         cwd=REPO, timeout=30)
    assert out.returncode == 0 and time.monotonic() - started < 15
