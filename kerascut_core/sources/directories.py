"""``s3://bucket/prefix/`` directory sources (keras-hub presets): fingerprint and fetch.

A key ending in ``/`` names every object under it. The directory's fingerprint is a digest of
its listing (each relative key, ETag and size, in key order: one LIST, nothing downloaded);
any object added, removed or replaced gives a new one. :func:`fetch_s3_dir` downloads the
objects into the download cache, under ``s3-dirs/<bucket>/<sha256(prefix)[:32]>/<digest>/``:

- relative keys become paths only after :func:`kerascut_core.uris.check_key` (no ``..``, not
  absolute), so nothing the bucket holds can write outside the entry;
- files are downloaded into a temporary sibling directory, checked (size, and MD5 against a
  single-part ETag), and the directory is renamed into place with ``entry.json`` inside: a
  crash leaves no half entry, and a later fetch of the unchanged directory costs one LIST.

    >>> fingerprint_s3_dir("models", "presets/resnet/")  # doctest: +SKIP
    's3://models/presets/resnet/?listing=sha256:...&files=3'
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kerascut_core.errors import IntegrityError, SourceError
from kerascut_core.sources.cache import DownloadCache
from kerascut_core.stores import _s3_client as _s3
from kerascut_core.uris import check_key

__all__ = ["MAX_FILES", "fetch_s3_dir", "fingerprint_s3_dir", "list_s3_dir"]

#: The most objects a directory source may hold (a keras-hub preset holds a handful).
MAX_FILES = 1000
_SAFE = re.compile(r"[^A-Za-z0-9._-]")
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
    try:
        for relative, etag, size in listing:
            path = tmp / relative
            if tmp.absolute() not in path.absolute().parents:
                raise IntegrityError(f"Refusing cache path {path} outside {tmp}.")
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                client.download_file(bucket, prefix + relative, str(path), Callback=progress)
            except Exception as exc:
                raise _s3.map_error(exc, uri + relative, "fetch") from exc
            _check_file(path, etag, size, uri + relative)
        if target.exists():  # a broken earlier entry (no hit): replace it
            shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)
    # The marker sits beside the directory, which holds only the preset's own files.
    marker = target.parent / f"{target.name}.{_ENTRY}"
    marker.write_text(json.dumps(
        {"bucket": bucket, "prefix": prefix, "files": [list(item) for item in listing]}, indent=2
    ) + "\n")
    return target


def _digest(listing: list[tuple[str, str, int]]) -> str:
    digest = hashlib.sha256()
    for relative, etag, size in listing:
        digest.update(f"{relative}\0{etag}\0{size}\0".encode())
    return digest.hexdigest()


def _entry_dir(cache: DownloadCache, bucket: str, prefix: str, digest: str) -> Path:
    prefix_hash = hashlib.sha256(f"{bucket}/{prefix}".encode()).hexdigest()[:32]
    path = cache.root / "s3-dirs" / _SAFE.sub("_", bucket) / prefix_hash / digest[:32]
    if cache.root.absolute() not in path.absolute().parents:
        raise IntegrityError(f"Refusing cache path {path} outside {cache.root}.")
    return path


def _is_hit(target: Path, listing: list[tuple[str, str, int]]) -> bool:
    if not (target.parent / f"{target.name}.{_ENTRY}").is_file():
        return False
    try:
        return all((target / relative).stat().st_size == size for relative, _, size in listing)
    except OSError:
        return False


def _check_file(path: Path, etag: str, size: int, shown: str) -> None:
    actual = path.stat().st_size
    if actual != size:
        raise IntegrityError(
            f"Download of {shown} ended short: expected {size} bytes, received {actual}. Retry the download."
        )
    if re.fullmatch(r"[0-9a-f]{32}", etag):
        md5 = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as handle:
            while chunk := handle.read(8 << 20):
                md5.update(chunk)
        if md5.hexdigest() != etag:
            raise IntegrityError(f"Download of {shown} has a wrong checksum: expected MD5 {etag}. Retry.")
