"""The pointers of a backbone: ``latest.json`` (built in) and its named aliases.

``<name>/latest.json`` and ``<name>/aliases/<alias>.json`` (keys in
:mod:`kerascut_core.publishing.layout`) are the only mutable objects of a backbone. Each names a
committed, validated version (``version``, ``manifest``, ``updated_at``, ``previous``; latest.json
also ``pinned``). They move with a conditional read-modify-write (rule 6 of the protocol in
:mod:`kerascut_core.publishing.commit`): concurrent writers retry on a lost precondition, so no
update is lost, and every move appends one entry to the backbone's pointer history
(:func:`kerascut_core.publishing.history.move_pointer`), the one record of moves (an inline
``history`` list in an older ``latest.json`` is read, never carried forward). Every move holds
the claim of the version it moves onto, so it excludes retention removing that version
(:mod:`kerascut_core.publishing.exclusion`): a pointer is never left on a deleted version. :func:`promote` pins
``latest``, so a scheduled refresh never undoes a person's rollback; aliases are moved by
:func:`promote` only.

Reading a pointer (:func:`read_latest`, :func:`read_alias`, :func:`scan_aliases`,
:func:`resolve_pointer`) is :mod:`kerascut_core.publishing.pointer_files`, which listings and the
root check use without the move half; the names are re-exported here.

    >>> update_latest(open_store("./backbones"), "mnv2", version)                       # doctest: +SKIP
    >>> promote(open_store("./backbones"), "mnv2", "3f9a0c1d2e4b5a69")                  # doctest: +SKIP
    >>> promote(open_store("./backbones"), "mnv2", "3f9a0c1d2e4b5a69", alias="prod")    # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from kerascut_core._names import did_you_mean, format_options
from kerascut_core.errors import (
    IntegrityError,
    ObjectNotFoundError,
    PublishRefusedError,
    StoreError,
)
from kerascut_core.publishing._clock import iso
from kerascut_core.publishing.exclusion import moving_onto
from kerascut_core.publishing.gate import Gate, refusal
from kerascut_core.publishing.history import move_pointer
from kerascut_core.publishing.layout import (
    LATEST_ALIAS,
    alias_key,
    check_alias,
    latest_key,
    manifest_key,
    manifest_ref,
)
from kerascut_core.publishing.listing import list_versions, read_manifest, verify_version
from kerascut_core.publishing.pointer_files import (
    HISTORY_LIMIT,
    read_alias,
    read_latest,
    resolve_pointer,
    scan_aliases,
)
from kerascut_core.publishing.root import ensure_store_root
from kerascut_core.stores import Store
from kerascut_core.uris import check_name

__all__ = [
    "HISTORY_LIMIT",
    "promote",
    "read_alias",
    "read_latest",
    "resolve_pointer",
    "scan_aliases",
    "update_latest",
]

def update_latest(
    store: Store,
    name: str,
    version: str,
    *,
    run_id: str | None = None,
    promoted: bool = False,
    pin: bool = False,
    reason: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Point ``<name>/latest.json`` at a committed version, conditionally; return what is stored.

    The update is a read-modify-write with ``If-Match`` (S3) or a compare under a lock (local):
    a writer that loses the race re-reads and re-applies, so concurrent updates are never lost
    (each is recorded in ``history``). Refuses a version without a manifest or whose validation
    did not pass. A no-op when ``latest`` already names ``version``.

    A ``latest`` pinned by :func:`promote` (a person rolled back or forward) is left alone by
    automatic updates: the returned dict then still names the pinned version (compare its
    ``"version"`` with yours) and says ``"pinned": true``. A pin on a version that is no longer
    committed (its manifest is gone) holds nothing: the update repairs it.

    The move holds ``version``'s claim (:func:`~kerascut_core.publishing.exclusion.moving_onto`),
    so retention cannot remove the version while the pointer moves onto it.

    Every move appends an entry to the pointer history (``reason`` goes into it); a no-op
    appends none.

    A move that would break a registered consumer of ``latest``
    (:mod:`kerascut_core.publishing.gate`) raises :class:`ConsumerBreakError` naming each
    consumer and break; ``force=True`` (with a ``reason``) moves anyway and the history entry
    records the override and the consumers it broke.
    """
    try:
        read_manifest(store, name, version)
    except IntegrityError as exc:
        raise PublishRefusedError(f"Cannot point latest at {name}/{version}: {exc}") from None
    _check_force(name, LATEST_ALIAS, force, reason)
    ensure_store_root(store)
    gate = Gate(store, name, LATEST_ALIAS)

    def move(current: dict[str, Any] | None) -> dict[str, Any] | None:
        current = current or {}
        held = current.get("version")
        if not promoted and held == version:
            return None
        if not promoted and current.get("pinned") and isinstance(held, str) and _committed(store, name, held):
            return None  # a person chose this version; automation does not undo it
        return _gated(gate, name, LATEST_ALIAS, version, force, {
            "version": version,
            "manifest": manifest_ref(version),
            "updated_at": iso(),
            "previous": held if isinstance(held, str) else None,
            "pinned": bool(promoted and pin),
            "run_id": run_id,
        })

    with moving_onto(store, name, version, LATEST_ALIAS):
        stored, _ = move_pointer(store, name, LATEST_ALIAS, latest_key(name), move, reason=reason)
    return stored


