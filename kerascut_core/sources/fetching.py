"""Fetching sources: ``s3://`` objects into the download cache, local paths as they are.

    >>> path = fetch("s3://models/resnet50.keras")        # doctest: +SKIP
    >>> path = fetch("./models/resnet50.keras")           # doctest: +SKIP
    >>> path = fetch("s3://models/presets/resnet/")       # doctest: +SKIP

An ``s3://`` key ending in ``/`` is a directory (a keras-hub preset): every object under it is
fetched into one cache directory (:mod:`.directories`). ``kaggle://`` and ``hf://`` handles are
not fetched here: keras-hub downloads them into its own cache when the source is loaded.

:func:`resolve_local` is what ``load_model`` calls: it turns any file-like source (and an
``s3://`` weights file of a ``keras.applications`` source) into a local path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kerascut_core.aws import client as _s3
from kerascut_core.errors import KerascutError, SourceError
from kerascut_core.sources.cache import CachedFile, DownloadCache
from kerascut_core.uris import parse_uri

__all__ = ["fetch", "fetch_verified", "resolve_local", "resolve_verified"]


def fetch(
    uri: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[int], Any] | None = None,
) -> Path:
    """A local path holding the bytes of ``uri``.

    ``s3://bucket/key`` is downloaded once into the cache (keyed by bucket, key and ETag;
    verified by size and checksum; see :mod:`kerascut_core.sources.cache`); a later call with
    the object unchanged costs one HEAD and one hash of the cached bytes (a hit is verified
    against the ETag and the sha256 recorded at download; one that fails is fetched again). Local paths and ``file://`` URIs are returned as they
    are, after checking they exist. ``progress(n_bytes)`` is called as bytes arrive.
    """
    return fetch_verified(uri, cache_dir, progress)[0]


def fetch_verified(
    uri: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[int], Any] | None = None,
) -> tuple[Path, CachedFile | None]:
    """:func:`fetch`, with the verified :class:`~kerascut_core.sources.cache.CachedFile` (the
    sha256 of the bytes and the signature of the file they were read from) of an ``s3://``
    file; ``None`` for local paths and directories.

    A cache hit is hashed once here, and that hash is the source sha256 the run records: no
    later step hashes the file again while its signature is unchanged.
    """
    parsed = parse_uri(os.fspath(uri) if isinstance(uri, os.PathLike) else uri)
    if parsed.kind == "application":
        raise SourceError(
            f"Cannot fetch {parsed.uri}: keras.applications sources are built, not downloaded. "
            "Use kerascut_core.load_model for them."
        )
    if parsed.kind == "hub":
        raise SourceError(
            f"Cannot fetch {parsed.uri}: keras-hub downloads kaggle:// and hf:// presets itself "
            "when they are loaded. Use kerascut_core.load_model for them."
        )
    if parsed.kind == "local":
        path = Path(parsed.path or "")
        if not path.exists():
            raise SourceError(f"Cannot read {path}: no such file or directory. Check the path.")
        return path, None
    if (parsed.key or "").endswith("/"):
        from kerascut_core.sources.directories import fetch_s3_dir

        return fetch_s3_dir(parsed.bucket or "", parsed.key or "", DownloadCache(cache_dir), progress), None
    cached = _fetch_s3(parsed.bucket or "", parsed.key or "", DownloadCache(cache_dir), progress)
    return cached.path, cached


def resolve_local(
    uri: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[int], Any] | None = None,
    **source_options: Any,
) -> tuple[str, dict[str, Any]]:
    """``(local_uri, options)`` with every remote part of a source fetched.

    For a file source the URI becomes the local path of its bytes; for ``keras.applications``
    the URI is kept and an ``s3://`` ``weights`` option becomes the local path of the weights
    file; a ``kaggle://`` / ``hf://`` handle is kept (keras-hub fetches it). Other options pass
    through unchanged.
    """
    local, options, _ = resolve_verified(uri, cache_dir=cache_dir, progress=progress, **source_options)
    return local, options


def resolve_verified(
    uri: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[int], Any] | None = None,
    **source_options: Any,
) -> tuple[str, dict[str, Any], CachedFile | None]:
    """:func:`resolve_local`, with the verified cache file of an ``s3://`` file source
    (:func:`fetch_verified`; ``None`` for every other kind)."""
    parsed = parse_uri(os.fspath(uri) if isinstance(uri, os.PathLike) else uri)
    options = dict(source_options)
    if parsed.kind == "hub":
        return parsed.uri, options, None
    if parsed.kind == "application":
        weights = options.get("weights")
        if isinstance(weights, (str, os.PathLike)) and os.fspath(weights).startswith("s3://"):
            options["weights"] = str(fetch(weights, cache_dir=cache_dir, progress=progress))
        return parsed.uri, options, None
    path, cached = fetch_verified(parsed.uri, cache_dir=cache_dir, progress=progress)
    return str(path), options, cached


def _fetch_s3(
    bucket: str, key: str, cache: DownloadCache, progress: Callable[[int], Any] | None
) -> CachedFile:
    uri = f"s3://{bucket}/{key}"
    client = _s3.client()
    head = _s3.head_source(bucket, key, "fetch")
    etag = str(head.get("ETag", "")).strip('"')
    size = int(head.get("ContentLength", 0))
    version = head.get("VersionId")
    hit = cache.lookup_verified(bucket, key, etag, size)
    if hit is not None:
        if progress:
            progress(size)
        return hit
    tmp = cache.temp_path(bucket, key, etag)
    # on a versioned bucket pin the exact version; otherwise the size and checksum checks in
    # cache.commit catch an object replaced between the HEAD and the download
    extra: dict[str, Any] = {"VersionId": version} if version and version != "null" else {}
    try:
        client.download_file(
            bucket, key, str(tmp), ExtraArgs=extra or None, Callback=progress, Config=_s3.transfer_config()
        )
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, KerascutError):
            raise
        raise _s3.map_error(exc, uri, "fetch") from exc
    sha256 = (head.get("Metadata") or {}).get("sha256")
    return cache.commit_verified(tmp, bucket=bucket, key=key, etag=etag, size=size, sha256=sha256, uri=uri)
