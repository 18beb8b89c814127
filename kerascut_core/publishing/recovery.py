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

from typing import Any

from kerascut_core.stores import Store

__all__ = ["recoverable_manifest"]


def _object_versions(store: Store, key: str) -> list[dict[str, Any]] | None:
    """The object versions (not delete markers) of exactly ``key``; ``None`` when the store keeps
    no object versions or they cannot be listed."""
    client = getattr(store, "client", None)
    bucket = getattr(store, "bucket", None)
    to_s3 = getattr(store, "_key", None)
    if client is None or not isinstance(bucket, str) or to_s3 is None:
        return None  # a local store keeps no object versions
    s3_key = to_s3(key)
    found: list[dict[str, Any]] = []
    try:
        for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=s3_key):
            found.extend(item for item in page.get("Versions", []) if item.get("Key") == s3_key)
    except Exception:  # no s3:ListBucketVersions: the store's deletes are plain deletes then
        return None
    return found


def recoverable_manifest(store: Store, key: str) -> str | None:
    """The command that restores the manifest at ``key`` from its newest object version, when
    ``key`` has no current object but has object versions; ``None`` otherwise."""
    versions = _object_versions(store, key)
    if not versions or any(v.get("IsLatest") for v in versions):
        return None
    newest = max(versions, key=lambda v: v.get("LastModified") or 0)
    version_id = newest.get("VersionId")
    if not isinstance(version_id, str) or version_id == "null":
        return None
    bucket, s3_key = getattr(store, "bucket"), newest["Key"]  # noqa: B009 - checked in _object_versions
    return (f'aws s3api copy-object --bucket {bucket} --copy-source "{bucket}/{s3_key}?versionId={version_id}" '
            f'--key "{s3_key}"')
