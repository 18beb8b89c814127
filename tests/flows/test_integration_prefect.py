"""Integration: a real Prefect server, real process workers, deployments made by ``kerascut deploy``.

A ``prefect server start`` subprocess (SQLite, free port, no UI) gets the two process work pools;
``kerascut deploy`` registers ``refresh-backbones/cpu`` and ``validate-backbone/gpu``; one
``prefect worker start`` subprocess serves each pool. The refresh deployment is run, and the
test checks that its validation ran as a flow run of the GPU pool's deployment, executed by
that worker, and that the deployment carries exactly the config's cron (also after a redeploy
with another cron). Every process is stopped at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.prefect_server import Processes

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration




def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _tiny_source(path: Path) -> None:
    code = (
        "import keras, sys\n"
        "keras.utils.set_random_seed(7)\n"
        "x = keras.Input((8, 8, 3), name='image')\n"
        "h = keras.layers.Conv2D(4, 3, padding='same', activation='relu', name='stem')(x)\n"
        "h = keras.layers.Conv2D(4, 3, padding='same', activation='relu', name='block1')(h)\n"
        "h = keras.layers.Conv2D(8, 3, strides=2, padding='same', name='block3')(h)\n"
        "keras.Model(x, h).save(sys.argv[1])\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def _config(tmp_path: Path, source: Path, cron: str) -> Path:
    path = tmp_path / "backbones.yaml"
    path.write_text(
        json.dumps(
            {
                "store": str(tmp_path / "store"),
                "schedule": {"cron": cron, "timezone": "UTC"},
                "validation": {"samples": 2, "batch_size": 2, "deployment": "validate-backbone/gpu"},
                "backbones": [{"name": "tiny", "source": str(source), "start": "stem", "end": "block3"}],
            }
        )
    )
    return path


def _client(api: str) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    settings = temporary_settings({PREFECT_API_URL: api})
    settings.__enter__()
    client = get_client(sync_client=True)
    client.__enter__()
    return settings, client


def test_deploy_workers_and_gpu_pool_validation(prefect_server: tuple[str, dict[str, str], Processes], tmp_path: Path) -> None:
    api, env, procs = prefect_server
    for pool in ("kerascut-cpu", "kerascut-gpu"):
        out = _run([sys.executable, "-m", "prefect", "work-pool", "create", pool, "--type", "process"], env)
        assert out.returncode == 0, out.stdout + out.stderr

    source = tmp_path / "source.keras"
    _tiny_source(source)
    config = _config(tmp_path, source, "0 3 * * 1")
    out = _run([sys.executable, "-m", "kerascut_core", "deploy", str(config)], env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "refresh-backbones/cpu" in out.stdout and "0 3 * * 1" in out.stdout
    assert "deployed prepare-backbone/cpu on pool kerascut-cpu" in out.stdout  # the fan-out's (test_fanout.py)

    settings, client = _client(api)
    try:
        refresh = client.read_deployment_by_name("refresh-backbones/cpu")
        validate = client.read_deployment_by_name("validate-backbone/gpu")
        assert client.read_deployment_by_name("prepare-backbone/cpu").work_pool_name == "kerascut-cpu"
        assert refresh.work_pool_name == "kerascut-cpu" and validate.work_pool_name == "kerascut-gpu"
        schedules = client.read_deployment_schedules(refresh.id)
        assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in schedules] == [("0 3 * * 1", "UTC", True)]
        assert refresh.parameters["config"]["store"] == str(tmp_path / "store")

        # Redeploying with another cron replaces the schedule instead of adding one.
        config = _config(tmp_path, source, "30 4 * * 2")
        out = _run([sys.executable, "-m", "kerascut_core", "deploy", str(config)], env)
        assert out.returncode == 0, out.stdout + out.stderr
        schedules = client.read_deployment_schedules(refresh.id)
        assert [(s.schedule.cron, s.active) for s in schedules] == [("30 4 * * 2", True)]

        for pool in ("kerascut-cpu", "kerascut-gpu"):
            procs.start(
                f"worker-{pool}",
                [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process",
                 "--name", f"{pool}-worker"],
                env,
            )

        from prefect.deployments import run_deployment
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings({PREFECT_API_URL: api}):
            run = run_deployment("refresh-backbones/cpu", timeout=420, poll_interval=2, as_subflow=False)
        assert run.state is not None and run.state.is_completed(), (
            f"refresh ended {run.state}\n--- cpu worker:\n{procs.log('worker-kerascut-cpu')}"
            f"\n--- gpu worker:\n{procs.log('worker-kerascut-gpu')}"
        )
        assert run.work_pool_name == "kerascut-cpu"

        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

        validations = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[validate.id])))
        assert len(validations) == 1
        (validation,) = validations
        assert validation.state.is_completed()
        assert validation.work_pool_name == "kerascut-gpu"
        assert validation.parameters["candidate_uri"].endswith("/model.keras")
        assert validation.parent_task_run_id is not None, "run_deployment links it under the refresh"
        assert "kerascut-gpu-worker" in procs.log("worker-kerascut-gpu") or validation.infrastructure_pid

        store = tmp_path / "store" / "tiny"
        latest = json.loads((store / "latest.json").read_text())
        manifest = json.loads((store / latest["version"] / "manifest.json").read_text())
        assert manifest["validation"]["passed"] is True
        assert not (tmp_path / "store" / ".staging" / "tiny").exists() or not any(
            p.is_file() and p.name != "claim.json" for p in (tmp_path / "store" / ".staging").rglob("*")
        )
    finally:
        client.__exit__(None, None, None)
        settings.__exit__(None, None, None)