def _committed(store: Store, name: str, version: str) -> bool:
    """Whether ``version`` still has a manifest (a name that is no version is not committed)."""
    try:
        return store.exists(manifest_key(name, check_name(version, "version")))
    except StoreError:
        return True  # cannot tell (a link, an unreadable entry): keep the person's pin


_FIX = ("Register the consumer again on what this version offers (`kerascut consumers add`), or pass --force "
        "--reason TEXT to move anyway (the history records the override).")


def _check_force(name: str, pointer: str, force: bool, reason: str | None) -> None:
    if force and not (isinstance(reason, str) and reason.strip()):
        raise PublishRefusedError(
            f"Expected a reason with --force (moving {name}@{pointer} past its consumers is recorded with why). "
            "Received none; pass --reason TEXT."
        )


def _gated(gate: Gate, name: str, pointer: str, version: str, force: bool, new: dict[str, Any]) -> dict[str, Any]:
    """``new`` when ``version`` breaks no consumer of the pointer; with ``force`` also when it
    does (the override goes into the history entry); else the one-line refusal."""
    broken = gate.check(version)
    if broken:
        if not force:
            raise refusal(name, pointer, version, broken, _FIX)
        new["override"] = {"forced": True, "broke": [b.to_json() for b in broken]}
    return new


def _move_alias(
    store: Store, name: str, alias: str, version: str, reason: str | None, force: bool = False
) -> dict[str, Any]:
    _check_force(name, alias, force, reason)
    ensure_store_root(store)
    gate = Gate(store, name, alias)

    def move(current: dict[str, Any] | None) -> dict[str, Any]:
        previous = (current or {}).get("version")
        return _gated(gate, name, alias, version, force, {
            "version": version,
            "manifest": manifest_ref(version),
            "updated_at": iso(),
            "previous": previous if isinstance(previous, str) else None,
        })

    with moving_onto(store, name, version, alias):
        stored, _ = move_pointer(store, name, alias, alias_key(name, alias), move, reason=reason)
    return stored


def promote(
    store: Store,
    name: str,
    version: str,
    *,
    pin: bool = True,
    alias: str | None = None,
    reason: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Point ``latest`` (or the named ``alias``) at an existing, validated version; return what is
    stored (``"previous"`` is the version it replaced).

    The version must be committed, its manifest must check (:func:`read_manifest`) and every
    artifact must match it: sizes, and sha256 hashed from the bytes (:func:`verify_version` with
    ``from_bytes=True``: S3 metadata can be rewritten along with an object). By default
    ``latest`` is then pinned: scheduled refreshes publish new versions but leave ``latest``
    where a person put it, until a promote with ``pin=False``. ``pin`` applies to ``latest`` only; aliases are only
    ever moved by a promote. ``reason`` is recorded in the pointer history.

    A move that would break a registered consumer of the pointer is refused
    (:class:`ConsumerBreakError`) unless ``force=True`` with a ``reason``; the history entry
    then records the override and the consumers it broke.
    """
    pointer = LATEST_ALIAS if alias is None or alias == LATEST_ALIAS else check_alias(alias)
    check_name(version, "version")
    try:
        read_manifest(store, name, version)
    except ObjectNotFoundError:
        known = [v.version for v in list_versions(store, name)]
        raise ObjectNotFoundError(
            f"Cannot promote {name}@{version}: no such published version in {store.root_uri}."
            + (did_you_mean(version, known) or (f" Published: {format_options(known)}." if known else " Nothing is published yet."))
        ) from None
    problems = verify_version(store, name, version, from_bytes=True)  # metadata can be rewritten with the bytes
    if problems:
        raise IntegrityError(f"Cannot promote {name}@{version}: {problems[0]}. Promote another version, or republish.")
    if pointer == LATEST_ALIAS:
        result = update_latest(store, name, version, promoted=True, pin=pin, reason=reason, force=force)
    else:
        result = _move_alias(store, name, pointer, version, reason, force)
    return result
