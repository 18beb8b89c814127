"""The run record: a staged candidate is live from its first byte.

A run's candidate is staged under ``.staging/<name>/<version>/<run_id>/`` long before the run
holds its version's claim (validation runs in between). ``gc`` may not take that directory for
an orphan, whatever ``--older-than`` says, so the run's first object there is
``run.json``, written before any artifact byte: the run id, host, pid, process start time and a
lease (``expires_at``). While the run goes on, this process renews the lease every third of it
(a daemon thread, stopped when the candidate is committed or discarded); a run whose process
dies stops renewing.

``gc`` keeps a run directory whose record is live, by the rules of claims
(:mod:`kerascut_core.publishing.claim`):

* a record is live until its lease expires (its run renews it while its process lives);
* a record of this host whose process is gone (pid and start time) is not live at once;
* a record that is not one kerascut writes (not JSON, wrong types) is live until nobody has
  rewritten it for a whole default lease, unless its process is provably dead;
* a record naming the process that runs ``gc`` is not live: a process does not collect its own
  runs' staging while it stages (its runs are committed or discarded by themselves).

A run directory without a record (staged by an older kerascut) is removed by age alone.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from typing import Any

from kerascut_core.errors import ObjectNotFoundError, StoreError
from kerascut_core.publishing._clock import iso, now
from kerascut_core.publishing.claim import (
    _HOST,
    DEFAULT_LEASE_SECONDS,
    _proc_start,
    holder_alive,
    valid_claim,
)
from kerascut_core.publishing.layout import RUN_RECORD
from kerascut_core.stores import Store

__all__ = ["RUN_LEASE_SECONDS", "record_is_live", "run_is_live", "start_run", "stop_run"]

#: the lease of a run record; renewed every third of it while the run's process lives
RUN_LEASE_SECONDS = float(os.environ.get("KERASCUT_RUN_LEASE_SECONDS", str(DEFAULT_LEASE_SECONDS)))

_RENEWERS: dict[tuple[str, str], threading.Event] = {}
_LOCK = threading.Lock()


def _body(run_id: str, lease: float) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "host": _HOST,
        "pid": os.getpid(),
        "proc_start": _proc_start(os.getpid()),
        "started_at": iso(),
        "expires_at": now() + lease,
        "lease_seconds": lease,
    }


def _renew(store: Store, key: str, lease: float, stop: threading.Event) -> None:
    """Extend the record's lease every third of it until ``stop``; end quietly once the record
    is gone (the run was discarded, or collected as dead) or cannot be written."""

    def extend(current: Any) -> Any:
        if not isinstance(current, dict):
            raise StoreError(f"{key}: the run record is gone")
        return {**current, "expires_at": now() + lease, "renewed_at": iso()}

    while not stop.wait(max(0.05, lease / 3)):
        try:
            store.update_json(key, extend)
        except Exception:  # the record is gone or the store unreachable: the lease runs out
            return


def start_run(store: Store, prefix: str, run_id: str, lease: float | None = None) -> None:
    """Write ``<prefix>/run.json`` (the run directory's first object) and renew it in the
    background until :func:`stop_run`."""
    lease = RUN_LEASE_SECONDS if lease is None else float(lease)
    key = f"{prefix}/{RUN_RECORD}"
    store.put_json(key, _body(run_id, lease), overwrite=True)
    stop = threading.Event()
    with _LOCK:
        previous = _RENEWERS.pop((store.root_uri, prefix), None)
        _RENEWERS[(store.root_uri, prefix)] = stop
    if previous is not None:
        previous.set()
    threading.Thread(target=_renew, args=(store, key, lease, stop), daemon=True,
                     name=f"kerascut-run-{run_id}").start()


def stop_run(store: Store, prefix: str) -> None:
    """Stop renewing the record of the run directory ``prefix`` (its candidate is committed or
    discarded; the record goes with the directory)."""
    with _LOCK:
        stop = _RENEWERS.pop((store.root_uri, prefix), None)
    if stop is not None:
        stop.set()


def record_is_live(record: Any, modified: dt.datetime | None) -> bool:
    """Whether a run record (parsed ``run.json``, ``None`` when unreadable) keeps its run
    directory; ``modified`` is when the store says it was last written. See the module docstring."""
    alive = holder_alive(record)
    if isinstance(record, dict) and alive and record.get("pid") == os.getpid():
        return False  # this very process: it is collecting, not staging
    if valid_claim(record) is not None:
        if alive is False or modified is None:
            return False
        return (dt.datetime.now(dt.timezone.utc) - modified).total_seconds() <= DEFAULT_LEASE_SECONDS
    if float(record["expires_at"]) < now():
        return False
    return alive is not False


def run_is_live(store: Store, prefix: str, modified: dt.datetime | None) -> bool | None:
    """Whether the run directory ``prefix`` holds a live run record; ``None`` when it holds
    none. Never raises for a bad record (it is judged by :func:`record_is_live`)."""
    key = f"{prefix}/{RUN_RECORD}"
    record: Any
    try:
        record = store.read_json(key)
    except ObjectNotFoundError:
        return None
    except (StoreError, ValueError, RecursionError, TypeError):  # not a record kerascut writes
        record = None
    return record_is_live(record, modified)
