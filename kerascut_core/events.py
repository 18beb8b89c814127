"""Events for downstream automation: a backbone was published, a pointer moved, a run failed.

The core builds each event as a plain dict and hands it to the registered *emitters*; it never
imports Prefect. kerascut's Prefect emitter (``kerascut.flows.events``, through the
``kerascut.events`` entry-point group) sends them as Prefect events, so a deployment trigger
can start a training flow on ``kerascut.backbone.published``.

- ``kerascut.backbone.published``: a new version was committed (:func:`backbone_published`);
- ``kerascut.backbone.promoted``: ``latest`` or an alias moved: a publish's update, ``kerascut
  promote``, an alias set or moved, a rollback (:func:`backbone_promoted`);
- ``kerascut.backbone.failed``: a backbone failed in the pipeline, a failed validation included
  (:func:`backbone_failed`);
- ``kerascut.backbone.held``: a refresh committed a version but held ``latest`` where it was,
  because the version breaks registered consumers of ``latest`` (:func:`backbone_held`).

Each event::

    {"event": "kerascut.backbone.published", "id": "<uuid4>", "occurred": "<ISO 8601, UTC>",
     "resource": {"id": "kerascut.backbone.mnv2", "name": "mnv2", "kerascut.version": "3f9a0c1d2e4b5a69"},
     "related": [{"id": "kerascut.store.s3://team/backbones", "role": "store", "name": "s3://team/backbones"}],
     "payload": {"store": "s3://team/backbones", "name": "mnv2", "version": "3f9a0c1d2e4b5a69",
                 "manifest_uri": "s3://team/backbones/mnv2/3f9a0c1d2e4b5a69/manifest.json",
                 "model_sha256": "<sha256 of the model artifact>"}}

A resource's ``id``, ``name`` and ``role`` are Prefect's ``prefect.resource.id``, ``.name`` and
``.role`` (the Prefect emitter renames them; the core's events name no product); every other key
is a label. ``promoted`` adds ``pointer`` (``latest`` or the alias), ``alias`` (the alias, ``None`` for
``latest``; also the resource label ``kerascut.alias``), ``previous_version``, ``reason``;
``failed`` has ``version`` (or ``None``), ``reason`` and no manifest. ``published`` and
``promoted`` carry ``verdict`` (``identical``, ``compatible``, ``breaking``, or ``None`` when there
is no previous version), ``verdict_reasons`` and ``compared_with`` (the version the pointer named
before: for ``published``, the version ``latest`` named at the commit). ``held`` has
``version`` (committed), ``latest`` (where it stays), ``consumers`` (``[{"consumer", "breaks"}]``)
and ``reason``.

An emitter is a callable taking the event dict, with two optional methods: ``active()`` (is
there anywhere to send to now? checked once for every event, so it must be cheap) and
``flush(timeout)``. Emission never fails the operation: an emitter that raises becomes one
:class:`EventWarning`. Entry points are looked up on the first event only, and an event is
built only when some emitter is active: without a configured API, the first event of a
process costs the entry-point scan and each one after a check of the emitters,
and nothing of Prefect is imported.

    >>> seen = []
    >>> unregister = register(seen.append)
    >>> taken = backbone_failed("./backbones", "mnv2", reason="validation failed: max_abs_diff=0.3")
    >>> seen[0]["event"], seen[0]["resource"]["id"], seen[0]["payload"]["reason"]
    ('kerascut.backbone.failed', 'kerascut.backbone.mnv2', 'validation failed: max_abs_diff=0.3')
    >>> unregister()
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from kerascut_core.text import one_line

__all__ = [
    "ENTRY_POINT_GROUP",
    "FAILED",
    "HELD",
    "PROMOTED",
    "PUBLISHED",
    "EventWarning",
    "backbone_failed",
    "backbone_held",
    "backbone_promoted",
    "backbone_published",
    "emit",
    "enabled",
    "flush",
    "make_event",
    "register",
    "store_resource",
]

PUBLISHED = "kerascut.backbone.published"
PROMOTED = "kerascut.backbone.promoted"
FAILED = "kerascut.backbone.failed"
HELD = "kerascut.backbone.held"
#: the entry-point group whose items (``name = "module:emitter"``) receive every event
ENTRY_POINT_GROUP = "kerascut.events"
#: the longest ``reason`` an event carries (longer ones are cut)
_REASON_MAX = 2000

Emitter = Callable[[dict[str, Any]], Any]

_lock = threading.Lock()
_registered: list[Emitter] = []
_discovered: list[Emitter] | None = None


class EventWarning(UserWarning):
    """An event could not be handed to an emitter (the operation itself went on)."""


def _warn(message: str) -> None:
    warnings.warn(message, EventWarning, stacklevel=3)


def register(emitter: Emitter) -> Callable[[], None]:
    """Add ``emitter`` (a callable taking the event dict); return the function that removes it."""
    with _lock:
        _registered.append(emitter)

    def unregister() -> None:
        with _lock:
            if emitter in _registered:
                _registered.remove(emitter)

    return unregister


def _entry_point_emitters() -> list[Emitter]:
    """The emitters of the ``kerascut.events`` entry points, loaded once per process."""
    global _discovered
    if _discovered is None:
        from importlib.metadata import entry_points

        found: list[Emitter] = []
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            try:
                loaded = ep.load()
                if not callable(loaded):
                    raise TypeError(f"{type(loaded).__name__} is not callable")
            except Exception as exc:
                _warn(f"Events: could not load the emitter {ep.value!r} ({ENTRY_POINT_GROUP} entry point): "
                      f"{one_line(exc, 300)}. Reinstall the package that provides it.")
                continue
            found.append(loaded)
        _discovered = found
    return _discovered


def _is_active(emitter: Emitter) -> bool:
    check = getattr(emitter, "active", None)
    if check is None:
        return True
    try:
        return bool(check())
    except Exception as exc:
        _warn(f"Events: the emitter {_label(emitter)} could not tell whether it is active: {one_line(exc, 300)}.")
        return False


def _label(emitter: Emitter) -> str:
    return getattr(emitter, "__qualname__", None) or type(emitter).__qualname__


def _active() -> list[Emitter]:
    with _lock:
        candidates = [*_registered]
    return [e for e in [*candidates, *_entry_point_emitters()] if _is_active(e)]


def enabled() -> bool:
    """Whether an event emitted now would reach any emitter (cheap; callers use it to skip
    reading what only an event needs)."""
    return bool(_active())


def store_resource(store_uri: str) -> dict[str, str]:
    """The related resource that names a store."""
    return {"id": f"kerascut.store.{store_uri}", "role": "store", "name": store_uri}


def make_event(event: str, store_uri: str, name: str, payload: Mapping[str, Any],
               labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The plain event dict of ``event`` about backbone ``name`` of the store ``store_uri``."""
    resource = {"id": f"kerascut.backbone.{name}", "name": name}
    resource.update({k: v for k, v in (labels or {}).items() if isinstance(v, str)})
    return {
        "event": event,
        "id": str(uuid.uuid4()),
        "occurred": dt.datetime.now(dt.timezone.utc).isoformat(),
        "resource": resource,
        "related": [store_resource(store_uri)],
        "payload": {"store": store_uri, "name": name, **payload},
    }


