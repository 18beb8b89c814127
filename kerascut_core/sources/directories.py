"""``s3://bucket/prefix/`` directory sources (keras-hub presets): fingerprint and fetch.

A key ending in ``/`` names every object under it. The directory's fingerprint is a digest of
its listing (each relative key, ETag and size, in key order: one LIST, nothing downloaded);
any object added, removed or replaced gives a new one. :func:`fetch_s3_dir` downloads the
objects into the download cache, under ``s3-dirs/<bucket>/<sha256(prefix)[:32]>/<digest>/``:

- relative keys become paths only after :func:`kerascut_core.uris.check_key` (no ``..``, not
  absolute), so nothing the bucket holds can write outside the entry;
- files are downloaded into a temporary sibling directory and checked (size, and MD5 against a
  single-part ETag, :func:`~kerascut_core.sources.cache.verify_download`); the marker
  ``<digest>.entry.json`` is written beside the entry (tmp + rename), and the directory is
  renamed into place last. The entry holds only the preset's own files; it is a hit when the
  marker is there and every file has its size, so a crash leaves no half entry and a later
  fetch of the unchanged directory costs one LIST;
- concurrent fetches of one directory (threads or processes sharing the cache) all return the
  complete entry: a fetch that finds the entry in place after downloading drops its own copy,
  and a complete entry is never removed (only a broken one, moved aside first).

    >>> fingerprint_s3_dir("models", "presets/resnet/")  # doctest: +SKIP
    's3://models/presets/resnet/?listing=sha256:...&files=3'
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kerascut_core.errors import IntegrityError, SourceError
from kerascut_core.sources.cache import DownloadCache, verify_download, write_marker
from kerascut_core.sources.fetching import transfer_config
from kerascut_core.stores import _s3_client as _s3
from kerascut_core.uris import check_key

__all__ = ["MAX_FILES", "fetch_s3_dir", "fingerprint_s3_dir", "list_s3_dir"]

#: The most objects a directory source may hold (a keras-hub preset holds a handful).
MAX_FILES = 1000
_ENTRY = "entry.json"


def list_s3_dir(bucket: str, prefix: str) -> list[tuple[str, str, int]]:
    """``(relative key, etag, size)`` of every object under ``prefix``, in key order."""
    uri = f"s3://{bucket}/{prefix}"
    client = _s3.client()
    found: list[tuple[str, str, int]] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                relative = item["Key"][len(prefix):]
                if not relative or relative.endswith("/"):
                    continue  # "directory" marker objects
                check_key(relative, uri=f"{uri}{relative}", error=SourceError)
                found.append((relative, str(item.get("ETag", "")).strip('"'), int(item.get("Size", 0))))
                if len(found) > MAX_FILES:
                    raise SourceError(
                        f"Expected a directory source of at most {MAX_FILES} objects. Received "
                        f"{uri} with more; point the source at the preset directory itself."
                    )
    except SourceError:
        raise
    except Exception as exc:
        if _s3.is_not_found(exc):
            _s3.check_bucket(bucket, "list")
        raise _s3.map_error(exc, uri, "list") from exc
    if not found:
        raise SourceError(
            f"Cannot read {uri}: no objects under this prefix. Check the prefix (S3 keys are "
            "case-sensitive); a keras-hub preset directory holds config.json and metadata.json."
        )
    return sorted(found)


def fingerprint_s3_dir(bucket: str, prefix: str) -> str:
    """``s3://bucket/prefix/?listing=sha256:...&files=N`` (see the module docstring)."""
    listing = list_s3_dir(bucket, prefix)
    return f"s3://{bucket}/{prefix}?listing=sha256:{_digest(listing)}&files={len(listing)}"


def fetch_s3_dir(
    bucket: str,
    prefix: str,
    cache: DownloadCache,
    progress: Callable[[int], Any] | None = None,
) -> Path:
    """The local directory holding every object under ``s3://bucket/prefix``, fetched once."""
    uri = f"s3://{bucket}/{prefix}"
    listing = list_s3_dir(bucket, prefix)
    digest = _digest(listing)
    target = _entry_dir(cache, bucket, prefix, digest)
    if _is_hit(target, listing):
        if progress:
            progress(sum(size for _, _, size in listing))
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-{uuid.uuid4().hex}"
    client = _s3.client()
    config = transfer_config()
    try:
        for relative, etag, size in listing:
            path = tmp / relative
            if tmp.absolute() not in path.absolute().parents:
                raise IntegrityError(f"Refusing cache path {path} outside {tmp}.")
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                client.download_file(bucket, prefix + relative, str(path), Callback=progress, Config=config)
            except Exception as exc:
                raise _s3.map_error(exc, uri + relative, "fetch") from exc
            verify_download(path, size=size, etag=etag, shown=uri + relative)
        # Marker first (same content for the same listing): with it in place the entry is a hit
        # the moment the rename below lands, so no other fetch ever takes it for a broken one.
        write_marker(_marker(target), {
            "bucket": bucket, "prefix": prefix, "files": [list(item) for item in listing]
        })
        if _is_hit(target, listing):  # another fetch placed the same listing meanwhile
            return target
        if target.exists():  # a broken earlier entry (files missing or changed): move it aside
            trash = target.parent / f".tmp-{uuid.uuid4().hex}"
            with contextlib.suppress(FileNotFoundError):
                os.replace(target, trash)
                shutil.rmtree(trash, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError as exc:  # ENOTEMPTY / EEXIST: another fetch renamed its copy in first
            if _is_hit(target, listing):
                return target
            raise SourceError(
                f"Cannot place the fetched directory {uri} in the download cache at {target}: "
                f"{exc.strerror or exc}. Check that the cache directory is writable, or remove "
                f"{target} and retry."
            ) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)
    return target


def _digest(listing: list[tuple[str, str, int]]) -> str:
    digest = hashlib.sha256()
    for relative, etag, size in listing:
        digest.update(f"{relative}\0{etag}\0{size}\0".encode())
    return digest.hexdigest()


def _entry_dir(cache: DownloadCache, bucket: str, prefix: str, digest: str) -> Path:
    return cache.entry_path("s3-dirs", bucket, prefix, digest[:32])


def _marker(target: Path) -> Path:
    """The marker sits beside the directory, which holds only the preset's own files."""
    return target.parent / f"{target.name}.{_ENTRY}"


def _is_hit(target: Path, listing: list[tuple[str, str, int]]) -> bool:
    if not _marker(target).is_file():
        return False
    try:
        return all((target / relative).stat().st_size == size for relative, _, size in listing)
    except OSError:
        return False
