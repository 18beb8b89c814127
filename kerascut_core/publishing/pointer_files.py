"""Reading the pointers of a backbone: ``latest.json`` and ``aliases/<alias>.json``.

The read half of :mod:`kerascut_core.publishing.pointers` (which moves them), on its own so that
listings, the store-root check and the consumer API read pointers without depending on the
moves (which read listings). A pointer file is data someone may have edited: anything but an
object with a string ``version`` that is a version name is one line naming the file and the
``kerascut promote`` that repairs it; a listing skips such an alias and reports it.

``@x`` in a reference is the alias ``x`` when ``<name>/aliases/x.json`` exists, else the version
``x`` (:func:`resolve_pointer`); no alias may look like a version, so ``@<version>`` always means
that version, and ``@latest`` is ``latest.json``.

    >>> read_latest(open_store("./backbones"), "mnv2")                                  # doctest: +SKIP
    '3f9a0c1d2e4b5a69'
"""

from __future__ import annotations

from typing import Any

from kerascut_core._names import short_repr as shown
from kerascut_core.errors import ObjectNotFoundError, StoreError
from kerascut_core.publishing.layout import (
    LATEST_ALIAS,
    alias_key,
    aliases_dir,
    check_alias,
    latest_key,
    looks_like_version,
)
from kerascut_core.stores import Store
from kerascut_core.uris import check_name

__all__ = ["HISTORY_LIMIT", "read_alias", "read_latest", "resolve_pointer", "scan_aliases"]

#: entries an older ``latest.json`` kept inline in ``history`` (read only; moves are recorded in
#: ``<name>/history/``)
HISTORY_LIMIT = 100


def _pointed(store: Store, name: str, key: str, data: Any, pointer: str) -> str:
    """The version a pointer object names; a one-line StoreError when it names none."""
    fix = f"`kerascut promote {store.uri(name)} VERSION" + ("`" if pointer == LATEST_ALIAS else f" --alias {pointer}`")
    version = data.get("version") if isinstance(data, dict) else None
    if not isinstance(version, str):
        raise StoreError(
            f"Cannot read {store.uri(key)}: expected an object with a string \"version\". Received "
            f"{'a version of type ' + type(version).__name__ if isinstance(data, dict) else 'a ' + type(data).__name__}. "
            f"Repair it with {fix}."
        )
    try:
        return check_name(version, "version")
    except StoreError:
        raise StoreError(
            f"Cannot read {store.uri(key)}: its version {shown(version)} is not a version name. Repair it with {fix}."
        ) from None


def _read_pointer(store: Store, name: str, key: str, pointer: str) -> Any:
    """The parsed pointer object at ``key``; a parse the store did not bound (too deep, a huge
    integer) is a one-line StoreError naming the file."""
    try:
        return store.read_json(key)
    except (ValueError, RecursionError, TypeError) as exc:
        fix = f"`kerascut promote {store.uri(name)} VERSION" + ("`" if pointer == LATEST_ALIAS else f" --alias {pointer}`")
        raise StoreError(
            f"Cannot read {store.uri(key)}: not a pointer kerascut writes ({type(exc).__name__}). Repair it with {fix}."
        ) from None


def read_latest(store: Store, name: str) -> str | None:
    """The version ``latest.json`` names, or ``None`` when nothing was published yet."""
    key = latest_key(name)
    try:
        data = _read_pointer(store, name, key, LATEST_ALIAS)
    except ObjectNotFoundError:
        return None
    return _pointed(store, name, key, data, LATEST_ALIAS)


def read_alias(store: Store, name: str, alias: str) -> str | None:
    """The version the alias names, or ``None`` when there is no such alias (``latest`` reads
    ``latest.json``)."""
    if alias == LATEST_ALIAS:
        return read_latest(store, name)
    key = alias_key(name, alias)
    try:
        data = _read_pointer(store, name, key, alias)
    except ObjectNotFoundError:
        return None
    return _pointed(store, name, key, data, alias)


def scan_aliases(store: Store, name: str) -> tuple[dict[str, str], list[str]]:
    """The named aliases of ``name`` (alias -> version, sorted by alias), and one line per entry
    of ``<name>/aliases/`` that was skipped (unreadable, or not an alias kerascut writes)."""
    scan = store.scan(aliases_dir(name))
    problems = [f"skipped {where}: {why}" for where, why in scan.skipped]
    found: dict[str, str] = {}
    for obj in scan.objects:
        leaf = obj.key.split("/", 2)[-1]
        alias = leaf.removesuffix(".json")
        try:
            if "/" in leaf or alias == leaf:
                raise StoreError("not an alias object")
            check_alias(alias)
        except StoreError:
            problems.append(f"skipped {store.uri(obj.key)}: not an alias kerascut writes")
            continue
        try:
            found[alias] = _pointed(store, name, obj.key, _read_pointer(store, name, obj.key, alias), alias)
        except ObjectNotFoundError:
            continue  # removed meanwhile
        except StoreError as exc:
            problems.append(str(exc))
    return dict(sorted(found.items())), problems


def resolve_pointer(store: Store, name: str, ref: str) -> tuple[str, str | None]:
    """``(version, pointer)`` for the ``x`` of ``<name>@x``: ``pointer`` is ``"latest"`` or the
    alias followed, ``None`` when ``x`` is taken as a version (no alias of that name exists)."""
    if ref == LATEST_ALIAS:
        found = read_latest(store, name)
        if found is None:
            raise ObjectNotFoundError(
                f"Cannot resolve {store.uri(name)}@latest: no {latest_key(name)} in {store.root_uri}. "
                f"Publish it first, or run `kerascut ls {store.root_uri}` to see what is there."
            )
        return found, LATEST_ALIAS
    check_name(ref, "version")
    if not looks_like_version(ref):
        try:
            check_alias(ref)
        except StoreError:
            return ref, None  # a name no alias can have: a version
        found = read_alias(store, name, ref)
        if found is not None:
            return found, ref
    return ref, None
