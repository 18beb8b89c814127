"""``refresh-backbones``: keep every backbone of a config published, validated and ``latest``.

The parent flow, run on a schedule on the CPU pool::

    config ──► fingerprint every source (HEAD requests and hashes; no TensorFlow, no download)
           ──► version already published?  ──► "up-to-date"
           ──► prepare-backbone for each stale backbone, at most ``concurrency`` at a time: in this
               process, or with ``prepare.deployment`` as flow runs on the CPU pool's workers
           ──► table artifact (kerascut-refresh) + link artifacts (kerascut-<name>)

One backbone failing does not stop the others; the flow fails at the end if any failed. Each
failure is announced once as ``kerascut.backbone.failed`` (:mod:`kerascut_core.events`): by
prepare-backbone itself, or here when no prepare run could (a source check that failed, a
remote run that crashed).

Example::

    from kerascut.flows.refresh_backbones import refresh_backbones

    summary = refresh_backbones("deployments/quickstart.yaml")
    [(row["name"], row["status"], row["version"]) for row in summary["rows"]]
"""

from __future__ import annotations

import contextvars
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from functools import partial
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import flow_run

from kerascut.flows._deadline import Deadline
from kerascut.flows._fanout import prepare_remote
from kerascut.flows._progress import emit
from kerascut.flows.prepare_backbone import failure_message, prepare_backbone
from kerascut.tasks.aws import aws_credentials
from kerascut.tasks.freshness import check_backbone_freshness
from kerascut.tasks.publish import move_latest_pointer
from kerascut_core import events
from kerascut_core.config import KerascutConfig, load_config, parse_config
from kerascut_core.errors import KerascutError
from kerascut_core.pipeline.freshness import Freshness
from kerascut_core.pipeline_names import REFRESH_FLOW
from kerascut_core.sources.imports import import_modules
from kerascut_core.text import one_line

__all__ = ["SUMMARY_ARTIFACT_KEY", "RefreshFailed", "refresh_backbones"]

SUMMARY_ARTIFACT_KEY = "kerascut-refresh"


class RefreshFailed(KerascutError):
    """At least one backbone failed; the others were still published. ``rows`` has them all."""

    def __init__(self, message: str, rows: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.rows = rows or []

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.rows))


@flow(
    name=REFRESH_FLOW,
    description="Fingerprint every source of a kerascut config and publish the stale backbones.",
    persist_result=False,
)
def refresh_backbones(
    config: str | dict[str, Any],
    only: list[str] | None = None,
    force: bool = False,
    aws_credentials_block: str | None = None,
    config_dir: str | None = None,
) -> dict[str, Any]:
    """Refresh the backbones of ``config`` (a YAML path or the parsed config as a dict).

    The config's ``imports`` are imported first (and by every flow that loads a model), looked
    for on PYTHONPATH and in ``config_dir``: the config file's directory (default: that of a
    ``config`` path).

    ``only`` restricts the refresh to some backbone names; ``force`` rebuilds and revalidates
    backbones whose version is already published (published versions are never overwritten).
    ``aws_credentials_block`` names a prefect-aws ``AwsCredentials`` block for S3 (it overrides
    the config's ``aws_credentials_block``; without either, the standard AWS environment).
    Returns ``{"rows": [...], "published": n, "up_to_date": n, "failed": n}``.
    """
    cfg = _load(config)
    if config_dir is None and isinstance(config, (str, Path)):
        config_dir = str(Path(config).resolve().parent)
    import_paths = [config_dir] if config_dir else []
    import_modules(cfg.imports, search=import_paths)
    if aws_credentials_block:
        cfg = cfg.model_copy(update={"aws_credentials_block": aws_credentials_block})
    logger = get_run_logger()
    selected = cfg.select(only)
    started = time.perf_counter()
    deadline = Deadline(cfg.refresh_timeout)  # None: no bound
    rows: dict[str, dict[str, Any]] = {}

    with aws_credentials(cfg.aws_credentials_block):
        # 1. Fingerprint every source at once (I/O only).
        for b in selected:
            emit(b.name, "checking")
        futures = {
            b.name: check_backbone_freshness.submit(b.model_dump(mode="json"), cfg.store, force)
            for b in selected
        }
        checks: dict[str, Freshness] = {}
        for b in selected:
            futures[b.name].wait(deadline.remaining())
            state = futures[b.name].state
            if state.is_completed():
                checks[b.name] = futures[b.name].result()
            elif not state.is_final():  # refresh_timeout reached
                _record_failure(rows, cfg.store, _row(b.name, "failed", message=deadline.message("Checking the source")))
            else:
                _record_failure(rows, cfg.store, _row(b.name, "failed", message=_state_message(state)))

        # 2. Up-to-date backbones: make sure latest points at them (completes an interrupted run).
        for name, check in checks.items():
            if check.up_to_date:
                if check.latest != check.version:
                    move_latest_pointer(cfg.store, name, check.version, flow_run.get_id())
                _record(rows, _row(name, "up-to-date", check.version, check.manifest_uri))

        # 3. Stale backbones: prepare them concurrently, at most cfg.concurrency at a time.
        stale = [b for b in selected if b.name in checks and not checks[b.name].up_to_date]
        if stale:
            logger.info(
                "%d of %d backbones to prepare: %s",
                len(stale), len(selected), ", ".join(b.name for b in stale),
            )
            remote = cfg.prepare.deployment  # None: in this process
            if remote:
                logger.info("preparing on deployment %r (its pool's workers), %d at a time", remote, cfg.concurrency)
            else:
                # Keras (and TensorFlow under it) is imported here once, before the threads: two
                # prepares importing it at the same moment can get a partially initialized module.
                import keras  # noqa: F401
            with ThreadPoolExecutor(max_workers=min(cfg.concurrency, len(stale))) as pool:
                running = {}
                for b in stale:
                    parameters = dict(
                        backbone=b.model_dump(mode="json"),
                        store=cfg.store,
                        version=checks[b.name].version,
                        fingerprint=checks[b.name].fingerprint,
                        validation=cfg.validation.model_dump(mode="json"),
                        retention=cfg.retention.model_dump(mode="json"),
                        cache_dir=cfg.cache_dir,
                        aws_credentials_block=cfg.aws_credentials_block,
                        already_published=checks[b.name].published,
                        imports=list(cfg.imports),
                        import_paths=import_paths,
                    )
                    if remote:  # a flow run of the deployment, on any worker of its pool
                        call = partial(prepare_remote, remote, parameters, deadline=deadline)
                    else:  # with what is left of refresh_timeout when it starts, if any
                        call = partial(deadline.call, prepare_backbone, **parameters, return_state=True)
                    running[b.name] = pool.submit(contextvars.copy_context().run, call)
                names = {future: name for name, future in running.items()}
                for future in as_completed(names):
                    name = names[future]
                    try:
                        outcome = future.result()
                    except Exception as exc:  # not from inside prepare-backbone, which announces its own
                        row = _row(name, "failed", checks[name].version, message=failure_message(exc))
                        events.backbone_failed(cfg.store, name, version=checks[name].version, reason=row["message"])
                        logger.error("%s: %s", name, row["message"])
                    else:
                        if remote:  # prepare_remote's row
                            row = outcome
                            if row["status"] == "failed":
                                logger.error("%s: %s", name, row["message"])
                        else:  # the subflow's final state
                            row = _in_process_row(name, checks[name].version, outcome, deadline)
                    _record(rows, row)

    ordered = [rows[b.name] for b in selected]
    _publish_summary(ordered, cfg, time.perf_counter() - started)

    failed = [r for r in ordered if r["status"] == "failed"]
    summary = {
        "rows": ordered,
        "published": sum(r["status"] == "published" for r in ordered),
        "held": sum(r["status"] == "held" for r in ordered),
        "up_to_date": sum(r["status"] in ("up-to-date", "verified") for r in ordered),
        "failed": len(failed),
    }
    logger.info(
        "refresh done: %d published, %d up to date, %d failed",
        summary["published"], summary["up_to_date"], summary["failed"],
    )
    if failed:
        raise RefreshFailed(
            f"{len(failed)} of {len(ordered)} backbones failed: "
            + "; ".join(f"{r['name']}: {r['message']}" for r in failed),
            ordered,
        )
    return summary


