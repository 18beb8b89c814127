"""What every store is: the :class:`Store` interface, its object records, and shared helpers.

A store holds objects under keys relative to its root (``name/version/model.keras``); keys are
checked (no ``..``, no absolute keys). :class:`Store` declares the operations each backend
implements (``LocalStore``, ``S3Store``) and implements on top of them what all share: JSON
objects, the conditional read-modify-write loop of :meth:`Store.update_json`, and the mapping
between full URIs and keys.
"""

from __future__ import annotations

import builtins
import datetime as dt
import hashlib
import json
import os
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from kerascut_core.errors import (
    IntegrityError,
    ObjectExistsError,
    ObjectNotFoundError,
    PreconditionFailedError,
    StoreError,
)
from kerascut_core.stores._json import parse_json
from kerascut_core.uris import check_key

__all__ = [
    "MAX_JSON_BYTES",
    "TMP_PREFIX",
    "ObjectInfo",
    "Progress",
    "ScanResult",
    "Store",
    "exists_error",
    "sha256_file",
    "too_large",
]

Progress = Callable[[int], Any]
TMP_PREFIX = ".kerascut-tmp-"
_CHUNK = 1 << 20
#: The most bytes a JSON object of the store (manifest, pointer, claim, index) may have; real
#: ones are kilobytes. A larger one is refused before it is read whole.
MAX_JSON_BYTES = int(os.environ.get("KERASCUT_MAX_STORE_JSON_BYTES", str(16 << 20)))


@dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD returns. ``etag`` is opaque: pass it back to conditional writes."""

    key: str
    size: int
    etag: str
    last_modified: dt.datetime
    version_id: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def sha256(self) -> str | None:
        """The sha256 recorded when kerascut wrote the object (S3 metadata), if any."""
        return self.metadata.get("sha256")


@dataclass
class ScanResult:
    """A listing that does not stop at a bad entry: the objects, and what was skipped and why.

    ``skipped`` holds ``(where, reason)`` for entries no store operation may touch: symbolic
    links and special files in a local store, S3 keys with ``..``, ``.`` or empty segments.
    """

    objects: list[ObjectInfo] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def too_large(where: str, size: int, limit: int) -> IntegrityError:
    return IntegrityError(
        f"Refusing {where}: it has {size} bytes or more, over the {limit} expected. The stored object "
        "is corrupt or was replaced; do not use it."
    )


def sha256_file(path: str | Path, progress: Progress | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(8 * _CHUNK):
            digest.update(chunk)
            if progress:
                progress(len(chunk))
    return digest.hexdigest()


def exists_error(uri: str) -> ObjectExistsError:
    return ObjectExistsError(
        f"Cannot write {uri}: it already exists and published objects are immutable. "
        "Publish a new version instead (a changed source or cut spec gets a new version)."
    )


class Store(ABC):
    """Operations every store offers; keys are relative to the store root."""

    #: the URI the store was opened with, normalised (no trailing slash)
    root_uri: str

    # -- writes ---------------------------------------------------------------------------
    @abstractmethod
    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        overwrite: bool = False,
        if_match: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        """Write ``data`` under ``key``. Without ``overwrite`` the key must not exist
        (:class:`ObjectExistsError`); with ``if_match`` it must exist with that etag
        (:class:`PreconditionFailedError`)."""

    @abstractmethod
    def put_file(
        self,
        key: str,
        path: str | Path,
        *,
        overwrite: bool = False,
        progress: Progress | None = None,
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        """Upload a file; a ``sha256`` entry is added to the metadata."""

    @abstractmethod
    def copy(self, src: str, dst: str, *, overwrite: bool = False) -> ObjectInfo:
        """Copy an object inside the store (server-side on S3, a hard link locally)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete ``key`` (every version of it on a versioned bucket); missing keys are fine.

        Only staging objects, claims and uncommitted leftovers are ever deleted.
        """

    # -- reads ----------------------------------------------------------------------------
    @abstractmethod
    def get_bytes_with_etag(self, key: str, *, max_bytes: int | None = None) -> tuple[bytes, str]:
        """The object's bytes and the etag of exactly those bytes, read in one request.

        Pass the etag back as ``put_bytes(..., if_match=etag)`` to write only if nobody wrote
        the object in between (a conditional read-modify-write). With ``max_bytes``,
        :class:`IntegrityError` at the first byte over; :class:`ObjectNotFoundError` if missing.
        """

    def get_bytes(self, key: str, *, max_bytes: int | None = None) -> bytes:
        """The object's bytes; with ``max_bytes``, :class:`IntegrityError` at the first byte over."""
        return self.get_bytes_with_etag(key, max_bytes=max_bytes)[0]

    @abstractmethod
    def get_file(
        self, key: str, dest: str | Path, progress: Progress | None = None, *, max_bytes: int | None = None
    ) -> Path:
        """Download to ``dest`` through a temporary name; the size is checked before the rename.

        With ``max_bytes`` an object larger than that fails before (or at the first byte over)
        the download, never after reading it whole.
        """

    @abstractmethod
    def head(self, key: str) -> ObjectInfo | None:
        """Metadata of ``key``, or ``None`` when it does not exist (a missing bucket raises)."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Every key under ``prefix`` (recursive), sorted."""

    @abstractmethod
    def scan(self, prefix: str = "") -> ScanResult:
        """Every object under ``prefix`` with size and time, plus the entries skipped and why."""

    # `builtins.list` below: in the class body, `list` is the method above.
    def list_objects(self, prefix: str = "") -> builtins.list[ObjectInfo]:
        """Like :meth:`list`, with sizes and modification times (no per-object requests on S3)."""
        return self.scan(prefix).objects

    @abstractmethod
    def list_dirs(self, prefix: str = "") -> builtins.list[str]:
        """The immediate sub-"directories" under ``prefix`` (names only, sorted)."""

    @abstractmethod
    def uri(self, key: str = "") -> str:
        """The full URI of ``key`` (``s3://bucket/prefix/key`` or an absolute path)."""

    @abstractmethod
    def sha256(self, key: str) -> str | None:
        """The sha256 of an object: recorded metadata on S3, computed locally; None if missing."""

    @abstractmethod
    def check(self) -> None:
        """Raise a one-line :class:`StoreError` when the store itself (directory, bucket) is missing."""

    # -- shared ---------------------------------------------------------------------------
    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def key_of(self, uri: str) -> str:
        """The key of a full URI inside this store (inverse of :meth:`uri`)."""
        root = self.uri("").rstrip("/") + "/"
        candidate = uri if "://" in uri and not uri.startswith("file://") else _local_uri(uri)
        if not candidate.startswith(root):
            raise StoreError(f"Expected a URI inside the store {self.root_uri}. Received {uri!r}.")
        return check_key(candidate[len(root) :])

    def put_json(self, key: str, value: Any, *, overwrite: bool = False) -> ObjectInfo:
        return self.put_bytes(key, _dump_json(value), overwrite=overwrite)

    def read_json(self, key: str) -> Any:
        """Parse the JSON object at ``key`` (:class:`ObjectNotFoundError` if missing)."""
        return self.read_json_with_etag(key)[0]

    def read_json_with_etag(self, key: str) -> tuple[Any, str]:
        """The parsed JSON object at ``key`` and its etag, for a conditional write after it.

        At most :data:`MAX_JSON_BYTES` are read and the JSON is parsed defensively (bounded
        depth and integer size, finite numbers); :class:`ObjectNotFoundError` if missing.
        """
        data, etag = self.get_bytes_with_etag(key, max_bytes=MAX_JSON_BYTES)
        return _parse_json(data, self.uri(key)), etag

    def parent(self) -> Store | None:
        """The store one level up (``/a/b`` -> ``/a``, ``s3://b/p/q`` -> ``s3://b/p``), or ``None``."""
        raise NotImplementedError

    def child(self, name: str) -> Store:
        """The store rooted at the sub-directory ``name``."""
        raise NotImplementedError

    def update_json(
        self,
        key: str,
        fn: Callable[[Any | None], Any | None],
        *,
        attempts: int = 50,
    ) -> Any:
        """Conditionally read-modify-write the JSON at ``key``; return what is stored after.

        ``fn`` gets the current value (``None`` when the key is missing) and returns the new
        value, or ``None`` to leave the object as it is. When another writer changes the object
        in between, the write fails its precondition and ``fn`` runs again on the fresh value,
        so no update is lost. After ``attempts`` lost races, :class:`PreconditionFailedError`.
        """
        for attempt in range(attempts):
            try:
                current, etag = self.read_json_with_etag(key)
            except ObjectNotFoundError:
                current, etag = None, None
            new = fn(current)
            if new is None:
                return current
            try:
                if etag is None:
                    self.put_bytes(key, _dump_json(new), overwrite=False)
                else:
                    self.put_bytes(key, _dump_json(new), if_match=etag)
                return new
            except (ObjectExistsError, PreconditionFailedError, ObjectNotFoundError):
                # lost the race (or the object was deleted under us): back off and re-read
                time.sleep(min(0.5, 0.005 * (2 ** min(attempt, 6))) * random.uniform(0.5, 1.5))
        raise PreconditionFailedError(
            f"Cannot update {self.uri(key)}: lost {attempts} races with concurrent writers. "
            "Retry, or look for a process rewriting it in a loop."
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.root_uri!r})"


def _dump_json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, default=str) + "\n").encode()


def _local_uri(path: str) -> str:
    if path.startswith("file://"):
        parsed = urlparse(path)
        if parsed.netloc not in ("", "localhost"):
            raise StoreError(f"Expected file:///absolute/path (no host). Received {path[:200]!r}; drop the host {parsed.netloc[:100]!r}.")
        path = unquote(parsed.path)
    return str(Path(path).expanduser().absolute())


def _parse_json(data: bytes, where: str) -> Any:
    """Every store JSON read goes through here: bounded depth, integer size and finite numbers
    (:func:`kerascut_core.stores._json.parse_json`), one-line StoreErrors naming ``where``."""
    return parse_json(data, where)