def emit(event: dict[str, Any]) -> int:
    """Hand ``event`` to every active emitter; return how many took it. Never raises: an
    emitter that fails becomes an :class:`EventWarning`."""
    return _deliver(_active(), event)


def _deliver(emitters: list[Emitter], event: dict[str, Any]) -> int:
    """Hand ``event`` to ``emitters`` (already found active); how many took it."""
    taken = 0
    for emitter in emitters:
        try:
            emitter(event)
        except Exception as exc:
            _warn(f"Could not send the event {event.get('event')} ({_label(emitter)}): "
                  f"{one_line(exc, 300)}.")
        else:
            taken += 1
    return taken


def flush(timeout: float = 10.0) -> None:
    """Ask every active emitter with a ``flush`` to deliver what it holds (a short-lived process
    calls this before it exits). Never raises."""
    for emitter in _active():
        method = getattr(emitter, "flush", None)
        if method is None:
            continue
        try:
            method(timeout)
        except Exception as exc:
            _warn(f"Could not deliver the pending events ({_label(emitter)}): {type(exc).__name__}: {one_line(exc, 300)}.")


def _store_uri(store: Any) -> str:
    return store if isinstance(store, str) else str(store.root_uri)


def _model_sha256(manifest: Any) -> str | None:
    """The sha256 of the artifact a consumer loads (the ``keras`` one, else the first)."""
    if isinstance(manifest, Mapping):
        artifacts = [a for a in manifest.get("artifacts") or [] if isinstance(a, Mapping)]
        chosen = next((a for a in artifacts if a.get("format") == "keras"), artifacts[0] if artifacts else None)
        sha = chosen.get("sha256") if chosen else None
        return sha if isinstance(sha, str) else None
    primary = getattr(manifest, "primary", None)
    return getattr(primary, "sha256", None)


def _field(manifest: Any, key: str) -> str:
    value = manifest.get(key) if isinstance(manifest, Mapping) else getattr(manifest, key, None)
    return str(value)


Verdict = Mapping[str, Any] | Callable[[], Mapping[str, Any] | None] | None


