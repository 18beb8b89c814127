"""Parsing of source and store URIs: ``s3://bucket/key``, ``file://``, plain paths, ``keras.applications/NAME``.

Pure Python and cheap. Every function raises a one-line :class:`SourceError` or
:class:`StoreError` naming the URI, the reason and the fix.

    >>> parse_uri("s3://models/resnet/v1.keras")
    ParsedURI(kind='s3', uri='s3://models/resnet/v1.keras', bucket='models', key='resnet/v1.keras', path=None, name=None)
    >>> parse_uri("keras.applications/MobileNetV2").name
    'MobileNetV2'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

from kerascut_core.errors import SourceError, StoreError

__all__ = [
    "APPLICATIONS_PREFIX",
    "ParsedURI",
    "check_key",
    "check_name",
    "parse_s3",
    "parse_uri",
    "split_backbone_ref",
]

APPLICATIONS_PREFIX = "keras.applications/"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-_]{1,254}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")
_APP = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ParsedURI:
    """Where a source lives. ``kind`` is ``"s3"``, ``"local"`` or ``"application"``."""

    kind: Literal["s3", "local", "application"]
    uri: str
    bucket: str | None = None
    key: str | None = None
    path: Path | None = None
    name: str | None = None


def parse_uri(uri: str | Path) -> ParsedURI:
    """Classify a source URI. Local paths are returned as given (not resolved, not checked)."""
    if isinstance(uri, Path):
        return ParsedURI("local", str(uri), path=uri)
    if not isinstance(uri, str) or not uri.strip():
        raise SourceError(
            f"Expected a source URI: s3://bucket/key, a local path, file://PATH or "
            f"keras.applications/NAME. Received {uri!r}."
        )
    uri = uri.strip()
    if uri.startswith("s3://"):
        bucket, key = parse_s3(uri, error=SourceError)
        if not key:
            raise SourceError(f"Expected s3://bucket/key with a key naming a model file. Received {uri!r}.")
        return ParsedURI("s3", uri, bucket=bucket, key=key)
    if uri.startswith(APPLICATIONS_PREFIX):
        name = uri[len(APPLICATIONS_PREFIX) :]
        if not _APP.match(name):
            raise SourceError(
                f"Expected keras.applications/NAME with NAME a keras.applications model such as "
                f"MobileNetV2 or ResNet50. Received {uri!r}."
            )
        return ParsedURI("application", uri, name=name)
    if uri.startswith("file://"):
        parsed = urlparse(uri)
        if parsed.netloc not in ("", "localhost"):
            raise SourceError(f"Expected file:///absolute/path (no host). Received {uri!r}.")
        return ParsedURI("local", uri, path=Path(unquote(parsed.path)))
    scheme = re.match(r"^([a-zA-Z][a-zA-Z0-9+.\-]*)://", uri)
    if scheme:
        raise SourceError(
            f"Expected a source URI with scheme s3:// or file://, a local path or "
            f"keras.applications/NAME. Received scheme {scheme.group(1)!r} in {uri!r}."
        )
    return ParsedURI("local", uri, path=Path(uri).expanduser())


def parse_s3(uri: str, *, error: type[Exception] = StoreError) -> tuple[str, str]:
    """``"s3://bucket/a/b"`` -> ``("bucket", "a/b")``; the key may be empty. Rejects ``..`` keys."""
    if not uri.startswith("s3://"):
        raise error(f"Expected an s3://bucket/key URI. Received {uri!r}.")
    rest = uri[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not _BUCKET.match(bucket or ""):
        raise error(
            f"Expected s3://BUCKET/key with a valid bucket name (lowercase letters, digits, '.', '-'). "
            f"Received bucket {bucket!r} in {uri!r}."
        )
    if key:
        check_key(key, uri=uri, error=error)
    return bucket, key


def check_key(key: str, *, uri: str | None = None, error: type[Exception] = StoreError) -> str:
    """Return ``key`` if it is a safe relative key: no ``..`` or ``.`` segment, not absolute.

    Keys become local file names in stores and caches, so a key that could climb out of a
    directory is refused everywhere rather than silently rewritten.
    """
    shown = uri or key
    if not isinstance(key, str) or not key:
        raise error(f"Expected a non-empty object key. Received {key!r}.")
    if key.startswith("/") or key.startswith("\\") or re.match(r"^[A-Za-z]:[\\/]", key):
        raise error(f"Expected a relative object key. Received an absolute key in {shown!r}; remove the leading '/'.")
    parts = re.split(r"[\\/]", key)
    if any(part in ("..", ".") for part in parts):
        raise error(
            f"Expected an object key without '.' or '..' segments. Received {shown!r}; "
            "keys that climb directories are refused."
        )
    if "\x00" in key:
        raise error(f"Expected an object key without NUL characters. Received {shown!r}.")
    return key


def check_name(value: str, what: str = "name") -> str:
    """A backbone name or version: one path segment of letters, digits, ``.``, ``_``, ``-``."""
    if not isinstance(value, str) or not _NAME.match(value) or value in (".", ".."):
        raise StoreError(
            f"Expected the backbone {what} to be one path segment of letters, digits, '.', '_' or '-' "
            f"(not starting with '.'). Received {value!r}."
        )
    return value


def split_backbone_ref(ref: str) -> tuple[str, str, str | None]:
    """``"s3://b/prefix/resnet@abc"`` -> ``("s3://b/prefix", "resnet", "abc")``; version may be None."""
    if not isinstance(ref, str) or "/" not in ref.rstrip("/"):
        raise StoreError(
            f"Expected STORE/NAME[@VERSION], e.g. s3://bucket/backbones/resnet50 or ./store/resnet50. "
            f"Received {ref!r}."
        )
    ref = ref.rstrip("/")
    store, _, last = ref.rpartition("/")
    name, _, version = last.partition("@")
    if store in ("s3:", "s3:/") or store.endswith("://"):
        raise StoreError(f"Expected STORE/NAME with STORE a bucket or directory. Received {ref!r}.")
    check_name(name)
    if version:
        check_name(version, "version")
    return store, name, version or None
