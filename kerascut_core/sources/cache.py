"""The download cache: S3 objects fetched once, keyed by bucket, key and ETag; verified, never trusted.

Layout under the cache directory (``$KERASCUT_CACHE_DIR``, else ``$XDG_CACHE_HOME/kerascut``,
else ``~/.cache/kerascut``)::

    s3/<bucket>/<sha256(key)[:32]>/<etag>/<basename>     the bytes
    s3/<bucket>/<sha256(key)[:32]>/<etag>/entry.json     {bucket, key, etag, size, sha256}
    s3/<bucket>/<sha256(key)[:32]>/.quarantine-<id>-<etag>/   an entry set aside (never read)

* The key never becomes a path: it is hashed, and only a sanitised basename is kept (so the
  file keeps its ``.keras`` / ``.h5`` suffix). A key with ``..`` or an absolute key cannot
  climb out of the cache; such keys are refused before anything is fetched.
* Bytes are downloaded to a temporary name in the entry directory, checked (size against the
  HEAD, sha256 against the metadata kerascut recorded, or MD5 against a single-part ETag), and
  only then renamed into place; ``entry.json`` (with the sha256 computed from those bytes) is
  written last. A crash leaves no half file under the real name, and an entry without
  ``entry.json`` is not a hit.
* A hit is verified, never trusted: the entry's recorded ETag must be the one the remote side
  reports now, and the file's bytes must hash to the recorded sha256. That hash is the one the
  run needs anyway (the manifest records the source's sha256), so :meth:`DownloadCache.lookup`
  returns it with the path (:class:`CachedFile`) and nothing hashes the file twice. A mismatch
  is a miss: the entry is moved aside to a quarantine name inside the cache and fetched again,
  with one :class:`CacheWarning`; the newest few quarantined entries of each key are kept for a
  look, older ones removed (:func:`prune_quarantine`, protocol names only, never through a link).
* The cache may be shared: every path below its root is walked and opened with
  :mod:`kerascut_core.safe_fs` (no link followed, no FIFO read), and a link or special file is
  refused with one :class:`~kerascut_core.errors.SourceError` line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kerascut_core._names import short_repr
from kerascut_core.errors import ConfigError, IntegrityError, SourceError
from kerascut_core.safe_fs import checked_path, make_dirs, open_regular
from kerascut_core.uris import expand_path

__all__ = [
    "QUARANTINE_KEEP",
    "CacheWarning",
    "CachedFile",
    "DownloadCache",
    "check_cache_dir",
    "default_cache_dir",
    "expand_cache_dir",
    "file_signature",
    "hash_regular",
    "prune_quarantine",
    "quarantine",
    "read_marker",
    "verify_download",
    "write_marker",
]

_SAFE = re.compile(r"[^A-Za-z0-9._-]")
# "s3://...", "file:///...", "gs:/x": a URI where a local directory belongs (not "C:/..." nor "./a:b").
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+:/")
#: entry markers are a few hundred bytes; a larger one is not ours
_MARKER_MAX_BYTES = 1 << 20
_CHUNK = 8 << 20


class CacheWarning(UserWarning):
    """A cache entry failed verification and was set aside; the source is fetched again."""


@dataclass(frozen=True)
class CachedFile:
    """A verified file of the cache: its path, the sha256 of its bytes, and the signature
    (:func:`file_signature`) of the file those bytes were read from."""

    path: Path
    sha256: str
    signature: tuple[int, ...]


def file_signature(st: os.stat_result) -> tuple[int, ...]:
    """``(device, inode, size, mtime_ns, ctime_ns)``: the same while the file is not replaced
    or rewritten, so bytes hashed under one signature are the bytes read under the same one."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def check_cache_dir(value: str | os.PathLike[str], what: str = "cache_dir") -> str:
    """Return ``value``, ``$NAME`` and ``~`` expanded, if it is a local directory path;
    ``ConfigError`` for a URI or an unset variable.

    The cache is always on local disk: ``s3://bucket/cache`` would otherwise become a
    directory called ``s3:`` in the working directory, and ``$HOME/cache`` one called ``$HOME``.
    """
    text = os.fspath(value)
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(
            f"Expected `{what}` to be a local directory such as ~/.cache/kerascut. Received {short_repr(text)}."
        )
    text = expand_path(text, what, error=ConfigError)
    if _URI_SCHEME.match(text.strip()):
        raise ConfigError(
            f"Expected `{what}` to be a local directory such as ~/.cache/kerascut. Received the URI "
            f"{short_repr(text, 200)}; the download cache is always on local "
            "disk, give a directory path instead."
        )
    return text


