"""Parsing of source and store URIs: ``s3://bucket/key``, ``file://``, plain paths, ``keras.applications/NAME``,
and keras-hub preset handles (``kaggle://OWNER/MODEL/keras/VARIANT/VERSION``, ``hf://OWNER/REPO``).

An ``s3://`` key ending in ``/`` is a directory (a keras-hub preset directory).

Pure Python and cheap. Every function raises a one-line :class:`SourceError` or
:class:`StoreError` naming the URI, the reason and the fix.

    >>> parse_uri("s3://models/resnet/v1.keras")
    ParsedURI(kind='s3', uri='s3://models/resnet/v1.keras', bucket='models', key='resnet/v1.keras', path=None, name=None)
    >>> parse_uri("keras.applications/MobileNetV2").name
    'MobileNetV2'
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote

from kerascut_core._names import short_repr
from kerascut_core.errors import SourceError, StoreError

__all__ = [
    "APPLICATIONS_PREFIX",
    "HUB_SCHEMES",
    "NAME_MAX_LENGTH",
    "NAME_PATTERN",
    "ParsedURI",
    "check_key",
    "check_name",
    "expand_path",
    "file_uri_path",
    "parse_s3",
    "parse_uri",
    "split_backbone_ref",
]

APPLICATIONS_PREFIX = "keras.applications/"
#: keras-hub preset handles, loaded by keras-hub itself (which downloads them).
HUB_SCHEMES = ("kaggle://", "hf://")
_HUB_HANDLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*(/[A-Za-z0-9][A-Za-z0-9._\-]*)+$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-_]{1,254}$")
#: The longest backbone name, version or run id: one path segment of a store (see check_name).
NAME_MAX_LENGTH = 128
#: :func:`check_name` as a pattern of the whole name, in JSON-schema syntax (``$`` is the end).
NAME_PATTERN = f"^[A-Za-z0-9][A-Za-z0-9._-]{{0,{NAME_MAX_LENGTH - 1}}}$"
_NAME = re.compile(NAME_PATTERN[1:-1])  # with fullmatch: Python's `$` also matches before a final "\n"
_APP = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# URIs and keys in messages are cut to this many characters before they are formatted.
_SHOWN = 200


def _q(value: object) -> str:
    return short_repr(value, _SHOWN)


@dataclass(frozen=True)
class ParsedURI:
    """Where a source lives. ``kind`` is ``"s3"``, ``"local"``, ``"application"`` or ``"hub"``
    (a keras-hub ``kaggle://`` / ``hf://`` handle; ``name`` is the handle without the scheme)."""

    kind: Literal["s3", "local", "application", "hub"]
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
            f"Expected a source URI: s3://bucket/key, a local path, file://PATH, "
            f"keras.applications/NAME or a kaggle:// / hf:// preset handle. Received {_q(uri)}."
        )
    uri = uri.strip()
    if uri.startswith("s3://"):
        bucket, key = parse_s3(uri, error=SourceError)
        if not key:
            raise SourceError(f"Expected s3://bucket/key with a key naming a model file. Received {_q(uri)}.")
        return ParsedURI("s3", uri, bucket=bucket, key=key)
    if uri.startswith(APPLICATIONS_PREFIX):
        name = uri[len(APPLICATIONS_PREFIX) :]
        if not _APP.match(name):
            raise SourceError(
                f"Expected keras.applications/NAME with NAME a keras.applications model such as "
                f"MobileNetV2 or ResNet50. Received {_q(uri)}."
            )
        return ParsedURI("application", uri, name=name)
    if uri.startswith("file://"):
        return ParsedURI("local", uri, path=file_uri_path(uri, error=SourceError))
    if uri.startswith(HUB_SCHEMES):
        hub, _, handle = uri.partition("://")
        if not _HUB_HANDLE.match(handle) or ".." in handle.split("/"):
            example = "keras/resnetv2/keras/resnet50_v2_imagenet/2" if hub == "kaggle" else "OWNER/REPO"
            raise SourceError(
                f"Expected a keras-hub preset handle {hub}://{example}. Received {_q(uri)}."
            )
        return ParsedURI("hub", uri, name=handle)
    scheme = re.match(r"^([a-zA-Z][a-zA-Z0-9+.\-]*)://", uri)
    if scheme:
        raise SourceError(
            f"Expected a source URI with scheme s3://, file://, kaggle:// or hf://, a local path "
            f"or keras.applications/NAME. Received scheme {_q(scheme.group(1))} in {_q(uri)}."
        )
    return ParsedURI("local", uri, path=Path(uri).expanduser())


def file_uri_path(uri: str, *, error: type[Exception] = SourceError) -> Path:
    """The local path of ``file:///abs/path`` or ``file://localhost/abs/path`` (percent-decoded).

    Any other host is refused rather than dropped: ``file://server/data`` is not ``/data``. The
    rest of the URI is the path as written (a ``#`` or ``?`` is part of the file name).

        >>> file_uri_path("file://localhost/srv/model%20v2.keras")
        PosixPath('/srv/model v2.keras')
    """
    if not isinstance(uri, str) or not uri.startswith("file://"):
        raise error(f"Expected a file:///absolute/path URI. Received {_q(uri)}.")
    host, slash, rest = uri[len("file://") :].partition("/")
    if host not in ("", "localhost"):
        raise error(
            f"Expected file:///absolute/path or file://localhost/absolute/path. Received host "
            f"{_q(host)} in {_q(uri)}; kerascut reads only local files, write the path with three slashes."
        )
    if not slash:
        raise error(f"Expected file:///absolute/path with a path. Received {_q(uri)}.")
    path = unquote("/" + rest)
    if "\x00" in path:
        raise error(f"Expected a file URI without NUL characters. Received {_q(uri)}.")
    return Path(path)


