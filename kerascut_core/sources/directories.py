"""``s3://bucket/prefix/`` directory sources (keras-hub presets): fingerprint and fetch.

A key ending in ``/`` names every object under it. The directory's fingerprint is a digest of
its listing (each relative key, ETag and size, in key order: one LIST, nothing downloaded);
any object added, removed or replaced gives a new one. :func:`fetch_s3_dir` downloads the
objects into the download cache, under ``s3-dirs/<bucket>/<sha256(prefix)[:32]>/<digest>/``:

- relative keys become paths only after :func:`kerascut_core.uris.check_key` (no ``..``, not
  absolute), so nothing the bucket holds can write outside the entry; keys that would share a
  local path (``sub//x`` and ``sub/x``, or ``a`` and ``a/b``) are refused with one line;
- files are downloaded into a temporary sibling directory and checked (size, and MD5 against a
  single-part ETag, :func:`~kerascut_core.sources.cache.verify_download`); the marker
  ``<digest>.entry.json`` (each file's key, ETag, size and sha256) is written beside the entry
  (tmp + rename), and the directory is renamed into place last. The entry holds only the
  preset's own files; it is a hit when the marker lists the objects the LIST reports now and
  every file hashes to its recorded sha256 (a hit costs one LIST and one read of the files).
  An entry that fails is quarantined with one warning and fetched again; a link or special
  file anywhere in it is refused with one line;
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

from kerascut_core.aws import client as _s3
from kerascut_core.errors import IntegrityError, SourceError
from kerascut_core.safe_fs import describe_kind, refuse
from kerascut_core.sources.cache import (
    DownloadCache,
    hash_regular,
    quarantine,
    read_marker,
    verify_download,
    write_marker,
)
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
    _check_collisions(found, uri)
    if not found:
        raise SourceError(
            f"Cannot read {uri}: no objects under this prefix. Check the prefix (S3 keys are "
            "case-sensitive); a keras-hub preset directory holds config.json and metadata.json."
        )
    return sorted(found)


def _check_collisions(found: list[tuple[str, str, int]], uri: str) -> None:
    """Refuse keys that would land on the same local path (``sub//x`` and ``sub/x``) or on a
    path another key needs as a directory (``a`` and ``a/b``): one line naming both keys."""
    seen: dict[str, str] = {}
    for relative, _, _ in found:
        local = "/".join(part for part in relative.split("/") if part)
        other = seen.setdefault(local, relative)
        if other != relative:
            raise SourceError(
                f"Cannot fetch the directory source {uri}: the keys {other!r} and {relative!r} "
                "name the same local file. Remove or rename one of them in the bucket."
            )
    for local, relative in seen.items():
        parts = local.split("/")
        for i in range(1, len(parts)):
            parent = seen.get("/".join(parts[:i]))
            if parent is not None:
                raise SourceError(
                    f"Cannot fetch the directory source {uri}: the key {parent!r} is an object "
                    f"where the key {relative!r} needs a directory. Remove or rename one of them "
                    "in the bucket."
                )


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
    """The local directory holding every object under ``s3://bucket/prefix``, fetched once.

    A hit is verified, never trusted: the marker must list the objects the listing reports now
    (keys, ETags, sizes), and every file must be a regular file whose bytes hash to the sha256
    recorded when it was downloaded. An entry that fails is set aside (quarantined, with one
    :class:`~kerascut_core.sources.cache.CacheWarning`) and fetched again."""
    uri = f"s3://{bucket}/{prefix}"
    listing = list_s3_dir(bucket, prefix)
    digest = _digest(listing)
    target = _entry_dir(cache, bucket, prefix, digest)
    if _is_hit(cache, target, listing, uri):
        if progress:
            progress(sum(size for _, _, size in listing))
        return target
    cache.make_dirs(target.parent)
    tmp = target.parent / f".tmp-{uuid.uuid4().hex}"
    client = _s3.client()
    config = _s3.transfer_config()
    hashes: list[str] = []
    try:
        for relative, etag, size in listing:
            path = tmp / relative
            if tmp.absolute() not in path.absolute().parents:
                raise IntegrityError(f"Refusing cache path {path} outside {tmp}.")
            cache.make_dirs(path.parent)
            try:
                client.download_file(bucket, prefix + relative, str(path), Callback=progress, Config=config)
            except Exception as exc:
                raise _s3.map_error(exc, uri + relative, "fetch") from exc
            hashes.append(verify_download(path, size=size, etag=etag, shown=uri + relative))
        # Marker first (same content for the same listing): with it in place the entry is a hit
        # the moment the rename below lands, so no other fetch ever takes it for a broken one.
        write_marker(cache.checked(_marker(target)), {
            "bucket": bucket, "prefix": prefix,
            "files": [[*item, sha] for item, sha in zip(listing, hashes, strict=True)],
        })
        if _is_hit(cache, target, listing, uri, quiet=True):  # another fetch placed it meanwhile
            return target
        if os.path.lexists(target):  # a broken entry that appeared meanwhile: set it aside
            quarantine(cache, target, uri, "it does not hold the listed files")
        try:
            os.replace(tmp, target)
        except OSError as exc:  # ENOTEMPTY / EEXIST: another fetch renamed its copy in first
            if _is_hit(cache, target, listing, uri, quiet=True):
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


def _is_hit(
    cache: DownloadCache, target: Path, listing: list[tuple[str, str, int]], uri: str, *, quiet: bool = False
) -> bool:
    """Whether ``target`` holds exactly the listed files with the hashes its marker recorded.

    A link or special file anywhere in the entry is a one-line ``SourceError``. An entry that
    does not verify is quarantined (marker and directory) with one warning, unless ``quiet``
    (used to look for an entry a concurrent fetch may still be placing)."""
    marker = cache.checked(_marker(target))
    recorded = read_marker(marker, what=cache.what)
    if recorded is None or not os.path.lexists(cache.checked(target)):
        return False
    reason = _mismatch(cache, target, listing, recorded)
    if not reason:
        return True
    if not quiet:
        quarantine(cache, target, uri, reason)
        quarantine(cache, marker, uri, reason, warn=False)
    return False


def _mismatch(
    cache: DownloadCache, target: Path, listing: list[tuple[str, str, int]], recorded: dict[str, object]
) -> str:
    files = recorded.get("files")
    if (
        not isinstance(files, list)
        or not all(isinstance(f, list) and len(f) == 4 for f in files)
        or [f[:3] for f in files] != [list(item) for item in listing]
    ):
        return "its marker does not list the objects the bucket holds now"
    present = _regular_files(cache, target)
    if present != {relative for relative, _, _ in listing}:
        return "it holds other files than the listed ones"
    for relative, _etag, size, *rest in files:
        digest, signature = hash_regular(target / relative, what=cache.what)
        if signature[2] != size:
            return f"{relative} holds {signature[2]} bytes where the object has {size}"
        if not rest or rest[0] != digest:
            return f"{relative} does not hash to the sha256 recorded when it was downloaded"
    return ""


def _regular_files(cache: DownloadCache, root: Path) -> set[str]:
    """The relative paths of every file under ``root``; a link or special file is refused."""
    found: set[str] = set()
    pending = [root]
    while pending:
        directory = pending.pop()
        with os.scandir(cache.checked(directory)) as entries:
            for entry in entries:
                path = Path(entry.path)
                if entry.is_dir(follow_symlinks=False):
                    pending.append(path)
                elif entry.is_file(follow_symlinks=False):
                    found.add(path.relative_to(root).as_posix())
                else:
                    cache.checked(path)  # raises the one-line refusal for a link or special file
                    raise refuse(path, describe_kind(os.lstat(path).st_mode), cache.what, SourceError)
    return found
