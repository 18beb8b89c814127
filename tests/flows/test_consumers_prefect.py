"""Integration: a refresh that would break a consumer of ``latest`` holds it, and the
``kerascut.backbone.held`` event is read back from a real Prefect API.

The session's ``prefect server start`` subprocess (``prefect_server``, tests/fixtures/prefect.py); the
publishing job runs in a process of its own pointed at it by ``PREFECT_API_URL``: v1 committed
and latest on it, a consumer of latest relying on ``out``, then v2 (``out`` with other channels)
committed and :func:`~kerascut_core.publishing.holding.advance_latest` holding latest on v1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.flows.test_events_prefect import _events, _run, _wait
from tests.flows.test_integration_prefect import _client
from tests.reliability.prefect_server import Processes

pytestmark = pytest.mark.integration

JOB = """
import sys
from pathlib import Path
from kerascut_core import events, open_store
from kerascut_core.publishing import commit_version, stage_candidate, update_latest
from kerascut_core.publishing.consumer_registry import register_consumer
from kerascut_core.publishing.holding import advance_latest
from tests.publishing.test_publish import candidate, make_manifest
root = Path(sys.argv[1])
store = open_store(root / "store")
for version, channels in (("v1", 576), ("v2", 320)):
    uri = stage_candidate(store, "held-mnv2", version, {"model.keras": candidate(root, version.encode())})
    outputs = [{"name": "out", "shape": [None, 6, 6, channels], "dtype": "float32", "channels": channels}]
    manifest = make_manifest("held-mnv2", version).model_copy(update={"outputs": []})
    manifest = manifest.model_validate({**manifest.model_dump(), "outputs": outputs})
    commit_version(store, "held-mnv2", version, uri, manifest)
    if version == "v1":
        update_latest(store, "held-mnv2", "v1")
        register_consumer(store, "held-mnv2", "detector", outputs=["out"])
update = advance_latest(store, "held-mnv2", "v2", run_id="refresh-1")
events.flush()
print(update.status, update.latest)
"""


def test_a_held_refresh_is_announced_to_prefect(
    prefect_server: tuple[str, dict[str, str], Processes], tmp_path: Path
) -> None:
    api, env, _ = prefect_server
    settings, client = _client(api)
    try:
        out, _ = _run([sys.executable, "-c", JOB, str(tmp_path)], env)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip().splitlines()[-1] == "held v1"
        (held,) = _wait("the held event in the API", lambda: _events(client, "kerascut.backbone.held", "held-mnv2"), 30)
        assert held.resource["kerascut.version"] == "v2"
        assert held.payload["version"] == "v2" and held.payload["latest"] == "v1"
        assert held.payload["consumers"] == [{"consumer": "detector", "breaks": [
            "output 'out': shape (?, 6, 6, 576) -> (?, 6, 6, 320)", "output 'out': channels 576 -> 320"]}]
        (published, _) = sorted(_events(client, "kerascut.backbone.published", "held-mnv2"), key=lambda e: e.payload["version"])
        assert published.payload["verdict"] is None  # v1: nothing before it
        v2 = next(e for e in _events(client, "kerascut.backbone.published", "held-mnv2") if e.payload["version"] == "v2")
        assert (v2.payload["verdict"], v2.payload["compared_with"]) == ("breaking", "v1")
    finally:
        client.__exit__(None, None, None)
        settings.__exit__(None, None, None)
