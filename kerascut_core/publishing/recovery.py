"""Recoverable versions: a manifest deleted by mistake on a versioned S3 bucket.

On a versioned bucket a deleted ``manifest.json`` leaves a delete marker over its last object
version. The version directory then looks uncommitted, but it was committed once and can be
restored by copying that object version back. ``gc`` asks :func:`recoverable_manifest` before
it removes any version directory, and leaves the directory (every object version of every key
in it) when it says so, reporting the command that restores the manifest.

    >>> recoverable_manifest(open_store("s3://bucket/store"), "mnv2/3f9a0c1d2e4b5a69/manifest.json")  # doctest: +SKIP
    'aws s3api copy-object --bucket bucket --copy-source "bucket/store/mnv2/.../manifest.json?versionId=..." ...'
"""

from __future__ import annotations

from kerascut_core.stores import Store
from kerascut_core.stores.capabilities import ObjectVersions

__all__ = ["recoverable_manifest"]


def recoverable_manifest(store: Store, key: str) -> str | None:
    """The command that restores the manifest at ``key`` from its newest object version, when
    ``key`` has no current object but has object versions; ``None`` otherwise (and always on a
    store that keeps no object versions)."""
    if not isinstance(store, ObjectVersions):
        return None
    versions = store.object_versions(key)
    if not versions or any(v.is_latest for v in versions):
        return None
    newest = max(versions, key=lambda v: v.last_modified.timestamp() if v.last_modified else 0.0)
    if newest.version_id == "null":
        return None
    return store.restore_command(newest)
