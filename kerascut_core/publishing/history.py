"""The pointer history: one create-only entry per move of ``latest`` or an alias.

Every move of a pointer appends ``<name>/history/<stamp>-<8 hex>.json`` (the key is built in
:mod:`kerascut_core.publishing.layout`)::

    {"pointer": "prod", "from": "3f9a0c1d2e4b5a69", "to": "0c1d2e4b5a693f9a",
     "at": "2025-01-02T03:04:05.000006+00:00", "by": {"user": "ana", "host": "ws-12"},
     "flow_run_id": null, "reason": "roll back: accuracy drop"}

:func:`move_pointer` is the one way a pointer moves: a conditional read-modify-write of the
pointer object (``store.update_json``) whose new value is built from the value seen *at write
time*, so ``from`` is exactly the version the move replaced and the entries of one pointer form
a chain (each ``from`` is the ``to`` before it) however many writers race. The entry's time is
taken in the attempt that wins, after the previous move was read, so the order of the ids is the
order the moves were applied (on one clock). The entry is also kept in the pointer
(``last_move``) and written to the history right after the pointer: a writer that dies in
between leaves it in the pointer, where :func:`read_history` shows it until the next move.

An entry is written only from what the move itself knows (the pointer, the version it replaced,
the one it names now, this actor and time), never copied from the pointer file it replaces: a
pointer is an ordinary object a person can edit, so a ``last_move`` or an inline ``history`` in
it is not evidence of a move and never becomes a create-only history entry. The cost: the entry
of a writer that died between its two writes is not persisted by the next move; the next
entry's ``from`` still names the version that writer moved to, so the chain shows the move.

Every move emits ``kerascut.backbone.promoted`` (:mod:`kerascut_core.events`), which never fails
the move.

``flow_run_id`` comes from ``PREFECT__FLOW_RUN_ID`` when set (no Prefect import here).

    >>> entry = new_entry("prod", "3f9a0c1d2e4b5a69", "0c1d2e4b5a693f9a", reason="rollback", ts=0.5)
    >>> entry.id[:23], entry.to_json()["from"], entry.at
    ('19700101T000000.500000Z', '3f9a0c1d2e4b5a69', '1970-01-01T00:00:00.500000+00:00')
    >>> HistoryEntry.from_json(entry.id, entry.to_json()) == entry
    True
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kerascut_core import events
from kerascut_core._names import short_repr
from kerascut_core.errors import ObjectExistsError, ObjectNotFoundError, StoreError
from kerascut_core.publishing._clock import iso, now
from kerascut_core.publishing.layout import (
    LATEST_ALIAS,
    aliases_dir,
    check_alias,
    check_history_id,
    history_dir,
    history_key,
    latest_key,
    manifest_key,
)
from kerascut_core.stores import Store, parse_json
from kerascut_core.uris import check_name

__all__ = [
    "FLOW_RUN_ENV",
    "REASON_MAX_LENGTH",
    "HistoryEntry",
    "actor",
    "check_reason",
    "move_pointer",
    "new_entry",
    "read_history",
    "verdict_against",
]

#: the environment variable Prefect sets in a flow run's process
FLOW_RUN_ENV = "PREFECT__FLOW_RUN_ID"
#: the longest ``reason`` a move may carry
REASON_MAX_LENGTH = 1000
#: the most bytes a history entry may have (real ones are a few hundred)
_MAX_ENTRY_BYTES = 1 << 16
_FIELDS = ("pointer", "from", "to", "at", "by", "flow_run_id", "reason")


def actor() -> dict[str, str | None]:
    """This process's user and host (``None`` where the system does not say)."""
    try:
        user: str | None = getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        user = None
    return {"user": user, "host": socket.gethostname() or None}


def _check_pointer(pointer: str) -> str:
    return pointer if pointer == LATEST_ALIAS else check_alias(pointer)


def check_reason(reason: str | None) -> str | None:
    """``reason`` when it is ``None`` or a string of at most :data:`REASON_MAX_LENGTH` characters."""
    if reason is not None and (not isinstance(reason, str) or len(reason) > REASON_MAX_LENGTH):
        raise StoreError(
            f"Expected a reason of at most {REASON_MAX_LENGTH} characters. Received {short_repr(reason)}; shorten it."
        )
    return reason


