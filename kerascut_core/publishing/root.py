"""A store knows it is a store: the root marker, and the refusal of any other path.

The first publish into a store writes ``.kerascut-store.json`` at its root (the layout
version, when, and by which kerascut). Commands that read or clean a store (``ls``, ``pull``,
``promote``, ``gc``, ``load_backbone``) first check that the path they were given *is* a store
root, so ``kerascut gc s3://team`` (the parent of ``s3://team/prod``) or ``kerascut gc
./backbones/mnv2`` (a backbone inside the store) is refused with one line naming the nearest
store above or below, instead of taking the wrong level of the tree for the store's.

Stores written before the marker existed are recognised by their layout (a ``<name>/latest.json``
naming a version whose ``manifest.json`` is a kerascut manifest of that backbone and version)
and get a marker on their next write. Weaker traits are not enough: ``gc`` trusts the answer,
and a downloads directory with ``releases/latest.json``, or a build tool's ``.staging/``, is
not a store.

    >>> from kerascut_core.stores import open_store
    >>> require_store_root(open_store("./backbones"), "gc")   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading

from kerascut_core._names import short_repr as shown
from kerascut_core.errors import ObjectExistsError, ObjectNotFoundError, StoreError
from kerascut_core.publishing.layout import MARKER
from kerascut_core.publishing.listing import read_manifest
from kerascut_core.stores import Store
from kerascut_core.uris import check_name

__all__ = [
    "LAYOUT_VERSION",
    "MARKER",
    "StoreRootError",
    "ensure_store_root",
    "has_marker",
    "is_store_root",
    "require_store_root",
]

LAYOUT_VERSION = 1
_PROBE_CHILDREN = 64  # children looked at when probing a layout or a store below
_PROBE_PARENTS = 12  # levels looked at when searching a store above

_KNOWN: set[str] = set()  # store roots this process has seen a marker at (markers are never removed)
_LOCK = threading.Lock()


class StoreRootError(StoreError):
    """The path is not a kerascut store root (it may be inside one, or above one)."""


def has_marker(store: Store) -> bool:
    """Whether ``.kerascut-store.json`` exists at the store's root."""
    if store.root_uri in _KNOWN:
        return True
    try:
        found = store.head(MARKER) is not None
    except ObjectNotFoundError:
        return False
    if found:
        with _LOCK:
            _KNOWN.add(store.root_uri)
    return found


def _has_layout(store: Store) -> bool:
    """A store from before the marker: some ``<name>/latest.json`` naming a version whose
    manifest checks (a kerascut manifest of that name and version, validation passed)."""
    from kerascut_core.publishing.pointer_files import read_latest

    try:
        dirs = store.list_dirs("")
    except ObjectNotFoundError:
        return False
    for name in [d for d in dirs if not d.startswith(".")][:_PROBE_CHILDREN]:
        try:
            version = read_latest(store, check_name(name))
            if version is not None:
                read_manifest(store, name, version)
                return True
        except StoreError:
            continue  # no pointer, a bad one, a link or special file: not evidence of a store
    return False


def is_store_root(store: Store) -> bool:
    """Whether ``store`` is a kerascut store root: it has the marker, or the layout of one."""
    return has_marker(store) or _has_layout(store)


def _store_above(store: Store) -> Store | None:
    current = store.parent()
    for _ in range(_PROBE_PARENTS):
        if current is None:
            return None
        try:
            if has_marker(current):
                return current
        except StoreError:
            return None  # no permission to look further up: stop there
        current = current.parent()
    return None


def _store_below(store: Store) -> Store | None:
    try:
        dirs = store.list_dirs("")
    except StoreError:
        return None
    for name in [d for d in dirs if not d.startswith(".")][:_PROBE_CHILDREN]:
        child = store.child(name)
        try:
            if is_store_root(child):
                return child
        except StoreError:
            continue
    return None


def require_store_root(store: Store, action: str) -> None:
    """Raise :class:`StoreRootError` unless ``store`` is a store root; name the nearest one."""
    store.check()
    if is_store_root(store):
        return
    above = _store_above(store)
    if above is not None:
        inside = store.root_uri[len(above.root_uri) :].strip("/")
        what = f"the backbone {shown(inside)} of" if "/" not in inside else f"{shown(inside)} inside"
        raise StoreRootError(
            f"Cannot {action} {shown(store.root_uri)}: it is not a kerascut store root but {what} the store "
            f"{shown(above.root_uri)}. Pass the store root: {shown(above.root_uri)}."
        )
    below = _store_below(store)
    if below is not None:
        raise StoreRootError(
            f"Cannot {action} {shown(store.root_uri)}: it is not a kerascut store root; it holds the store "
            f"{shown(below.root_uri)}. Pass the store root: {shown(below.root_uri)}."
        )
    raise StoreRootError(
        f"Cannot {action} {shown(store.root_uri)}: it is not a kerascut store (no {MARKER} and no "
        "store layout). Check the path; a store is the directory or s3:// prefix given as `store:` in the config."
    )


def ensure_store_root(store: Store) -> None:
    """Before the first write: mark the root, unless it would nest inside (or above) a store."""
    if has_marker(store):
        return
    above = _store_above(store)
    if above is not None:
        raise StoreRootError(
            f"Cannot publish into {shown(store.root_uri)}: it is inside the store {shown(above.root_uri)}, "
            f"and stores do not nest. Publish to {shown(above.root_uri)} instead."
        )
    if not _has_layout(store):
        below = _store_below(store)
        if below is not None:
            raise StoreRootError(
                f"Cannot publish into {shown(store.root_uri)}: it holds the store {shown(below.root_uri)}, "
                f"and stores do not nest. Publish to {shown(below.root_uri)} instead."
            )
    from kerascut_core._version import __version__

    body = {
        "kerascut_store": True,
        "layout": LAYOUT_VERSION,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "created_by": f"kerascut {__version__}",
    }
    with contextlib.suppress(ObjectExistsError):  # a concurrent first writer marked it
        store.put_json(MARKER, body)
    with _LOCK:
        _KNOWN.add(store.root_uri)
