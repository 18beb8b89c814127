"""Pointer moves and retention exclude each other: both hold the version's claim.

A pointer (``latest.json`` or an alias) may only name a committed version, and retention may
only delete a version no pointer names. Checking each side and then acting leaves a window (a
promote checks that the manifest exists, retention reads the pointers, deletes the version,
the promote writes its pointer: a pointer on a deleted version). Both sides therefore take the
same lock, the version's claim ``.staging/<name>/<version>/claim.json``
(:func:`~kerascut_core.publishing.claim.acquire_claim`, put-if-absent, taken over only when
stale), which commits of that version already use:

* a mover (:func:`moving_onto`) takes the claim of the version it moves a pointer *onto*,
  then checks that the version's manifest exists, writes the pointer, and releases;
* retention takes the claim of the version it removes, then reads every pointer of the
  backbone, deletes the manifest first and the artifacts after, and releases.

The argument: a pointer comes to name version ``v`` only by a write made while its writer held
``v``'s claim, and retention decides to delete ``v`` only from a read of the pointers made while
it held ``v``'s claim. The two critical sections do not overlap, so either the pointer write
comes first (retention's read sees it and keeps ``v``) or retention's deletion does (the
mover's manifest check, made after it acquired the claim, finds no manifest and refuses with
one line, writing nothing). No interleaving leaves a pointer on a deleted version, and
retention never deletes a version a pointer names at the moment of deletion. Both stores give
what this needs: S3 put-if-absent and ``If-Match`` are linearizable with strong read-after-write
consistency; a local store creates the claim with an exclusive link and takes it over with a
compare under ``flock``.

A mover waits up to :data:`MOVE_WAIT_SECONDS` for a claim another run holds (retention holds it
for a few deletes), then fails with one line naming the holder. A claim left by a dead process
is stale and taken over (:func:`~kerascut_core.publishing.claim.claim_is_stale`).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

from kerascut_core.errors import ObjectNotFoundError
from kerascut_core.publishing.claim import DEFAULT_LEASE_SECONDS, acquire_claim
from kerascut_core.publishing.layout import manifest_key
from kerascut_core.stores import Store

__all__ = ["MOVE_WAIT_SECONDS", "moving_onto"]

#: how long a pointer move waits for a version's claim held by another run
MOVE_WAIT_SECONDS = float(os.environ.get("KERASCUT_MOVE_WAIT_SECONDS", "60"))


@contextlib.contextmanager
def moving_onto(store: Store, name: str, version: str, pointer: str) -> Iterator[None]:
    """Hold ``name/version``'s claim while ``pointer`` is moved onto it; refuse (one line,
    :class:`ObjectNotFoundError`) when the version is not committed once the claim is held."""
    claim = acquire_claim(store, name, version, f"move-{uuid.uuid4().hex[:12]}", DEFAULT_LEASE_SECONDS,
                          MOVE_WAIT_SECONDS, committed=True, purpose="move")
    if claim is None:  # pragma: no cover - committed=True never returns None
        raise ObjectNotFoundError(f"Cannot move {name}@{pointer} onto {version}: its claim could not be taken.")
    try:
        if not store.exists(manifest_key(name, version)):
            raise ObjectNotFoundError(
                f"Cannot move {name}@{pointer} onto {version}: that version is not committed in {store.root_uri} "
                f"(retention or a person removed it). Run `kerascut ls {store.root_uri} {name}` and pick another."
            )
        yield
    finally:
        claim.release()