def expand_cache_dir(value: str | os.PathLike[str], what: str = "cache_dir") -> Path:
    """``value`` (checked by :func:`check_cache_dir`) with ``~`` and ``$VAR`` / ``${VAR}``
    expanded; a variable that is not set is a ``ConfigError``, never a directory named after it.

        >>> import os; os.environ["KC_DOC_BASE"] = "/srv"
        >>> expand_cache_dir("$KC_DOC_BASE/cache").as_posix()
        '/srv/cache'
        >>> del os.environ["KC_DOC_BASE"]
    """
    return Path(check_cache_dir(value, what))


def default_cache_dir() -> Path:
    """``$KERASCUT_CACHE_DIR``, else ``$XDG_CACHE_HOME/kerascut``, else ``~/.cache/kerascut``.

    ``KERASCUT_CACHE_DIR`` must be a local directory; a URI there is a ``ConfigError``.
    """
    explicit = os.environ.get("KERASCUT_CACHE_DIR")
    if explicit:
        return expand_cache_dir(explicit, "KERASCUT_CACHE_DIR")
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = expand_cache_dir(xdg, "XDG_CACHE_HOME") if xdg else Path.home() / ".cache"
    return base / "kerascut"


def _safe_name(key: str) -> str:
    name = _SAFE.sub("_", key.replace("\\", "/").rsplit("/", 1)[-1])
    return name if name.strip(".") else "object"


