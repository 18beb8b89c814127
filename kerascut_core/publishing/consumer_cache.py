"""The consumer cache: downloaded artifacts, verified on every use, never followed out of.

``pull`` and ``load_backbone`` keep a version's artifacts under
``<cache>/backbones/<store id>/<name>/<version>/``, laid out as in the store, beside
``.kerascut-cache.json``, the record of what was downloaded there (each file's sha256 and size,
computed from the bytes as they arrived). The cache may be shared between users and jobs, so
nothing in it is trusted:

- a hit is used only when the record and the manifest (read from the store on every pull) agree
  on the file's sha256 and size, *and* the file's bytes hash to it. The bytes are hashed once,
  while they are read for their use (copied to a pull target, or checked before a load);
- a file that fails is a miss: it is set aside under ``<cache>/backbones/.quarantine/`` (never
  deleted), one :class:`CacheWarning` says so, and the artifact is downloaded again;
- every path below the cache root is walked with :mod:`kerascut_core.safe_fs`: a link, a FIFO or
  a directory where a cached file goes is refused with one line, and nothing outside the cache
  is read or written.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import secrets
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from kerascut_core.errors import IntegrityError
from kerascut_core.publishing.layout import MANIFEST, artifact_key
from kerascut_core.publishing.manifest import Artifact
from kerascut_core.safe_fs import checked_path, make_dirs, open_regular, os_errors
from kerascut_core.stores import TMP_PREFIX, Store

__all__ = ["QUARANTINE", "RECORD", "CacheEntry", "CacheWarning", "open_entry", "write_atomic"]

RECORD = ".kerascut-cache.json"
QUARANTINE = ".quarantine"  # under <cache>/backbones/: what failed verification, kept for a look
_RECORD_MAX_BYTES = 4 << 20
_CHUNK = 8 << 20
_SHA256_HEX = frozenset("0123456789abcdef")


class CacheWarning(UserWarning):
    """A cached file did not verify; it was set aside and downloaded again."""


def _store_id(store: Store) -> str:
    return hashlib.sha256(store.root_uri.encode()).hexdigest()[:16]


def _valid_entry(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("sha256"), str)
        and len(value["sha256"]) == 64
        and set(value["sha256"]) <= _SHA256_HEX
        and type(value.get("bytes")) is int
        and value["bytes"] >= 0
    )


@dataclass
class CacheEntry:
    """One version's directory in the consumer cache, and the record of what was downloaded."""

    base: Path  # the cache root
    store: Store
    name: str
    version: str
    root: Path = field(init=False)
    record: dict[str, dict[str, Any]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.what = f"the cache {self.base}"
        rel = f"backbones/{_store_id(self.store)}/{self.name}/{self.version}"
        self.root = make_dirs(self.base, rel, what=self.what)
        self.record = self._read_record()

    # -- the record -----------------------------------------------------------------------------
    def _read_record(self) -> dict[str, dict[str, Any]]:
        """The record, or ``{}`` when it is missing or unreadable (then every file is a miss)."""
        path = checked_path(self.root, RECORD, what=self.what)
        try:
            fd, _ = open_regular(path, what=self.what)
        except FileNotFoundError:
            return {}
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(_RECORD_MAX_BYTES + 1)
        try:
            body = json.loads(data) if len(data) <= _RECORD_MAX_BYTES else None
        except (ValueError, RecursionError):
            body = None
        files = body.get("files") if isinstance(body, dict) else None
        if not isinstance(files, dict):
            return {}
        return {rel: entry for rel, entry in files.items() if isinstance(rel, str) and _valid_entry(entry)}

    def _save_record(self) -> None:
        """Write the record, merged with what other processes recorded since it was read."""
        self.record = {**self._read_record(), **self.record}
        body = {"store": self.store.root_uri, "name": self.name, "version": self.version, "files": self.record}
        write_atomic(checked_path(self.root, RECORD, what=self.what), json.dumps(body, indent=1, sort_keys=True))

    def write_manifest(self, text: str) -> None:
        with cache_errors(self.base):
            write_atomic(checked_path(self.root, MANIFEST, what=self.what), text)

    # -- one artifact ---------------------------------------------------------------------------
    def fetch(
        self, artifact: Artifact, rel: str, out: IO[bytes] | None = None, progress: Callable[[int], Any] | None = None
    ) -> Path:
        """The cached, verified copy of ``artifact`` (at ``rel``); its bytes also go to ``out``.

        A verified hit is read once (hashed while copied to ``out``); anything else present at
        the path is set aside and the artifact downloaded again, then read once the same way.
        """
        with cache_errors(self.base):
            path = checked_path(self.root, rel, what=self.what)
            reason = self._try_hit(path, rel, artifact, out)
            if reason is None:
                if progress:
                    progress(artifact.bytes)
                return path
            if reason:  # "" is a plain miss: nothing was there
                self._quarantine(path, rel, reason)
            self._download(path, rel, artifact, out, progress)
            return path

    def _try_hit(self, path: Path, rel: str, artifact: Artifact, out: IO[bytes] | None) -> str | None:
        """``None`` on a verified hit, ``""`` on a plain miss, else why the file there failed."""
        try:
            fd, st = open_regular(path, what=self.what)
        except FileNotFoundError:
            return ""
        with os.fdopen(fd, "rb") as handle:
            recorded = self.record.get(rel)
            if recorded is None:  # another process may have downloaded it since the record was read
                self.record = {**self.record, **self._read_record()}
                recorded = self.record.get(rel)
            if recorded is None:
                return "it is not in the cache's record of downloads"
            if recorded["sha256"] != artifact.sha256 or recorded["bytes"] != artifact.bytes:
                return "the cache's record of it disagrees with the manifest"
            if st.st_size != artifact.bytes:
                return f"it has {st.st_size} bytes, not the manifest's {artifact.bytes}"
            digest = _copy_hashing(handle, out)
        if digest != artifact.sha256:
            _rewind(out)
            return f"its sha256 {digest} is not the manifest's {artifact.sha256}"
        return None

    def _download(
        self, path: Path, rel: str, artifact: Artifact, out: IO[bytes] | None, progress: Callable[[int], Any] | None
    ) -> None:
        if "/" in rel:
            make_dirs(self.root, rel.rpartition("/")[0], what=self.what)
        key = artifact_key(self.name, self.version, rel)
        # downloaded under a name of ours, recorded, then renamed into place: a file at the
        # cache's path is always one the record names (concurrent pulls take it for a hit)
        arriving = path.with_name(f"{TMP_PREFIX}{secrets.token_hex(6)}-{path.name[:100]}")
        try:
            self.store.get_file(key, arriving, progress=progress, max_bytes=artifact.bytes)  # fails at the first byte over
            fd, st = open_regular(arriving, what=self.what)
            with os.fdopen(fd, "rb") as handle:
                digest = _copy_hashing(handle, out)
            if st.st_size == artifact.bytes and digest == artifact.sha256:
                self.record[rel] = {"sha256": digest, "bytes": st.st_size}
                self._save_record()
                os.replace(arriving, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                arriving.unlink()
        if st.st_size != artifact.bytes or digest != artifact.sha256:
            _rewind(out)
            raise IntegrityError(
                f"Refusing {self.store.uri(key)}: its sha256 {digest} ({st.st_size} bytes) does not match the "
                f"manifest's {artifact.sha256} ({artifact.bytes} bytes). The stored artifact is corrupt or was "
                "replaced; do not use it, and republish or promote another version."
            )

    def _quarantine(self, path: Path, rel: str, reason: str) -> None:
        """Move the failed file aside (a rename: never followed, never deleted) and warn once."""
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        where = f"backbones/{QUARANTINE}/{_store_id(self.store)}/{self.name}/{self.version}/{stamp}-{secrets.token_hex(4)}"
        if "/" in rel:
            where += "/" + rel.rpartition("/")[0]
        aside = make_dirs(self.base, where, what=self.what) / Path(rel).name
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return  # another process set it aside first
        self.record.pop(rel, None)
        warnings.warn(
            f"The cached {path} did not verify ({reason}); it was set aside as {aside} and is downloaded again.",
            CacheWarning,
            stacklevel=4,
        )


def open_entry(base: Path, store: Store, name: str, version: str) -> CacheEntry:
    """The cache directory of ``name@version`` of ``store`` under ``base``, created without
    following a link (a link or file planted at any level is refused with one line)."""
    with cache_errors(base):
        return CacheEntry(base, store, name, version)


@contextlib.contextmanager
def cache_errors(base: Path) -> Iterator[None]:
    """An ``OSError`` (permissions, a full disk) in the cache as one :class:`StoreError` line."""
    with os_errors(f"use the cache {base}", "Check its permissions and free space, or pass another cache "
                   "directory (--cache-dir, cache_dir=, KERASCUT_CACHE_DIR)."):
        yield


def _copy_hashing(handle: IO[bytes], out: IO[bytes] | None) -> str:
    digest = hashlib.sha256()
    while chunk := handle.read(_CHUNK):
        digest.update(chunk)
        if out is not None:
            out.write(chunk)
    return digest.hexdigest()


def _rewind(out: IO[bytes] | None) -> None:
    """Forget what a copy that failed verification wrote to ``out``."""
    if out is not None:
        out.seek(0)
        out.truncate()


def write_atomic(path: Path, content: str | bytes) -> None:
    """Write through ``mkstemp`` beside ``path`` (O_EXCL: never follows a planted link), then
    rename into place (a link at ``path`` itself is replaced, not followed)."""
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix="-" + path.name[:100], dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content.encode() if isinstance(content, str) else content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
