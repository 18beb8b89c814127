"""Integration: kerascut's events on a real Prefect server start a downstream deployment.

A ``prefect server start`` subprocess (the fixture of tests/flows/test_integration_prefect.py);
``deployments/downstream_example.py`` serves ``train-on-backbone/mnv2`` from its own process,
with the trigger of ``deployments/downstream.yaml`` (Prefect creates the automation). A publish
in another process, pointed at the server by ``PREFECT_API_URL``, emits
``kerascut.backbone.published``; the test reads back from the API the flow run the automation
created, with the published manifest URI as its parameter, and waits for the served process to
finish it. ``kerascut promote --alias prod`` then emits ``kerascut.backbone.promoted``, read back
with ``read_events``, and so is a ``kerascut.backbone.failed`` sent from inside a flow run
(through Prefect's events worker, related to the run). With ``PREFECT_API_URL`` on a port where
nothing listens, ``kerascut promote`` succeeds with one warning line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.flows.test_integration_prefect import _client
from tests.reliability.prefect_server import Processes, free_port

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

pytestmark = pytest.mark.integration

# A process of its own, as a team's publishing job would be: the core's commit, then latest.
PUBLISH = """
import sys
from pathlib import Path
from kerascut_core import open_store
from kerascut_core.publishing import update_latest
from tests.publishing.test_publish import publish
root = Path(sys.argv[1])
store = open_store(root / "store")
publish(store, root, version="v1", payload=b"backbone-v1")
update_latest(store, "mnv2", "v1")
print(store.uri("mnv2/v1/manifest.json"))
"""

# A flow run that reports a failure, as prepare-backbone does.
IN_A_RUN = """
import sys
from prefect import flow
from kerascut_core import events

@flow(name="report-a-failure", persist_result=False)
def report() -> None:
    assert events.backbone_failed(sys.argv[1], "mnv2", version="v2", reason="CandidateRejected: NaN in the outputs")

report()
"""


def _wait(what: str, probe: Callable[[], T | None], timeout: float, logs: Callable[[], str] = str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:g} s\n{logs()}")
        time.sleep(0.5)


def _run(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    return out, time.monotonic() - start


def _events(client: Any, name: str, backbone: str = "mnv2") -> list[Any]:
    """Events ``name`` of ``backbone`` (the session's server is shared: each test its backbone)."""
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    page = client.read_events(filter=EventFilter(event=EventNameFilter(name=[name]),
                                                 resource=EventResourceFilter(id=[f"kerascut.backbone.{backbone}"])), limit=50)
    return list(page.events)


def test_published_starts_the_downstream_deployment_and_promote_emits(
    prefect_server: tuple[str, dict[str, str], Processes], tmp_path: Path
) -> None:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.exceptions import ObjectNotFound

    api, env, procs = prefect_server
    serving = procs.start("downstream", [sys.executable, "deployments/downstream_example.py"], env)
    logs = lambda: procs.log("downstream") + "\n--- server:\n" + procs.log("server")  # noqa: E731
    settings, client = _client(api)
    try:
        def deployment() -> Any:
            try:
                return client.read_deployment_by_name("train-on-backbone/mnv2")
            except ObjectNotFound:
                return None

        served = _wait("serving train-on-backbone/mnv2", deployment, 90, logs)
        (automation,) = _wait("its automation", lambda: client.read_resource_related_automations(
            f"prefect.deployment.{served.id}"), 30, logs)
        assert automation.trigger.expect == {"kerascut.backbone.published"}

        out, _ = _run([sys.executable, "-c", PUBLISH, str(tmp_path)], env)
        assert out.returncode == 0 and "warning" not in out.stderr.lower(), out.stderr
        manifest_uri = out.stdout.strip().splitlines()[-1]
        assert manifest_uri == str(tmp_path / "store" / "mnv2" / "v1" / "manifest.json")

        runs = _wait("a flow run of the downstream deployment", lambda: client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[served.id]))), 60, logs)
        assert [r.parameters for r in runs] == [{"manifest_uri": manifest_uri}]
        done = _wait("the served run to finish", lambda: (r := client.read_flow_run(runs[0].id)).state
                     and r.state.is_final() and r, 120, logs)
        assert done.state.is_completed(), f"{done.state}\n{logs()}"

        (published,) = _wait("the published event in the API", lambda: _events(client, "kerascut.backbone.published"), 30)
        assert published.resource.id == "kerascut.backbone.mnv2" and published.resource["kerascut.version"] == "v1"
        store_uri = str(tmp_path / "store")
        assert [(r.id, r.role) for r in published.related] == [(f"kerascut.store.{store_uri}", "store")]
        assert published.payload["store"] == store_uri and published.payload["manifest_uri"] == manifest_uri
        assert len(published.payload["model_sha256"]) == 64

        out, took = _run([sys.executable, "-m", "kerascut_core", "promote", f"{store_uri}/mnv2", "v1",
                          "--alias", "prod", "--reason", "passed A/B"], env)
        assert out.returncode == 0 and out.stderr == "", out.stderr
        print(f"kerascut promote with a Prefect API: {took:.2f} s")  # shown with -s
        moves = _wait("the promoted event of prod", lambda: [
            e for e in _events(client, "kerascut.backbone.promoted") if e.payload.get("alias") == "prod"], 30)
        (prod,) = moves
        assert prod.resource["kerascut.alias"] == "prod"
        assert {k: prod.payload[k] for k in ("name", "version", "pointer", "manifest_uri", "reason")} == {
            "name": "mnv2", "version": "v1", "pointer": "prod", "manifest_uri": manifest_uri, "reason": "passed A/B"}
        assert prod.payload["model_sha256"] == published.payload["model_sha256"]
        # the publish's own move of latest was announced too
        assert [e.payload["pointer"] for e in _events(client, "kerascut.backbone.promoted")].count("latest") == 1

        # inside a flow run the event goes through Prefect's events worker, related to the run,
        # and is delivered before the process exits
        out, _ = _run([sys.executable, "-c", IN_A_RUN, store_uri], env)
        assert out.returncode == 0, out.stderr
        (failed,) = _wait("the failed event from a flow run", lambda: _events(client, "kerascut.backbone.failed"), 30)
        assert failed.payload["reason"] == "CandidateRejected: NaN in the outputs" and failed.payload["version"] == "v2"
        assert "flow-run" in {r.role for r in failed.related}, failed.related
    finally:
        client.__exit__(None, None, None)
        settings.__exit__(None, None, None)
        if serving.poll() is None:  # a served flow stops on Ctrl-C (it outlasts a SIGTERM by seconds)
            os.killpg(serving.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                serving.wait(timeout=15)


def test_promote_with_an_unreachable_api_succeeds_with_one_warning(tmp_path: Path) -> None:
    out, _ = _run([sys.executable, "-c", PUBLISH, str(tmp_path)], {**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    home = tmp_path / "prefect-home"
    home.mkdir()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
           "PREFECT_HOME": str(home), "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}
    out, took = _run([sys.executable, "-m", "kerascut_core", "promote", str(tmp_path / "store" / "mnv2"), "v1",
                      "--alias", "prod"], env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "mnv2: prod is now v1"
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: ") and "could not be reached" in lines[0], out.stderr
    assert took < 15, f"promote took {took:.1f} s with an unreachable API"
    print(f"kerascut promote with an unreachable Prefect API: {took:.2f} s")