def parse_s3(uri: str, *, error: type[Exception] = StoreError) -> tuple[str, str]:
    """``"s3://bucket/a/b"`` -> ``("bucket", "a/b")``; the key may be empty. Rejects ``..`` keys."""
    if not uri.startswith("s3://"):
        raise error(f"Expected an s3://bucket/key URI. Received {_q(uri)}.")
    rest = uri[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not _BUCKET.match(bucket or ""):
        raise error(
            f"Expected s3://BUCKET/key with a valid bucket name (lowercase letters, digits, '.', '-'). "
            f"Received bucket {_q(bucket)} in {_q(uri)}."
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
        raise error(f"Expected a non-empty object key. Received {_q(key)}.")
    if key.startswith("/") or key.startswith("\\") or re.match(r"^[A-Za-z]:[\\/]", key):
        raise error(f"Expected a relative object key. Received an absolute key in {_q(shown)}; remove the leading '/'.")
    parts = re.split(r"[\\/]", key)
    if any(part in ("..", ".") for part in parts):
        raise error(
            f"Expected an object key without '.' or '..' segments. Received {_q(shown)}; "
            "keys that climb directories are refused."
        )
    if "\x00" in key:
        raise error(f"Expected an object key without NUL characters. Received {_q(shown)}.")
    return key


def check_name(value: str, what: str = "name") -> str:
    """A backbone name or version: one path segment of letters, digits, ``.``, ``_``, ``-``.

    The one rule for backbone names, versions and run ids: stores check every path segment they
    write or read with it, and the config checks ``backbones[i].name`` with it. A name starts
    with a letter or digit (so it is never ``.``, ``..`` or hidden) and goes on with at most
    :data:`NAME_MAX_LENGTH` - 1 more letters, digits, ``.``, ``_`` or ``-``; the whole string
    must match, so a trailing newline is refused too.

    The config and the stores share this rule, so every name a config accepts is a valid
    store path segment and the other way round. ``..`` inside a segment (``v1..2``) is
    harmless: only a whole ``..`` segment climbs a directory, and a segment cannot start with ``.``.

        >>> check_name("mobilenetv2-stride16")
        'mobilenetv2-stride16'
        >>> check_name("../etc")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        kerascut_core.errors.StoreError: Expected the backbone name to be one path segment ...
    """
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise StoreError(
            f"Expected the backbone {what} to be one path segment of letters, digits, '.', '_' or '-' "
            f"(starting with a letter or digit, at most {NAME_MAX_LENGTH} characters). Received {_q(value)}."
        )
    return value


def split_backbone_ref(ref: str) -> tuple[str, str, str | None]:
    """``"s3://b/prefix/resnet@abc"`` -> ``("s3://b/prefix", "resnet", "abc")``; version may be None."""
    if not isinstance(ref, str) or "/" not in ref.rstrip("/"):
        raise StoreError(
            f"Expected STORE/NAME[@VERSION], e.g. s3://bucket/backbones/resnet50 or ./store/resnet50. "
            f"Received {_q(ref)}."
        )
    ref = ref.rstrip("/")
    store, _, last = ref.rpartition("/")
    name, _, version = last.partition("@")
    if store in ("s3:", "s3:/") or store.endswith("://"):
        raise StoreError(f"Expected STORE/NAME with STORE a bucket or directory. Received {_q(ref)}.")
    check_name(name)
    if version:
        check_name(version, "version")
    return store, name, version or None


# ``$NAME`` or ``${...}`` (what is inside the braces is checked to be a name)
_VAR = re.compile(r"\$(?:\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def expand_path(value: str, what: str = "store", *, error: type[Exception] = StoreError) -> str:
    """``value`` with ``$NAME`` / ``${NAME}`` replaced by the environment's values and a leading
    ``~`` / ``~user`` by the home directory; an unset variable, a bad ``${...}`` or an unknown
    user is ``error`` in one line. Nothing is taken literally: ``store: $HOME/x`` must not
    create a directory called ``$HOME``. A ``$`` followed by no name (``a$``, ``$1``) is kept.
    A value is expanded once: a ``$`` inside a variable's value stays as it is.

        >>> expand_path("${HOME}/store") == os.environ["HOME"] + "/store"
        True
        >>> expand_path("$KC_DOC_UNSET/x")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        kerascut_core.errors.StoreError: Cannot expand $KC_DOC_UNSET in the store '$KC_DOC_UNSET/x': ...
    """

    def variable(match: re.Match[str]) -> str:
        name = match.group(1) if match.group(1) is not None else match.group(2)
        if not _VAR_NAME.fullmatch(name):
            raise error(
                f"Cannot expand {short_repr(match.group(0), 60)} in the {what} {short_repr(value, 200)}: "
                "expected ${NAME} with NAME letters, digits and '_'. Write the path out instead."
            )
        found = os.environ.get(name)
        if found is None:
            raise error(
                f"Cannot expand ${name} in the {what} {short_repr(value, 200)}: the environment variable "
                f"{name} is not set. Set it, or write the path out."
            )
        return found

    text = _VAR.sub(variable, value) if "$" in value else value
    if text.startswith("~"):
        home = os.path.expanduser(text)
        if home.startswith("~"):
            user = text[1:].split("/", 1)[0]
            raise error(
                f"Cannot expand ~{short_repr(user, 60)[1:-1]} in the {what} {short_repr(value, 200)}: no such user "
                "or no home directory. Write the path out."
            )
        text = home
    return text