def _verdict(given: Verdict) -> dict[str, Any]:
    """The verdict fields of an event (``None`` everywhere when nothing was compared); a
    callable is asked only once the event is built (only when some emitter is active)."""
    verdict = (given() if callable(given) else given) or {}
    reasons = verdict.get("reasons")
    return {"verdict": verdict.get("verdict"), "compared_with": verdict.get("compared_with"),
            "verdict_reasons": [one_line(str(r), 300) for r in reasons[:50]] if isinstance(reasons, list) else []}


def backbone_published(store: Any, manifest: Any, *, manifest_uri: str, verdict: Verdict = None) -> int:
    """Emit ``kerascut.backbone.published`` for the committed ``manifest`` (a
    :class:`~kerascut_core.publishing.manifest.Manifest` or its dict) in ``store`` (a store or
    its root URI), found at ``manifest_uri``. Returns how many emitters took it; never raises."""
    try:
        emitters = _active()  # each emitter's active() once for this event
        if not emitters:
            return 0
        name, version = _field(manifest, "name"), _field(manifest, "version")
        payload = {"version": version, "manifest_uri": manifest_uri,
                   "model_sha256": _model_sha256(manifest), **_verdict(verdict)}
        event = make_event(PUBLISHED, _store_uri(store), name, payload, {"kerascut.version": version})
    except Exception as exc:
        _warn(f"Could not build the event {PUBLISHED}: {type(exc).__name__}: {one_line(exc, 300)}.")
        return 0
    return _deliver(emitters, event)


def backbone_promoted(
    store: Any,
    manifest: Any,
    *,
    pointer: str = "latest",
    previous: str | None = None,
    reason: str | None = None,
    manifest_uri: str,
    verdict: Verdict = None,
) -> int:
    """Emit ``kerascut.backbone.promoted``: ``pointer`` (``latest`` or an alias) of the backbone
    now names ``manifest``'s version, in place of ``previous``. Returns how many emitters took
    it; never raises."""
    try:
        emitters = _active()  # each emitter's active() once for this event
        if not emitters:
            return 0
        name, version = _field(manifest, "name"), _field(manifest, "version")
        alias = None if pointer == "latest" else pointer
        payload = {"version": version, "manifest_uri": manifest_uri,
                   "model_sha256": _model_sha256(manifest), "pointer": pointer, "alias": alias,
                   "previous_version": previous, "reason": None if reason is None else reason[:_REASON_MAX],
                   **_verdict(verdict)}
        labels = {"kerascut.version": version, "kerascut.pointer": pointer, **({"kerascut.alias": alias} if alias else {})}
        event = make_event(PROMOTED, _store_uri(store), name, payload, labels)
    except Exception as exc:
        _warn(f"Could not build the event {PROMOTED}: {type(exc).__name__}: {one_line(exc, 300)}.")
        return 0
    return _deliver(emitters, event)


def backbone_failed(store: Any, name: str, *, version: str | None = None, reason: str) -> int:
    """Emit ``kerascut.backbone.failed``: backbone ``name`` (``version`` when known) failed in the
    pipeline because of ``reason`` (one line is kept). Returns how many emitters took it; never
    raises."""
    try:
        emitters = _active()  # each emitter's active() once for this event
        if not emitters:
            return 0
        payload = {"version": version, "manifest_uri": None, "model_sha256": None,
                   "reason": one_line(str(reason), _REASON_MAX)}
        event = make_event(FAILED, _store_uri(store), name, payload, {"kerascut.version": version} if version else None)
    except Exception as exc:
        _warn(f"Could not build the event {FAILED}: {type(exc).__name__}: {one_line(exc, 300)}.")
        return 0
    return _deliver(emitters, event)


def backbone_held(store: Any, name: str, *, version: str, latest: str | None, consumers: list[Mapping[str, Any]],
                  reason: str) -> int:
    """Emit ``kerascut.backbone.held``: ``version`` of ``name`` was committed, but ``latest``
    stays on ``latest`` because the version breaks ``consumers`` (``[{"consumer", "breaks"}]``).
    Returns how many emitters took it; never raises."""
    try:
        emitters = _active()
        if not emitters:
            return 0
        payload = {"version": version, "latest": latest, "manifest_uri": None, "model_sha256": None,
                   "consumers": [{"consumer": str(c.get("consumer")),
                                  "breaks": [one_line(str(b), 300) for b in list(c.get("breaks") or [])[:50]]}
                                 for c in consumers[:100]],
                   "reason": one_line(str(reason), _REASON_MAX)}
        event = make_event(HELD, _store_uri(store), name, payload, {"kerascut.version": version})
    except Exception as exc:
        _warn(f"Could not build the event {HELD}: {type(exc).__name__}: {one_line(exc, 300)}.")
        return 0
    return _deliver(emitters, event)