def _in_process_row(name: str, version: str, state: Any, deadline: Deadline) -> dict[str, Any]:
    """The row of an in-process prepare-backbone subflow, from its final state."""
    if state.is_completed():
        result = state.result()
        retained = result.get("retention") or {}
        return _row(
            name, result["status"], version, result["manifest_uri"],
            max_abs_diff=result.get("max_abs_diff"),
            message=result.get("message") or retained.get("error") or "",  # held, or retention not applied
            changes=result.get("changes") or "",
        )
    if state.name == "TimedOut" and deadline.seconds is not None:
        return _row(name, "failed", version, message=deadline.message("Preparing it"))
    return _row(name, "failed", version, message=_state_message(state))


def _load(config: str | dict[str, Any] | KerascutConfig) -> KerascutConfig:
    if isinstance(config, (str, Path)):
        return load_config(config)
    return parse_config(config)


def _record(rows: dict[str, dict[str, Any]], row: dict[str, Any]) -> None:
    rows[row["name"]] = row
    emit(row["name"], row["status"], **{k: v for k, v in row.items() if k != "name"})


def _record_failure(rows: dict[str, dict[str, Any]], store: str, row: dict[str, Any]) -> None:
    """Record a failure that no prepare-backbone run announced, with its ``kerascut.backbone.failed``."""
    events.backbone_failed(store, row["name"], version=row["version"] or None, reason=row["message"])
    _record(rows, row)


def _row(
    name: str,
    status: str,
    version: str | None = None,
    link: str | None = None,
    *,
    max_abs_diff: float | None = None,
    message: str = "",
    changes: str = "",
) -> dict[str, Any]:
    return {
        "name": name,
        "status": status,
        "version": version or "",
        "max_abs_diff": max_abs_diff,
        "link": link or "",
        "message": message,
        "changes": changes,
    }


def _state_message(state: Any) -> str:
    """The one-line reason of a failed state: the exception's message when there is one."""
    try:
        exc = state.result(raise_on_failure=False)
    except BaseException as raised:  # results may be unavailable
        exc = raised
    if isinstance(exc, BaseException):
        return failure_message(exc)
    return one_line(state.message or state.type.value, None)


def _publish_summary(rows: list[dict[str, Any]], cfg: KerascutConfig, seconds: float) -> None:
    counts = {s: sum(r["status"] == s for r in rows) for s in ("published", "held", "up-to-date", "verified", "failed")}
    description = (
        f"**kerascut refresh** of {len(rows)} backbone(s) to `{cfg.store}` in {seconds:.1f} s: "
        + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    )
    table = [
        {
            "backbone": r["name"],
            "status": r["status"],
            "version": r["version"],
            "max abs diff": "" if r["max_abs_diff"] is None else f"{r['max_abs_diff']:.3g}",
            "manifest": r["link"],
            "message": r["message"][:300],
            "changes": str(r.get("changes") or "")[:500],
        }
        for r in rows
    ]
    create_table_artifact(table=table, key=SUMMARY_ARTIFACT_KEY, description=description)