class DownloadCache:
    """A directory of verified downloads (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = expand_cache_dir(root) if root is not None else default_cache_dir()
        self.what = f"the download cache {self.root}"

    def entry_dir(self, bucket: str, key: str, etag: str) -> Path:
        """``s3/<bucket>/<sha256(bucket/key)[:32]>/<etag>``: the entry of one object."""
        return self.entry_path("s3", bucket, key, _SAFE.sub("_", etag.strip('"')) or "no-etag")

    def entry_path(self, kind: str, bucket: str, key: str, leaf: str) -> Path:
        """``<kind>/<bucket>/<sha256(bucket/key)[:32]>/<leaf>`` under the cache, proven inside it.

        The key is hashed, never used as a path; ``leaf`` is sanitised."""
        key_hash = hashlib.sha256(f"{bucket}/{key}".encode()).hexdigest()[:32]
        path = self.root / kind / _SAFE.sub("_", bucket) / key_hash / (_SAFE.sub("_", leaf) or "_")
        # belt and braces: nothing computed above can climb, but prove it
        if self.root.absolute() not in path.absolute().parents:
            raise IntegrityError(f"Refusing cache path {path} outside {self.root}.")
        return path

    def checked(self, path: Path) -> Path:
        """``path`` (under the root), refusing a link or special file at any step below the root."""
        return checked_path(self.root, path.relative_to(self.root), what=self.what, error=SourceError)

    def make_dirs(self, path: Path) -> Path:
        """Create the directory ``path`` under the root one step at a time, never through a link."""
        return make_dirs(self.root, path.relative_to(self.root), what=self.what, error=SourceError)

    def path_for(self, bucket: str, key: str, etag: str) -> Path:
        return self.entry_dir(bucket, key, etag) / _safe_name(key)

    def lookup(self, bucket: str, key: str, etag: str, size: int, *, verify: bool = True) -> Path | None:
        """The path of :meth:`lookup_verified`'s hit, or ``None``. Every hit is verified; ``verify``
        is accepted for callers that asked for it and changes nothing."""
        hit = self.lookup_verified(bucket, key, etag, size)
        return hit.path if hit is not None else None

    def lookup_verified(self, bucket: str, key: str, etag: str, size: int) -> CachedFile | None:
        """The verified cached file for this exact object, or ``None`` (a miss).

        A hit must have the recorded key, size and ETag of the object as the remote side
        reports it now, and bytes that hash to the recorded sha256. An entry that fails is
        quarantined with one :class:`CacheWarning`; a link or special file is a ``SourceError``.
        """
        path = self.path_for(bucket, key, etag)
        uri = f"s3://{bucket}/{key}"
        marker = self.checked(path.parent / "entry.json")
        recorded = read_marker(marker, what=self.what)
        if recorded is None:
            return None
        self.checked(path)
        try:
            digest, signature = hash_regular(path, what=self.what)
        except FileNotFoundError:
            reason = "its file is missing"
        else:
            reason = _entry_mismatch(recorded, key=key, etag=etag, size=size, actual=signature[2], digest=digest)
            if not reason:
                return CachedFile(path, digest, signature)
        quarantine(self, path.parent, f"{uri} (ETag {etag})", reason)
        return None

    def temp_path(self, bucket: str, key: str, etag: str) -> Path:
        """A fresh temporary name inside the entry directory (same filesystem: rename is atomic)."""
        directory = self.make_dirs(self.entry_dir(bucket, key, etag))
        return directory / f".tmp-{uuid.uuid4().hex}-{_safe_name(key)}"

    def commit(self, tmp: Path, **fields: Any) -> Path:
        """The path of :meth:`commit_verified` (same arguments)."""
        return self.commit_verified(tmp, **fields).path

    def commit_verified(
        self,
        tmp: Path,
        *,
        bucket: str,
        key: str,
        etag: str,
        size: int,
        sha256: str | None = None,
        uri: str = "",
    ) -> CachedFile:
        """Check ``tmp`` (size, then sha256 or MD5 ETag), rename it into place and record its
        sha256 in ``entry.json``; the returned :class:`CachedFile` carries that sha256."""
        shown = uri or f"s3://{bucket}/{key}"
        try:
            digest = verify_download(tmp, size=size, etag=etag, sha256=sha256, shown=shown)
            plain_etag = etag.strip('"')
            final = self.checked(self.path_for(bucket, key, etag))
            os.replace(tmp, final)
            entry = {"bucket": bucket, "key": key, "etag": plain_etag, "size": size, "sha256": digest}
            write_marker(final.parent / "entry.json", entry)
            return CachedFile(final, digest, file_signature(os.lstat(final)))
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _entry_mismatch(
    recorded: dict[str, object], *, key: str, etag: str, size: int, actual: int, digest: str
) -> str:
    """Why a cache entry does not hold this object's bytes (``""`` when it does)."""
    if recorded.get("key") != key:
        return f"its entry.json names another key ({short_repr(recorded.get('key'))})"
    if recorded.get("etag") != etag.strip('"'):
        return f"its recorded ETag {short_repr(recorded.get('etag'))} is not the object's ETag now"
    if recorded.get("size") != size or actual != size:
        return f"it holds {actual} bytes where the object has {size}"
    if recorded.get("sha256") != digest:
        return "its bytes do not hash to the sha256 recorded when it was downloaded"
    return ""


def read_marker(path: Path, *, what: str) -> dict[str, object] | None:
    """The JSON object of a cache marker, ``None`` when it is missing, unreadable or not ours.

    Opened without following a link or blocking (a link or FIFO is refused with one line), and
    read only up to a bound: a marker is a few hundred bytes."""
    try:
        fd, st = open_regular(path, what=what, error=SourceError)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if st.st_size > _MARKER_MAX_BYTES:
            return None
        data = handle.read(_MARKER_MAX_BYTES + 1)
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def quarantine(cache: DownloadCache, entry: Path, shown: str, reason: str, *, warn: bool = True) -> None:
    """Move ``entry`` (a directory or marker of the cache) aside to a ``.quarantine-`` name
    beside it, and warn once (unless ``warn`` is false). The rename moves a link itself, never
    its target, and the quarantined entry is never read again. Only the newest
    :data:`QUARANTINE_KEEP` quarantined entries beside it are kept (:func:`prune_quarantine`)."""
    cache.checked(entry.parent)
    aside = entry.parent / f".quarantine-{uuid.uuid4().hex[:12]}-{entry.name}"
    with contextlib.suppress(FileNotFoundError):
        os.rename(entry, aside)
    prune_quarantine(entry.parent, keep={aside.name})
    if not warn:
        return
    warnings.warn(
        f"The cached copy of {shown} failed verification ({reason}); it was set aside as "
        f"{aside} and the source is fetched again.",
        CacheWarning,
        stacklevel=3,
    )