@dataclass(frozen=True)
class HistoryEntry:
    """One move of a pointer, as ``<name>/history/<id>.json`` stores it (``id`` is the key's name)."""

    id: str
    pointer: str
    from_: str | None
    to: str
    at: str
    by: dict[str, str | None] = field(default_factory=dict)
    flow_run_id: str | None = None
    reason: str | None = None
    override: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The stored object (``from_`` is stored as ``from``; the id is the key, not a field).
        ``override`` (a forced move that broke registered consumers) only when there is one."""
        stored = {"pointer": self.pointer, "from": self.from_, "to": self.to, "at": self.at, "by": dict(self.by),
                  "flow_run_id": self.flow_run_id, "reason": self.reason}
        if self.override is not None:
            stored["override"] = self.override
        return stored

    @classmethod
    def from_json(cls, entry_id: str, data: Any) -> HistoryEntry:
        """The entry ``entry_id`` from its stored object; a one-line StoreError names what is wrong."""
        check_history_id(entry_id)
        if not isinstance(data, dict) or not set(_FIELDS) <= set(data):
            got = sorted(map(str, data))[:10] if isinstance(data, dict) else type(data).__name__
            raise StoreError(f"Expected a history entry with the fields {list(_FIELDS)}. Received {short_repr(got, 200)}.")
        by = data["by"]
        strings = {k: data[k] for k in ("from", "flow_run_id", "reason")}
        if (
            not isinstance(data["pointer"], str) or not isinstance(data["to"], str) or not isinstance(data["at"], str)
            or any(v is not None and not isinstance(v, str) for v in strings.values())
            or not isinstance(by, dict) or any(v is not None and not isinstance(v, str) for v in by.values())
        ):
            raise StoreError(
                "Expected a history entry whose pointer, to and at are strings, from, flow_run_id and reason "
                f"strings or null, and by an object of strings. Received {short_repr(data, 200)}."
            )
        _check_pointer(data["pointer"])
        check_name(data["to"], "version")
        if data["from"] is not None:
            check_name(data["from"], "version")
        override = data.get("override")
        return cls(entry_id, data["pointer"], data["from"], data["to"], data["at"],
                   {str(k): v for k, v in by.items()}, data["flow_run_id"], data["reason"],
                   override if isinstance(override, dict) else None)


def new_entry(
    pointer: str, from_: str | None, to: str, *, reason: str | None = None, ts: float | None = None,
    override: dict[str, Any] | None = None,
) -> HistoryEntry:
    """The entry of a move of ``pointer`` from ``from_`` to ``to``, now (or at ``ts``), by this
    user and host, in the flow run of ``PREFECT__FLOW_RUN_ID`` if any."""
    ts = now() if ts is None else ts
    stamp = dt.datetime.fromtimestamp(ts, tz=dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    flow_run = os.environ.get(FLOW_RUN_ENV) or None
    return HistoryEntry(
        id=f"{stamp}-{secrets.token_hex(4)}",
        pointer=_check_pointer(pointer),
        from_=from_,
        to=to,
        at=iso(ts),
        by=actor(),
        flow_run_id=flow_run[:200] if flow_run else None,
        reason=check_reason(reason),
        override=override,
    )


def _last_move(pointer_value: Any) -> HistoryEntry | None:
    """The ``last_move`` a pointer object carries, or ``None`` (absent or not an entry)."""
    move = pointer_value.get("last_move") if isinstance(pointer_value, dict) else None
    if not isinstance(move, dict):
        return None
    try:
        return HistoryEntry.from_json(str(move.get("id")), {k: v for k, v in move.items() if k != "id"})
    except StoreError:
        return None


def _write_entry(store: Store, name: str, entry: HistoryEntry) -> None:
    with contextlib.suppress(ObjectExistsError):  # written already (by us on a retry, or a repair)
        store.put_json(history_key(name, entry.id), entry.to_json())


def _announce(store: Store, name: str, entry: HistoryEntry) -> None:
    """Emit ``kerascut.backbone.promoted`` for a move (only when an emitter is active: reading
    the manifest costs a request). Never raises."""
    if not events.enabled():
        return
    from kerascut_core.publishing.listing import read_manifest

    try:
        manifest: Any = read_manifest(store, name, entry.to)
    except Exception:  # the pointer moved all the same; announce it without the model's sha256
        manifest = {"name": name, "version": entry.to}
    events.backbone_promoted(store, manifest, pointer=entry.pointer, previous=entry.from_, reason=entry.reason,
                             manifest_uri=store.uri(manifest_key(name, entry.to)),
                             verdict=lambda: verdict_against(store, name, entry.from_, manifest))


def verdict_against(store: Store, name: str, previous: str | None, manifest: Any) -> dict[str, Any] | None:
    """``{"verdict", "reasons", "compared_with"}`` of ``manifest`` against version ``previous``
    (manifests only, no model loaded), or ``None`` when there is nothing to compare. Never raises."""
    from kerascut_core.publishing.diff import diff_manifests
    from kerascut_core.publishing.listing import read_manifest
    from kerascut_core.publishing.manifest import Manifest

    if previous is None or not isinstance(manifest, Manifest):
        return None
    try:
        result = diff_manifests(read_manifest(store, name, previous), manifest)
    except Exception:  # an event is never worth failing a move
        return None
    return {"verdict": result.verdict, "reasons": result.reasons, "compared_with": previous}


def move_pointer(
    store: Store,
    name: str,
    pointer: str,
    key: str,
    build: Callable[[dict[str, Any] | None], dict[str, Any] | None],
    *,
    reason: str | None = None,
) -> tuple[Any, HistoryEntry | None]:
    """Move ``pointer`` (``latest`` or an alias, stored at ``key``) and record the move.

    ``build(current)`` gets the pointer as it is at write time (``None`` when missing or not an
    object) and returns the new object (with its ``"version"``), or ``None`` to leave it; an
    ``"override"`` key in it (a forced move that broke consumers) goes into the history entry,
    not the pointer. It may
    run several times (each lost race re-reads). Returns what is stored after, and the entry
    appended (``None`` when ``build`` left the pointer as it was).
    """
    reason = check_reason(reason)
    applied: list[tuple[dict[str, Any] | None, HistoryEntry]] = []

    def fn(current: Any) -> Any:
        applied.clear()
        seen = current if isinstance(current, dict) else None
        new = build(seen)
        if new is None:
            return None
        override = new.pop("override", None)
        before = seen.get("version") if seen else None
        entry = new_entry(pointer, before if isinstance(before, str) else None, new["version"], reason=reason,
                          override=override)
        applied.append((seen, entry))
        return {**new, "last_move": {"id": entry.id, **entry.to_json()}}

    stored = store.update_json(key, fn)
    if not applied:
        return stored, None
    _, entry = applied[0]
    _announce(store, name, entry)
    try:
        _write_entry(store, name, entry)
    except StoreError as exc:
        raise StoreError(
            f"Moved {name}@{pointer} to {entry.to}, but could not write its history entry {entry.id} "
            f"({' '.join(str(exc).split())[:300]}). The entry is kept in the pointer's last_move until the "
            "next move; check the store and move the pointer again to record it."
        ) from None
    return stored, entry


def _read_entry(store: Store, key: str) -> HistoryEntry:
    entry_id = key.rsplit("/", 1)[-1].removesuffix(".json")
    parsed = parse_json(store.get_bytes(key, max_bytes=_MAX_ENTRY_BYTES), store.uri(key))
    try:
        return HistoryEntry.from_json(entry_id, parsed)
    except StoreError as exc:
        raise StoreError(f"Cannot read {store.uri(key)}: {exc}") from None


def read_history(store: Store, name: str) -> tuple[list[HistoryEntry], list[str]]:
    """Every recorded move of ``name``'s pointers, oldest first, and one line per entry skipped.

    A move whose entry is not written yet (its writer died right after moving the pointer) is
    included from the pointer's ``last_move``.
    """
    directory = history_dir(name)
    scan = store.scan(directory)
    problems = [f"skipped {where}: {why}" for where, why in scan.skipped]
    entries: dict[str, HistoryEntry] = {}
    for obj in scan.objects:
        if obj.key.count("/") != 2 or not obj.key.endswith(".json"):
            problems.append(f"skipped {store.uri(obj.key)}: not a history entry kerascut writes")
            continue
        try:
            entry = _read_entry(store, obj.key)
        except StoreError as exc:
            problems.append(str(exc))
            continue
        entries[entry.id] = entry
    pointers = [latest_key(name)]
    with contextlib.suppress(StoreError):
        pointers += [k for k in store.list(aliases_dir(name)) if k.count("/") == 2 and k.endswith(".json")]
    for key in pointers:
        try:
            pending = _last_move(store.read_json(key))
        except ObjectNotFoundError:
            continue
        except StoreError as exc:
            problems.append(str(exc))
            continue
        except (ValueError, RecursionError, TypeError) as exc:  # a parse the store did not bound
            problems.append(f"Cannot read {store.uri(key)}: not a pointer kerascut writes ({type(exc).__name__}).")
            continue
        if pending is not None and pending.id not in entries:
            entries[pending.id] = pending
    return [entries[k] for k in sorted(entries)], problems
