"""Crash harness, fan-out case: SIGKILL a worker's ``prepare-backbone`` job mid-prepare.

A real server with process workers on ``kerascut-cpu`` and kerascut's deployments (a
:class:`~tests.reliability.prefect_world.World`: the ``fanout_world`` fixture); a refresh of two backbones with ``prepare: {deployment: prepare-backbone/cpu}``. As soon as the
*victim*'s candidate is staged (its bytes under ``.staging/<victim>/``), the driver SIGKILLs the
flow run's process (its ``infrastructure_pid``: the job a worker started, as the OOM killer or a
lost machine would end it). Then:

1. Prefect ends that run ``CRASHED``, and the refresh reports the victim failed, naming the flow
   run and its state, and emits ``kerascut.backbone.failed`` for it (read back from the API),
   while the other backbone publishes;
2. the store's invariants hold (:func:`tests.reliability.crash.check_invariants`): nothing of the
   victim is visible as published;
3. the next refresh publishes the victim (the other is up to date), and ``gc`` with a zero
   threshold leaves no staging and every committed object as it was.

    report = run_remote_prepare_kill(world, tmp_path, sources)   # sources: tests.reliability.sources
    assert report["problems"] == []
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from tests.reliability.crash import check_invariants, snapshot

__all__ = ["run_remote_prepare_kill"]

VICTIM, OTHER = "victim", "other"


def _config(tmp: Path, sources: Path) -> dict[str, Any]:
    slow = {"samples": 48, "batch_size": 1}  # a longer validation: the kill lands inside it
    return {
        "store": str(tmp / "store"), "concurrency": 2, "prepare": {"deployment": "prepare-backbone/cpu"},
        "validation": {"samples": 2, "batch_size": 2},
        "backbones": [
            {"name": VICTIM, "source": str(sources / "tiny_a.keras"), "end": "c3", "validation": slow},
            {"name": OTHER, "source": str(sources / "tiny_b.keras"), "end": "c3"},
        ],
    }


def _refresh(config: dict[str, Any], world: Any) -> dict[str, Any]:
    """One refresh; its rows by name (from RefreshFailed when a backbone failed)."""
    from kerascut.flows.refresh_backbones import RefreshFailed, refresh_backbones

    with world.settings():
        try:
            rows = refresh_backbones(config=config)["rows"]
        except RefreshFailed as exc:
            rows = exc.rows
    return {row["name"]: row for row in rows}


def _kill_when_staged(world: Any, store: Path, killed: dict[str, Any], stop: threading.Event) -> None:
    """Kill the victim's flow run process once its candidate bytes are in staging."""
    staging = store / ".staging" / VICTIM
    while not stop.is_set():
        if staging.exists() and any(p.is_file() and p.name != "claim.json" for p in staging.rglob("*")):
            with world.client() as client:
                from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

                runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[f"prepare-{VICTIM}"])))
                pids = [r for r in runs if r.infrastructure_pid]
                if pids:
                    run = pids[0]
                    pid = int(str(run.infrastructure_pid).rsplit(":", 1)[-1])
                    try:
                        os.kill(pid, signal.SIGKILL)
                        killed.update(run_id=str(run.id), pid=pid, at=time.monotonic())
                    except ProcessLookupError:
                        killed.update(run_id=str(run.id), pid=None)  # it had finished already
                    return
        time.sleep(0.05)


def _failed_event_seen(world: Any, run_id: str, timeout: float = 20) -> bool:
    """Whether the API holds a ``kerascut.backbone.failed`` event of the victim naming ``run_id``
    (events reach the API a moment after they are sent)."""
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    wanted = EventFilter(event=EventNameFilter(name=["kerascut.backbone.failed"]),
                         resource=EventResourceFilter(id=[f"kerascut.backbone.{VICTIM}"]))
    deadline = time.monotonic() + timeout
    with world.client() as client:
        while True:
            if any(run_id in str(e.payload.get("reason", "")) for e in client.read_events(wanted, limit=50).events):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(1)


def _committed(key: str, keys: dict[str, str]) -> bool:
    """Pointers, the root marker, and everything under a version that has its manifest."""
    from kerascut_core.publishing.layout import RESERVED

    parts = key.split("/")
    if parts[0].startswith("."):
        return key == ".kerascut-store.json"
    return len(parts) < 3 or parts[1] in RESERVED or f"{parts[0]}/{parts[1]}/manifest.json" in keys


def run_remote_prepare_kill(world: Any, tmp: Path, sources: Path) -> dict[str, Any]:
    """Run the case; ``{"problems": [...], ...}`` (no problems: every claim above held)."""
    from kerascut_core.publishing import gc
    from kerascut_core.stores import open_store

    config = _config(tmp, sources)
    store = Path(config["store"])
    problems: list[str] = []
    report: dict[str, Any] = {"problems": problems}
    killed: dict[str, Any] = {}
    stop = threading.Event()
    killer = threading.Thread(target=_kill_when_staged, args=(world, store, killed, stop), daemon=True)
    killer.start()
    first = _refresh(config, world)
    stop.set()
    killer.join(10)
    report["killed"] = killed
    if not killed.get("pid"):
        problems.append(f"the victim was never killed mid-prepare: {killed or 'no staging seen'}")
        return report
    with world.client() as client:
        state = client.read_flow_run(killed["run_id"]).state
    report["victim_state"] = state.type.value
    if not state.is_crashed():
        problems.append(f"the killed run ended {state.type.value}, expected CRASHED")
    victim = first.get(VICTIM, {})
    if victim.get("status") != "failed" or killed["run_id"] not in victim.get("message", "") \
            or "CRASHED" not in victim.get("message", ""):
        problems.append(f"the refresh did not report the victim failed with its run and state: {victim}")
    if not _failed_event_seen(world, killed["run_id"]):
        problems.append("no kerascut.backbone.failed event for the victim naming its flow run")
    if first.get(OTHER, {}).get("status") != "published":
        problems.append(f"the other backbone did not publish: {first.get(OTHER)}")
    found, state_after = check_invariants(str(store))
    problems += [f"after the kill: {p}" for p in found]
    if (store / VICTIM).exists() and any((p / "manifest.json").exists() for p in (store / VICTIM).iterdir()):
        problems.append("a version of the victim is committed after its run was killed")
    report["after_kill"] = state_after

    second = _refresh(config, world)
    report["second"] = {n: r["status"] for n, r in second.items()}
    if report["second"] != {VICTIM: "published", OTHER: "up-to-date"}:
        problems.append(f"the next refresh did not complete the victim: {second}")
    problems += [f"after the rerun: {p}" for p in check_invariants(str(store))[0]]

    before = snapshot(str(store))
    committed = {k: v for k, v in before.items() if _committed(k, before)}
    gc(open_store(str(store)), older_than=0)
    after = snapshot(str(store))
    if any(k.startswith(".staging/") for k in after):
        problems.append(f"gc left staging: {[k for k in after if k.startswith('.staging/')][:3]}")
    if {k: after.get(k) for k in committed} != committed:
        problems.append("gc changed or removed committed objects")
    return report
