"""Fan-out: one ``prepare-backbone`` flow run per stale backbone, on the CPU pool's workers.

With ``prepare: {deployment: prepare-backbone/cpu}`` in the config, the refresh hands each stale
backbone to :func:`prepare_remote` instead of calling the ``prepare-backbone`` flow in its own
process. :func:`prepare_remote`:

1. takes one slot of the Prefect global concurrency limit
   :func:`~kerascut_core.pipeline_names.prepare_limit_name` (``kerascut-prepare-backbone-cpu``),
   shared by every refresh, so two overlapping refreshes never have more prepares in flight
   than it allows (``deployments/setup_work_pools.sh`` creates it; where it does not exist,
   Prefect logs a warning and only the config's ``concurrency`` bounds the refresh);
2. submits the run through ``run_deployment`` (a subflow of the refresh in the UI), which any
   worker of the pool picks up, and waits for its final state, at most what is left of
   ``refresh_timeout``;
3. reads the outcome from the store, the only state the workers share (the remote run keeps no
   result): the committed manifest of the version, and in it the flow run that published it.

A run that does not complete (a worker's job process killed mid-prepare ends ``CRASHED``, a
failed validation ``FAILED``) is a failed row naming the flow run and its state; the store
protocol leaves nothing of it visible (its staging is never committed) and the next refresh
prepares the backbone again. A run that could not say so itself (crashed, cancelled, never
finished, never started) gets its ``kerascut.backbone.failed`` event from here; a ``FAILED``
run emitted its own.

Example (inside the refresh flow, with a server and a worker on the pool)::

    row = prepare_remote("prepare-backbone/cpu", parameters, deadline=Deadline(None))
    row["status"], row["message"]
"""

from __future__ import annotations

from typing import Any

from kerascut.flows._deadline import Deadline
from kerascut_core import events
from kerascut_core.errors import KerascutError
from kerascut_core.pipeline_names import prepare_limit_name
from kerascut_core.text import one_line

__all__ = ["POLL_INTERVAL_S", "prepare_remote"]

#: How often the refresh looks at a remote prepare run (and renews its concurrency slot).
POLL_INTERVAL_S = 2.0


def prepare_remote(deployment: str, parameters: dict[str, Any], *, deadline: Deadline) -> dict[str, Any]:
    """Run ``prepare-backbone`` with ``parameters`` as a flow run of ``deployment``; its row.

    The row has the keys of the refresh's rows (``name``, ``status``, ``version``, ``link``,
    ``max_abs_diff``, ``message``); a failed row's message names the flow run and its state.
    """
    from prefect.concurrency.sync import concurrency
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    name, version = parameters["backbone"]["name"], parameters["version"]
    limit = prepare_limit_name(deployment)
    try:
        with concurrency(limit, occupy=1, timeout_seconds=deadline.remaining()):
            run = run_deployment(
                name=deployment,
                parameters=parameters,
                timeout=deadline.remaining(),
                poll_interval=POLL_INTERVAL_S,
                as_subflow=True,
                tags=["kerascut"],
            )
    except TimeoutError:  # no slot of the limit before refresh_timeout
        return _failed(name, version, deadline.message(f"Waiting for a slot of the concurrency limit {limit!r}"),
                       announce=True, store=parameters["store"])
    except ObjectNotFound:
        return _failed(name, version, (
            f"Expected the deployment {deployment!r} (prepare.deployment) on the Prefect server. Received none. "
            "Run `kerascut deploy CONFIG`, or remove prepare.deployment to prepare in-process."
        ), announce=True, store=parameters["store"])
    state = run.state
    where = f"flow run {run.name!r} ({run.id}) of {deployment!r}"
    if state is None or not state.is_final():  # run_deployment stopped waiting: refresh_timeout
        _cancel(run.id)
        return _failed(name, version, deadline.message(f"Preparing it ({where}, cancelled)"),
                       announce=True, store=parameters["store"])
    if not state.is_completed():
        retry = " The next refresh prepares it again." if state.is_crashed() else ""
        detail = one_line(state.message or "no message", None)
        return _failed(name, version, f"{where} ended {state.type.value}: {detail}.{retry}",
                       announce=not state.is_failed(), store=parameters["store"])
    return _outcome(parameters, run)


def _outcome(parameters: dict[str, Any], run: Any) -> dict[str, Any]:
    """The row of a completed remote run, read back from the store."""
    from kerascut_core.publishing.listing import manifest_uri, read_manifest
    from kerascut_core.stores import open_store

    name, version, store_uri = parameters["backbone"]["name"], parameters["version"], parameters["store"]
    store = open_store(store_uri)
    try:
        manifest = read_manifest(store, name, version)
    except KerascutError as exc:
        return _failed(name, version, (
            f"flow run {run.name!r} ({run.id}) completed but {name}@{version} is not readable in {store_uri}: "
            f"{' '.join(str(exc).split())}"
        ))
    if parameters.get("already_published"):
        status = "verified"
    else:  # another run may have committed this very version first: then it is not ours
        ours = manifest.lineage is not None and manifest.lineage.flow_run_id == str(run.id)
        status = "published" if ours else "up-to-date"
    message = ""
    if status == "published":  # held: committed, latest left where it was for its consumers
        from kerascut_core.publishing.gate import Gate
        from kerascut_core.publishing.pointer_files import read_latest

        try:
            if read_latest(store, name) != version:
                broken = Gate(store, name, "latest").check(version)
                if broken:
                    status = "held"
                    message = "latest held for its consumers: " + ", ".join(b.line() for b in broken)
        except KerascutError:
            pass  # the row stays published; the event of the move (or the hold) says the rest
    return {
        "name": name,
        "status": status,
        "version": version,
        "max_abs_diff": manifest.validation.max_abs_diff,
        "link": manifest_uri(store, name, version),
        "message": message,
        "changes": "" if manifest.changes is None or status not in ("published", "held") else
                   f"{manifest.changes.verdict} against {manifest.changes.from_version}: " + "; ".join(manifest.changes.reasons),
    }


def _failed(name: str, version: str, message: str, *, announce: bool = False, store: str = "") -> dict[str, Any]:
    """A failed row; with ``announce``, also its ``kerascut.backbone.failed`` event (never raises)."""
    if announce:
        events.backbone_failed(store, name, version=version, reason=message)
    return {
        "name": name,
        "status": "failed",
        "version": version,
        "max_abs_diff": None,
        "link": "",
        "message": message,
    }


def _cancel(flow_run_id: Any) -> None:
    """Ask the server to cancel a run the refresh no longer waits for (best effort)."""
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    try:
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(flow_run_id, Cancelling(message="refresh_timeout reached"), force=True)
    except Exception:
        pass
