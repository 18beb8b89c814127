"""A real Prefect server with process workers on ``kerascut-cpu``, for fan-out tests and benchmarks.

``prefect_world(tmp)`` starts ``prefect server start`` (SQLite, a free port, no UI) as a
subprocess, creates the work pool and, where asked, the prepare concurrency limit, and yields a
:class:`World`: ``world.start_worker(name, env=...)`` starts ``prefect worker start --pool
kerascut-cpu --type process`` subprocesses, ``world.client()`` is a sync client on the server,
``world.settings()`` points this process's Prefect at it. Every process is stopped at the end
(each in its own process group).

    with prefect_world(tmp_path, gcl_slots=2) as world:
        world.deploy(config)                          # kerascut's three deployments
        world.start_worker("w1"); world.start_worker("w2")
        with world.settings():
            refresh_backbones(config)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kerascut_core.pipeline_names import CPU_POOL, GPU_POOL, PREPARE_DEPLOYMENT, prepare_limit_name
from tests.reliability.prefect_server import Processes, start_server

__all__ = ["World", "prefect_world", "worker_of_runs"]

REPO = Path(__file__).resolve().parents[2]


@dataclass
class World:
    api: str
    env: dict[str, str]
    procs: Processes
    tmp: Path

    def prefect(self, *args: str) -> subprocess.CompletedProcess[str]:
        out = subprocess.run([sys.executable, "-m", "prefect", *args], cwd=REPO, env=self.env,
                             capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"prefect {' '.join(args)} exited {out.returncode}: {out.stdout}{out.stderr}"[-3000:])
        return out

    def start_worker(self, name: str, *, env: dict[str, str] | None = None, limit: int | None = 1) -> subprocess.Popen:
        """A process worker on the CPU pool; ``limit``: flow runs it runs at once (None: any)."""
        args = [sys.executable, "-m", "prefect", "worker", "start", "--pool", CPU_POOL, "--type", "process",
                "--name", name]
        if limit is not None:
            args += ["--limit", str(limit)]
        return self.procs.start(name, args, {**self.env, **(env or {})})

    def stop_worker(self, name: str, timeout: float = 30) -> None:
        """Stop the worker ``name`` (SIGTERM to its process group, then SIGKILL)."""
        for started, proc in self.procs.procs:
            if started == name and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)

    @contextlib.contextmanager
    def settings(self) -> Iterator[None]:
        """This process's Prefect pointed at the server, for flows run here. Prefect's events and
        logs workers are process-wide and keep the API they first sent to (an earlier test's), so
        they are drained, and so made anew, on the way in and on the way out."""
        from prefect.settings import PREFECT_API_URL, temporary_settings

        _drain_prefect_services()
        with temporary_settings({PREFECT_API_URL: self.api}):
            try:
                yield
            finally:
                _drain_prefect_services()

    @contextlib.contextmanager
    def client(self) -> Iterator[Any]:
        from prefect.client.orchestration import get_client
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: self.api}), get_client(sync_client=True) as client:
            yield client

    def deploy(self, config: dict[str, Any]) -> None:
        """kerascut's deployments for ``config``, registered in this process (``deploy_config``)."""
        from kerascut.flows.deployments import deploy_config
        from kerascut_core.config import parse_config

        with self.settings():
            deploy_config(parse_config(config))

    def logs(self) -> str:
        return "\n".join(f"--- {name}:\n{self.procs.log(name)}" for name, _ in self.procs.procs)


@contextlib.contextmanager
def prefect_world(tmp: Path, *, gcl_slots: int | None = None, startup_s: float = 120) -> Iterator[World]:
    """The server, both pools and (with ``gcl_slots``) the prepare limit; see the module doc."""
    procs = Processes(tmp)
    try:
        api, env = start_server(tmp, procs, quiet=True, startup_s=startup_s)
        world = World(api, env, procs, tmp)
        from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, WorkPoolCreate

        with world.client() as client:
            for pool in (CPU_POOL, GPU_POOL):
                client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
            if gcl_slots is not None:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=prepare_limit_name(PREPARE_DEPLOYMENT), limit=gcl_slots)
                )
        yield world
    finally:
        _drain_prefect_services()
        procs.stop_all()


def _drain_prefect_services() -> None:
    """Send this process's pending Prefect logs and events while the server still runs (else the
    process retries them at exit, against a stopped server, for a minute)."""
    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for service in (APILogWorker, EventsWorker):
        with contextlib.suppress(Exception):
            service.drain_all(timeout=10, at_exit=False)


def worker_of_runs(client: Any, flow_run_ids: list[Any]) -> dict[str, str | None]:
    """``{flow_run_id: worker name}``, from the labels a worker gives each run it takes
    (``prefect.worker.name``), read back from the API."""
    return {str(i): client.read_flow_run(i).labels.get("prefect.worker.name") for i in flow_run_ids}
