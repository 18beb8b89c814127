"""Register kerascut's three deployments on a Prefect server (what ``kerascut deploy`` does).

- ``refresh-backbones/cpu`` on the CPU pool, with the config inline as its parameter and the
  config's cron as its only schedule;
- ``prepare-backbone/cpu`` on the CPU pool, run by the refresh through ``run_deployment`` (one
  flow run per stale backbone, spread over the pool's workers) when ``prepare.deployment``
  names it;
- ``validate-backbone/gpu`` on the GPU pool, run by the refresh through ``run_deployment``
  when ``validation.deployment`` names it.

The flows are imported by module path (``kerascut.flows.refresh_backbones:refresh_backbones``), so any
worker with kerascut installed can run them; nothing is pulled. Redeploying updates the
deployments in place and reconciles the schedule: the refresh ends up with exactly the config's
cron, or none when the config has no ``schedule``.

Example::

    from kerascut_core.config import load_config
    from kerascut.flows.deployments import deploy_config

    deploy_config(load_config("backbones.yaml"))   # PREFECT_API_URL names the server
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kerascut_core.config import KerascutConfig
from kerascut_core.errors import KerascutError
from kerascut_core.pipeline_names import (
    CPU_POOL,
    GPU_POOL,
    PREPARE_DEPLOYMENT,
    REFRESH_DEPLOYMENT,
    VALIDATE_DEPLOYMENT,
)

__all__ = ["PREPARE_DEPLOYMENT", "REFRESH_DEPLOYMENT", "VALIDATE_DEPLOYMENT", "deploy_config", "deployable_config"]

_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}
_GPU_ENV = {
    **_ENV,
    "NVIDIA_VISIBLE_DEVICES": "all",
    "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
    "TF_FORCE_GPU_ALLOW_GROWTH": "true",
}


def deployable_config(cfg: KerascutConfig, base: Path | None = None) -> dict[str, Any]:
    """The config as a flow parameter: local store and cache paths made absolute.

    Workers run elsewhere (another working directory or machine), so ``./backbones`` must not
    depend on where the worker starts.
    """
    data = cfg.model_dump(mode="json", exclude_none=True)
    base = base or Path.cwd()
    if "://" not in data["store"] or data["store"].startswith("file://"):
        raw = data["store"][len("file://"):] if data["store"].startswith("file://") else data["store"]
        data["store"] = str((base / Path(raw).expanduser()).resolve())
    if data.get("cache_dir"):
        data["cache_dir"] = str((base / Path(data["cache_dir"]).expanduser()).resolve())
    return data


def deploy_config(
    cfg: KerascutConfig,
    *,
    cpu_pool: str = CPU_POOL,
    gpu_pool: str = GPU_POOL,
    create_pools: bool = False,
    image: str | None = None,
) -> list[dict[str, Any]]:
    """Create or update the three deployments on the server at ``PREFECT_API_URL``."""
    from prefect.client.orchestration import get_client
    from prefect.deployments.runner import EntrypointType

    from kerascut.flows.prepare_backbone import prepare_backbone
    from kerascut.flows.refresh_backbones import refresh_backbones
    from kerascut.flows.validate_backbone import validate_backbone

    with get_client(sync_client=True) as client:
        for pool in (cpu_pool, gpu_pool):
            _ensure_pool(client, pool, create_pools)

    job_variables: dict[str, Any] = {"env": dict(_ENV)}
    gpu_job_variables: dict[str, Any] = {"env": dict(_GPU_ENV)}
    if image:
        job_variables["image"] = image
        gpu_job_variables["image"] = image

    refresh = refresh_backbones.to_deployment(
        name=REFRESH_DEPLOYMENT.split("/")[1],
        parameters={"config": deployable_config(cfg)},
        description="Refresh every backbone of the config (kerascut deploy).",
        tags=["kerascut"],
        work_pool_name=cpu_pool,
        job_variables=job_variables,
        concurrency_limit=1,
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    prepare = prepare_backbone.to_deployment(
        name=PREPARE_DEPLOYMENT.split("/")[1],
        description="Prepare one stale backbone (run by refresh-backbones through run_deployment).",
        tags=["kerascut"],
        work_pool_name=cpu_pool,
        job_variables=job_variables,
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    validate = validate_backbone.to_deployment(
        name=VALIDATE_DEPLOYMENT.split("/")[1],
        description="Validate one staged candidate (run by refresh-backbones through run_deployment).",
        tags=["kerascut"],
        work_pool_name=gpu_pool,
        job_variables=gpu_job_variables,
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    refresh_id = refresh.apply()
    prepare.apply()
    validate.apply()

    schedule = None
    with get_client(sync_client=True) as client:
        _reconcile_schedule(client, refresh_id, cfg)
        if cfg.schedule is not None:
            schedule = f"{cfg.schedule.cron} ({cfg.schedule.timezone})"
    return [
        {"name": REFRESH_DEPLOYMENT, "work_pool": cpu_pool, "schedule": schedule, "id": str(refresh_id)},
        {"name": PREPARE_DEPLOYMENT, "work_pool": cpu_pool, "schedule": None},
        {"name": VALIDATE_DEPLOYMENT, "work_pool": gpu_pool, "schedule": None},
    ]


def _ensure_pool(client: Any, name: str, create: bool) -> None:
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    try:
        client.read_work_pool(name)
    except ObjectNotFound:
        if not create:
            raise KerascutError(
                f"Expected a work pool named {name!r} on the Prefect server. Received none. "
                "Create it with `bash deployments/setup_work_pools.sh`, or pass --create-pools."
            ) from None
        client.create_work_pool(WorkPoolCreate(name=name, type="process"))


def _reconcile_schedule(client: Any, deployment_id: Any, cfg: KerascutConfig) -> None:
    """Leave exactly the config's cron on the deployment (or no schedule at all)."""
    from prefect.client.schemas.schedules import CronSchedule

    existing = client.read_deployment_schedules(deployment_id)
    wanted = None
    if cfg.schedule is not None:
        wanted = (cfg.schedule.cron, cfg.schedule.timezone)
    keep = None
    for item in existing:
        sched = item.schedule
        current = (getattr(sched, "cron", None), getattr(sched, "timezone", None))
        if wanted is not None and keep is None and current == wanted:
            keep = item
            if not item.active:
                client.update_deployment_schedule(deployment_id, item.id, active=True)
            continue
        client.delete_deployment_schedule(deployment_id, item.id)
    if wanted is not None and keep is None:
        client.create_deployment_schedules(
            deployment_id, [(CronSchedule(cron=wanted[0], timezone=wanted[1]), True)]
        )
