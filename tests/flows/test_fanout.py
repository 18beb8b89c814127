"""Fan-out over workers: ``prepare: {deployment: prepare-backbone/cpu}`` on a real server.

The ``fanout_world`` fixture (tests/fixtures/prefect.py): a ``prefect server start``
subprocess, kerascut's deployments (``deploy_config``, what ``kerascut deploy`` runs: it
registers ``prepare-backbone/cpu``), the prepare concurrency limit with 2 slots, and two
``prefect worker start --pool kerascut-cpu --type process`` subprocesses (one flow run at a
time each). A refresh of four stale backbones (tiny saved models, built offline) with
``concurrency: 4``:

- submits one ``prepare-backbone`` flow run per backbone, and both workers ran at least one
  (read back from the API: the worker labels Prefect gives each run);
- never has more than 2 of them in flight (the limit's slots, not the config's 4);
- publishes every version exactly once, from those runs, and ``latest`` names it;
- a second refresh is a no-op: every backbone up to date, no new flow run.

A worker's job process killed mid-prepare is in test_reliability_crash.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.reliability.prefect_world import worker_of_runs
from tests.reliability.sources import TINY, shared_sources

pytestmark = pytest.mark.integration

ENDS = ("c3", "add")  # two cuts of each of two sources: four versions


def _config(tmp: Path, sources: Path) -> dict:
    backbones = [{"name": f"{src.replace('_', '-')}-{end}", "source": str(sources / f"{src}.keras"), "end": end}
                 for src in TINY[:2] for end in ENDS]
    return {"store": str(tmp / "store"), "concurrency": 4, "prepare": {"deployment": "prepare-backbone/cpu"},
            "validation": {"samples": 2, "batch_size": 2}, "backbones": backbones}


def _prepare_runs(client, store: str) -> list:
    """The prepare-backbone/cpu flow runs into ``store`` (other tests share the server)."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    deployment = client.read_deployment_by_name("prepare-backbone/cpu")
    runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])))
    return [r for r in runs if r.parameters.get("store") == store]


def _max_in_flight(runs) -> int:
    """The most runs at once between their creation and their end."""
    edges = sorted([(r.created, 1) for r in runs] + [(r.end_time, -1) for r in runs], key=lambda e: (e[0], e[1]))
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def test_refresh_fans_out_over_two_workers(tmp_path: Path, fanout_world) -> None:
    world = fanout_world
    sources = shared_sources()
    cfg = _config(tmp_path, sources)
    path = tmp_path / "backbones.yaml"
    path.write_text(yaml.safe_dump(cfg))

    from kerascut.flows.refresh_backbones import refresh_backbones

    with world.settings():
        state = refresh_backbones(config=str(path), return_state=True)
    assert state.is_completed(), f"{state}\n{world.logs()}"
    summary = state.result()
    assert summary["published"] == 4 and summary["failed"] == 0, summary

    with world.client() as client:
        runs = _prepare_runs(client, cfg["store"])
        assert len(runs) == 4 and all(r.state.is_completed() for r in runs), [(r.name, r.state) for r in runs]
        assert {r.work_pool_name for r in runs} == {"kerascut-cpu"}
        workers = worker_of_runs(client, [r.id for r in runs])
        assert set(workers.values()) == {"worker-a", "worker-b"}, workers
        assert _max_in_flight(runs) <= 2, [(r.name, r.created, r.end_time) for r in runs]
        run_ids = {str(r.id) for r in runs}

        store = tmp_path / "store"
        for row in summary["rows"]:
            name = row["name"]
            versions = [p.name for p in (store / name).iterdir() if (p / "manifest.json").exists()]
            assert versions == [row["version"]], (name, versions)
            assert json.loads((store / name / "latest.json").read_text())["version"] == row["version"]
            manifest = json.loads((store / name / row["version"] / "manifest.json").read_text())
            assert manifest["lineage"]["flow_run_id"] in run_ids
            assert row["link"].endswith(f"{name}/{row['version']}/manifest.json")

        with world.settings():
            again = refresh_backbones(config=str(path))
        assert again["up_to_date"] == 4 and again["published"] == 0, again
        assert len(_prepare_runs(client, cfg["store"])) == 4  # nothing was submitted
