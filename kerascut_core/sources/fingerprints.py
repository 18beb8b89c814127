"""Source fingerprints: a cheap identity of a source that downloads nothing.

* ``s3://bucket/key``: one HEAD request. The object's ``VersionId`` when the bucket is
  versioned, otherwise its ``ETag`` and size.
* ``s3://bucket/prefix/`` (a directory, such as a keras-hub preset): one LIST, a digest of
  every object's relative key, ETag and size (:mod:`.directories`).
* a local file (or directory, such as a keras-hub preset directory): the sha256 of its bytes
  (for a directory, of every file's relative name and sha256). A FIFO, device, socket or
  dangling link in its place is refused with one line, never skipped or waited on.
* ``kaggle://`` / ``hf://`` keras-hub handles: the handle with its version, and the keras-hub
  major.minor (:func:`~kerascut_core.sources.presets.hub_fingerprint`).
* ``keras.applications/NAME``: the architecture, the Keras major.minor version, the weights
  identity (``imagenet``, ``none``, or the fingerprint of a weights file) and the input shape.

The same source gives the same fingerprint, and any change to its bytes gives a new one. This
module never imports TensorFlow or Keras: a scheduled refresh that finds nothing changed stays
cheap, and keras-hub is never imported either.

    >>> fingerprint("keras.applications/MobileNetV2", weights="none", input_shape=(96, 96, 3))  # doctest: +SKIP
    'keras.applications/MobileNetV2?include_top=false&input_shape=96x96x3&keras=3.15&weights=none'
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kerascut_core.aws import client as _s3
from kerascut_core.errors import SourceError
from kerascut_core.installed import keras_version
from kerascut_core.safe_fs import describe_kind
from kerascut_core.uris import parse_uri

__all__ = ["fingerprint", "fingerprint_many", "keras_version", "weights_identity"]

_IGNORED_OPTIONS = {"cache_dir", "allow_unsafe", "progress"}


def fingerprint(uri: str | os.PathLike[str], **source_options: Any) -> str:
    """A cheap identity of the source ``uri`` (see the module docstring).

    ``source_options`` are those of ``load_model``: ``weights``, ``input_shape`` and
    ``include_top`` matter for ``keras.applications``; ``cache_dir`` and ``allow_unsafe`` never
    change the identity. Raises :class:`SourceError` (or a :class:`StoreError` for S3 access
    problems) with a one-line message.
    """
    unknown = set(source_options) - {"weights", "input_shape", "include_top"} - _IGNORED_OPTIONS
    if unknown:
        raise SourceError(
            f"Expected source options among ['weights', 'input_shape', 'include_top', 'allow_unsafe', "
            f"'cache_dir']. Received unknown {sorted(unknown)}."
        )
    parsed = parse_uri(os.fspath(uri) if isinstance(uri, os.PathLike) else uri)
    if parsed.kind == "s3":
        if (parsed.key or "").endswith("/"):
            from kerascut_core.sources.directories import fingerprint_s3_dir

            return fingerprint_s3_dir(parsed.bucket or "", parsed.key or "")
        return _s3_fingerprint(parsed.bucket or "", parsed.key or "")
    if parsed.kind == "local":
        return _local_fingerprint(Path(parsed.path or ""))
    if parsed.kind == "hub":
        from kerascut_core.sources.presets import hub_fingerprint

        return hub_fingerprint(parsed.uri)
    weights = source_options.get("weights", "imagenet")
    include_top = source_options.get("include_top")
    fields = {
        "keras": keras_version(),
        "weights": weights_identity(weights),
        "input_shape": _shape(source_options.get("input_shape")),
        # keras.applications defaults to include_top=True; backbones are almost always cut
        # from include_top=False, and the two are different models
        "include_top": "default" if include_top is None else str(bool(include_top)).lower(),
    }
    query = "&".join(f"{k}={v}" for k, v in sorted(fields.items()))
    return f"{parsed.uri}?{query}"


def fingerprint_many(
    sources: Sequence[str | tuple[str, dict[str, Any]]], *, max_workers: int = 8
) -> list[str]:
    """Fingerprints of many sources at once, in order; S3 HEADs run ``max_workers`` at a time.

    Each item is a URI or ``(uri, source_options)``. The first error is raised as
    :func:`fingerprint` would raise it.

        >>> fingerprint_many(["s3://models/a.keras", ("keras.applications/ResNet50", {"weights": "none"})])  # doctest: +SKIP
    """
    from concurrent.futures import ThreadPoolExecutor

    items = [(item, {}) if isinstance(item, (str, os.PathLike)) else (item[0], dict(item[1])) for item in sources]
    if len(items) <= 1:
        return [fingerprint(uri, **options) for uri, options in items]
    _s3.client()  # create the shared client once, before the threads race to
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(items)))) as pool:
        return list(pool.map(lambda item: fingerprint(item[0], **item[1]), items))


def weights_identity(weights: Any) -> str:
    """``imagenet`` / ``none`` as they are, a weights file as its own fingerprint."""
    if weights is None or (isinstance(weights, str) and weights.lower() in ("none", "null", "")):
        return "none"
    if isinstance(weights, str) and weights.lower() == "imagenet":
        return "imagenet"
    if isinstance(weights, (str, os.PathLike)):
        parsed = parse_uri(os.fspath(weights))
        if parsed.kind == "application":
            raise SourceError(f"Expected weights 'imagenet', 'none', a path or an s3:// URI. Received {weights!r}.")
        return fingerprint(parsed.uri)
    raise SourceError(f"Expected weights 'imagenet', 'none', a path or an s3:// URI. Received {weights!r}.")


def _shape(shape: Sequence[int | None] | None) -> str:
    if shape is None:
        return "default"
    if isinstance(shape, str) or not isinstance(shape, Sequence):
        raise SourceError(f"Expected input_shape as a list of ints such as [224, 224, 3]. Received {shape!r}.")
    dims = []
    for dim in shape:
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
            raise SourceError(f"Expected input_shape as a list of positive ints or None. Received {list(shape)!r}.")
        dims.append("none" if dim is None else str(dim))
    return "x".join(dims)


def _s3_fingerprint(bucket: str, key: str) -> str:
    uri = f"s3://{bucket}/{key}"
    head = _s3.head_source(bucket, key, "fingerprint")
    version = head.get("VersionId")
    if version and version != "null":
        return f"{uri}?versionId={version}"
    etag = str(head.get("ETag", "")).strip('"')
    return f"{uri}?etag={etag}&size={int(head.get('ContentLength', 0))}"


def _local_fingerprint(path: Path) -> str:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise SourceError(f"Cannot fingerprint {path}: no such file or directory. Check the path.") from None
    except OSError as exc:
        raise SourceError(f"Cannot fingerprint {path}: {exc.strerror}. Check the path and its permissions.") from None
    if stat.S_ISREG(st.st_mode):
        return f"sha256:{_hash_regular(path)}"
    if stat.S_ISDIR(st.st_mode):  # a SavedModel or preset directory: hash names and bytes in order
        digest = hashlib.sha256()
        for file in _directory_files(path):
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
            digest.update(f"sha256:{_hash_regular(file)}".encode() + b"\0")
        return f"sha256-dir:{digest.hexdigest()}"
    raise _special(path, st.st_mode)


def _directory_files(root: Path) -> list[Path]:
    """Every file under ``root`` in name order. A link to a regular file counts as that file; a
    link to a directory, a dangling link, a FIFO, a socket or a device is refused: each would
    otherwise be left out, and a preset whose weights file is one would get the fingerprint of
    a preset without weights."""
    files: list[Path] = []
    pending = [root]
    while pending:
        directory = pending.pop()
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                pending.append(path)
                continue
            try:
                mode = os.stat(path).st_mode
            except OSError:
                raise SourceError(
                    f"Cannot fingerprint the directory source {root}: {path} is a dangling link. "
                    "Remove it or point it at the file it stands for."
                ) from None
            if not stat.S_ISREG(mode):
                raise _special(path, mode, root)
            files.append(path)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _special(path: Path, mode: int, root: Path | None = None) -> SourceError:
    kind = "a directory reached through a link" if stat.S_ISDIR(mode) else describe_kind(mode)
    inside = f"the directory source {root}: {path}" if root is not None else str(path)
    return SourceError(
        f"Cannot fingerprint {inside}: it is {kind}, not a regular file, so its bytes cannot "
        "be hashed. Replace it with the file it stands for."
    )


def _hash_regular(path: Path) -> str:
    """The sha256 of the regular file at ``path``, opened without blocking (a FIFO swapped in
    after the check is refused, never waited on)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise _special(path, mode)
        digest = hashlib.sha256()
        while chunk := handle.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()
