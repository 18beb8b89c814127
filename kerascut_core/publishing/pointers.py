"""The pointers: ``<name>/latest.json``, the one mutable object of a backbone.

``latest`` moves with a conditional read-modify-write (rule 6 of the protocol in
:mod:`kerascut_core.publishing.commit`): concurrent writers retry on a lost precondition, so no
update is lost, and it only ever names versions whose manifest exists. :func:`promote` pins
it, so a scheduled refresh never undoes a person's rollback.

    >>> update_latest(open_store("./backbones"), "mnv2", version)              # doctest: +SKIP
    >>> promote(open_store("./backbones"), "mnv2", "3f9a0c1d2e4b5a69")         # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from kerascut_core._names import short_repr as shown
from kerascut_core.errors import (
    IntegrityError,
    ObjectNotFoundError,
    PublishRefusedError,
    StoreError,
)
from kerascut_core.publishing._clock import iso
from kerascut_core.publishing.layout import latest_key, manifest_ref
from kerascut_core.publishing.listing import list_versions, read_manifest, verify_version
from kerascut_core.publishing.root import ensure_store_root
from kerascut_core.stores import Store
from kerascut_core.uris import check_name

__all__ = ["HISTORY_LIMIT", "promote", "read_latest", "update_latest"]

#: entries kept in ``latest.json``'s ``history``
HISTORY_LIMIT = 100


def read_latest(store: Store, name: str) -> str | None:
    """The version ``latest.json`` names, or ``None`` when nothing was published yet."""
    key = latest_key(name)
    try:
        data = store.read_json(key)
    except ObjectNotFoundError:
        return None
    version = data.get("version") if isinstance(data, dict) else None
    if not isinstance(version, str):
        raise StoreError(
            f"Cannot read {store.uri(key)}: expected an object with a string \"version\". Received "
            f"{'a version of type ' + type(version).__name__ if isinstance(data, dict) else 'a ' + type(data).__name__}. "
            f"Repair it with `kerascut promote {store.uri(name)} VERSION`."
        )
    try:
        return check_name(version, "version")
    except StoreError:
        raise StoreError(
            f"Cannot read {store.uri(key)}: its version {shown(version)} is not a version name. "
            f"Repair it with `kerascut promote {store.uri(name)} VERSION`."
        ) from None


def update_latest(
    store: Store,
    name: str,
    version: str,
    *,
    run_id: str | None = None,
    promoted: bool = False,
    pin: bool = False,
) -> dict[str, Any]:
    """Point ``<name>/latest.json`` at a committed version, conditionally; return what is stored.

    The update is a read-modify-write with ``If-Match`` (S3) or a compare under a lock (local):
    a writer that loses the race re-reads and re-applies, so concurrent updates are never lost
    (each is recorded in ``history``). Refuses a version without a manifest or whose validation
    did not pass. A no-op when ``latest`` already names ``version``.

    A ``latest`` pinned by :func:`promote` (a person rolled back or forward) is left alone by
    automatic updates: the returned dict then still names the pinned version (compare its
    ``"version"`` with yours) and says ``"pinned": true``.
    """
    try:
        read_manifest(store, name, version)
    except IntegrityError as exc:
        raise PublishRefusedError(f"Cannot point latest at {name}/{version}: {exc}") from None
    ensure_store_root(store)

    def move(current: Any) -> Any:
        current = current if isinstance(current, dict) else {}
        if not promoted and current.get("version") == version:
            return None
        if not promoted and current.get("pinned") and current.get("version"):
            return None  # a person chose this version; automation does not undo it
        entry = {"version": version, "at": iso(), "run_id": run_id, "promoted": promoted}
        history = [*current.get("history", []), entry][-HISTORY_LIMIT:]
        return {
            "version": version,
            "manifest": manifest_ref(version),
            "updated_at": entry["at"],
            "previous": current.get("version"),
            "pinned": bool(promoted and pin),
            "history": history,
        }

    return store.update_json(latest_key(name), move)


def promote(store: Store, name: str, version: str, *, pin: bool = True) -> dict[str, Any]:
    """Roll ``latest`` back or forward to an existing, validated version.

    By default ``latest`` is then pinned: scheduled refreshes publish new versions but leave
    ``latest`` where a person put it, until a promote with ``pin=False``.
    """
    try:
        read_manifest(store, name, version)
    except ObjectNotFoundError:
        known = [v.version for v in list_versions(store, name)]
        from kerascut_core._names import did_you_mean, format_options

        raise ObjectNotFoundError(
            f"Cannot promote {name}@{version}: no such published version in {store.root_uri}."
            + (did_you_mean(version, known) or (f" Published: {format_options(known)}." if known else " Nothing is published yet."))
        ) from None
    problems = verify_version(store, name, version, checksums=True)
    if problems:
        raise IntegrityError(f"Cannot promote {name}@{version}: {problems[0]}. Promote another version, or republish.")
    return update_latest(store, name, version, promoted=True, pin=pin)