#: how many quarantined entries are kept beside a cache entry (the newest; older ones are removed)
QUARANTINE_KEEP = 3
_QUARANTINED = re.compile(r"\.quarantine-[0-9a-f]{12}-.+")


def prune_quarantine(directory: Path, *, keep: set[str] | None = None) -> list[Path]:
    """Remove all but the newest :data:`QUARANTINE_KEEP` quarantined entries in ``directory``
    (a directory of the cache); return what was removed.

    Only names :func:`quarantine` gives (``.quarantine-<12 hex>-<name>``) are ever touched, and
    never through a link: a link is removed itself, a directory with ``shutil.rmtree`` (which
    removes links inside it without following them). ``keep`` names entries never removed (the
    one just set aside). Order is the time each entry was set aside (its inode change time).
    Errors are ignored: pruning must never fail the fetch that set an entry aside."""
    found = []
    try:
        with os.scandir(directory) as listing:
            for item in listing:
                if _QUARANTINED.fullmatch(item.name) and item.name not in (keep or set()):
                    with contextlib.suppress(OSError):
                        st = item.stat(follow_symlinks=False)
                        found.append((max(st.st_ctime, st.st_mtime), item.name, st.st_mode))
    except OSError:
        return []
    found.sort(reverse=True)
    room = QUARANTINE_KEEP - len(keep or set())
    removed = []
    for _, name, mode in found[max(0, room):]:
        path = directory / name
        with contextlib.suppress(OSError):
            if stat.S_ISDIR(mode):
                shutil.rmtree(path)  # never follows a link inside (and refuses one at the top)
            else:
                os.unlink(path)  # a file, or a link itself
            removed.append(path)
    return removed


def write_marker(path: Path, data: dict[str, object]) -> None:
    """Write ``data`` as JSON to ``path`` atomically: a new temporary sibling, then a rename."""
    tmp = path.parent / f".tmp-{uuid.uuid4().hex}-{path.name}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        with os.fdopen(os.open(tmp, flags, 0o644), "w") as handle:
            handle.write(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def verify_download(
    path: Path, *, size: int, etag: str = "", sha256: str | None = None, shown: str = ""
) -> str:
    """Check a downloaded file and return its sha256; :class:`IntegrityError` when it is wrong.

    The size must be ``size``; then the sha256 must be ``sha256`` when one was recorded, else the
    MD5 must equal a single-part ``etag`` (a multipart ETag is no MD5 and is not checked).
    """
    shown = shown or str(path)
    actual = os.lstat(path).st_size
    if actual != size:
        raise IntegrityError(
            f"Download of {shown} ended short: expected {size} bytes, received {actual}. Retry the download."
        )
    digest, md5 = _hash_file(path)
    plain_etag = etag.strip('"')
    if sha256 and digest != sha256:
        raise IntegrityError(
            f"Download of {shown} has a wrong checksum: expected sha256 {sha256}, received {digest}. "
            "Retry; if it persists the object is corrupt."
        )
    if not sha256 and re.fullmatch(r"[0-9a-f]{32}", plain_etag) and md5 != plain_etag:
        raise IntegrityError(
            f"Download of {shown} has a wrong checksum: expected MD5 {plain_etag}, received {md5}. Retry."
        )
    return digest


def hash_regular(path: Path, *, what: str) -> tuple[str, tuple[int, ...]]:
    """``(sha256, signature)`` of the regular file ``path``, read without following a link or
    blocking on a FIFO (refused with one ``SourceError``). ``signature`` is that of the file
    the bytes were read from (:func:`file_signature`), taken after the read."""
    fd, _ = open_regular(path, what=what, error=SourceError)
    sha = hashlib.sha256()
    with os.fdopen(fd, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)
        return sha.hexdigest(), file_signature(os.fstat(handle.fileno()))


def _hash_file(path: Path) -> tuple[str, str]:
    fd, _ = open_regular(path, what=f"the download {path}", error=SourceError)
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with os.fdopen(fd, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            sha.update(chunk)
            md5.update(chunk)
    return sha.hexdigest(), md5.hexdigest()
