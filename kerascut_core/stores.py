"""Stores: where backbones are published. A local directory (the embedded default) or S3.

    >>> store = open_store("/tmp/backbones")                 # or "s3://bucket/prefix"
    >>> store.put_bytes("demo/hello.txt", b"hi")             # doctest: +SKIP
    >>> store.put_bytes("demo/hello.txt", b"again")          # doctest: +SKIP
    Traceback (most recent call last):
    kerascut_core.errors.ObjectExistsError: Cannot write ... it already exists ...

Keys are relative to the store root (``name/version/model.keras``) and are checked: a key
with ``..`` or an absolute key is refused. Every write is all-or-nothing:

* **put without overwrite** must not find the object: S3 sends ``If-None-Match: *`` (on the
  single PUT or on ``CompleteMultipartUpload``), a local store writes a hidden temporary file
  and ``os.link``\\ s it to the final name, which fails atomically if the name exists. A reader
  never sees a half-written object under its real name.
* **conditional update** (``update_json``, used for ``latest.json``) is a read-modify-write
  loop: S3 sends ``If-Match: <etag>``, a local store compares the etag under an ``flock`` and
  renames a temporary file into place. A writer that loses the race re-reads and re-applies
  its change, so concurrent writers lose no update.
* **transfers** over ``KERASCUT_S3_MULTIPART_THRESHOLD`` (16 MiB) are multipart, in
  ``KERASCUT_S3_MULTIPART_CHUNKSIZE`` (8 MiB) parts with ``KERASCUT_S3_CONCURRENCY`` (10) in flight and an optional ``progress(n_bytes)``
  callback; a failed multipart upload is aborted, and ``kerascut gc`` aborts any left behind.
* **errors** are one line: :class:`ObjectNotFoundError`, :class:`ObjectExistsError`,
  :class:`PreconditionFailedError`, or :class:`StoreError` (no credentials, access denied,
  missing bucket, unreachable endpoint). botocore retries transient faults (``standard`` mode).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import os
import random
import shutil
import stat
import tempfile
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from kerascut_core import _s3
from kerascut_core.errors import (
    IntegrityError,
    ObjectExistsError,
    ObjectNotFoundError,
    PreconditionFailedError,
    StoreError,
)
from kerascut_core.uris import check_key, parse_s3

__all__ = ["MAX_JSON_BYTES", "LocalStore", "ObjectInfo", "S3Store", "ScanResult", "Store", "open_store", "sha256_file"]

Progress = Callable[[int], Any]
TMP_PREFIX = ".kerascut-tmp-"
_CHUNK = 1 << 20
MULTIPART_THRESHOLD = int(os.environ.get("KERASCUT_S3_MULTIPART_THRESHOLD", str(16 << 20)))
MULTIPART_CHUNKSIZE = int(os.environ.get("KERASCUT_S3_MULTIPART_CHUNKSIZE", str(8 << 20)))
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
    def get_bytes(self, key: str, *, max_bytes: int | None = None) -> bytes:
        """The object's bytes; with ``max_bytes``, :class:`IntegrityError` at the first byte over."""

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

    def list_objects(self, prefix: str = "") -> list[ObjectInfo]:
        """Like :meth:`list`, with sizes and modification times (no per-object requests on S3)."""
        return self.scan(prefix).objects

    @abstractmethod
    def list_dirs(self, prefix: str = "") -> list[str]:
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
        return self._read_json_etag(key)[0]

    def _read_json_etag(self, key: str) -> tuple[Any, str]:
        raise NotImplementedError

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
                current, etag = self._read_json_etag(key)
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


def open_store(uri: str | Path, *, endpoint_url: str | None = None) -> Store:
    """Open a store: a local directory (path or ``file://``) or ``s3://bucket/prefix``.

    S3 credentials come from the standard AWS chain; the endpoint from ``endpoint_url``,
    ``AWS_ENDPOINT_URL`` or the AWS config file, so MinIO works.

        >>> open_store("./backbones")            # doctest: +SKIP
        LocalStore('/abs/path/backbones')
        >>> open_store("s3://team-models/backbones")
        S3Store('s3://team-models/backbones')
    """
    if isinstance(uri, Path):
        return LocalStore(uri)
    if not isinstance(uri, str) or not uri.strip():
        raise StoreError(f"Expected a store URI: a directory, file://DIR or s3://bucket/prefix. Received {uri!r}.")
    uri = uri.strip()
    if uri.startswith("s3://"):
        return S3Store(uri, endpoint_url=endpoint_url)
    if "://" in uri and not uri.startswith("file://"):
        raise StoreError(
            f"Expected a store URI: a directory, file://DIR or s3://bucket/prefix. "
            f"Received scheme {uri.split('://')[0]!r} in {uri!r}."
        )
    return LocalStore(_local_uri(uri))


# ---------------------------------------------------------------------------------------------
# Local directory
# ---------------------------------------------------------------------------------------------


class LocalStore(Store):
    """A directory. Writes go to hidden temporary files first; see the module docstring.

    The store never leaves its root: a symbolic link or a special file (FIFO, socket, device)
    anywhere inside it is refused by reads, writes and deletes with a one-line
    :class:`StoreError`, and skipped (and reported) by listings. The root itself may be a link.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().absolute()
        self.root_uri = str(self.root)
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"Expected the store {self.root} to be a directory. Received a file; pick another path.")

    def uri(self, key: str = "") -> str:
        return str(self.root / check_key(key)) if key else str(self.root)

    def check(self) -> None:
        if not self.root.is_dir():
            raise StoreError(f"Cannot open the store {self.root}: no such directory. Check the path (it is created on first publish).")

    def parent(self) -> LocalStore | None:
        return None if self.root.parent == self.root else LocalStore(self.root.parent)

    def child(self, name: str) -> LocalStore:
        return LocalStore(self._path(name))

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _checked(self, key: str) -> Path:
        """``root/key``, refusing a link or special file at any step inside the store."""
        path = self._path(key)
        current = self.root
        for part in Path(key).parts:
            current = current / part
            try:
                st = os.lstat(current)
            except (FileNotFoundError, NotADirectoryError):
                return path
            if stat.S_ISLNK(st.st_mode):
                raise _refused(current, "a symbolic link", self.root)
            if stat.S_ISDIR(st.st_mode):
                continue
            if not stat.S_ISREG(st.st_mode):
                raise _refused(current, _kind(st.st_mode), self.root)
            return path  # a regular file (the object, or a parent that is a file: fails later)
        return path

    def _open(self, key: str) -> tuple[int, os.stat_result, Path]:
        """An fd of the regular file at ``key``, opened without following a link or blocking."""
        path = self._checked(key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFoundError(f"Cannot read {path}: no such object.") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _refused(path, "a symbolic link", self.root) from None
            raise StoreError(f"Cannot read {path}: {exc.strerror}.") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            if stat.S_ISDIR(st.st_mode):
                raise ObjectNotFoundError(f"Cannot read {path}: no such object (a directory).")
            raise _refused(path, _kind(st.st_mode), self.root)
        return fd, st, path

    @staticmethod
    def _info(key: str, st: os.stat_result) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size=st.st_size,
            # every write renames a new inode into place, so (inode, mtime, size) changes with it
            etag=f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}",
            last_modified=dt.datetime.fromtimestamp(st.st_mtime, tz=dt.timezone.utc),
        )

    def _make_tmp(self, final: Path, key: str, fill: Callable[[Path], None]) -> Path:
        """A hidden temporary file next to ``final``, filled by ``fill(tmp)`` and fsynced.

        A concurrent ``delete`` may remove the (empty) directory between our ``mkdir`` and the
        file's creation; that is retried.
        """
        for attempt in range(10):
            self._checked(key)  # no link on the way: mkdir would follow it out of the store
            try:
                final.parent.mkdir(parents=True, exist_ok=True)
            except (NotADirectoryError, FileExistsError) as exc:
                raise StoreError(f"Cannot write {final}: a parent path is a file. Remove it or pick another key.") from exc
            except PermissionError as exc:
                raise StoreError(f"Cannot write {final}: permission denied. Fix the directory's permissions.") from exc
            tmp = final.parent / f"{TMP_PREFIX}{uuid.uuid4().hex}-{final.name[:100]}"
            try:
                fill(tmp)
                return tmp
            except FileNotFoundError:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                if tmp.parent.exists() or attempt == 9:
                    raise
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                raise
        raise StoreError(f"Cannot write {final}: its directory keeps disappearing. Retry.")  # pragma: no cover

    def _commit_tmp(self, tmp: Path, final: Path, key: str, overwrite: bool) -> ObjectInfo:
        """Give ``tmp`` its real name: replace, or link (which fails if the name exists)."""
        try:
            self._checked(key)
            if overwrite:
                os.replace(tmp, final)
            else:
                try:
                    os.link(tmp, final)
                except FileExistsError:
                    raise _s3.exists_error(str(final)) from None
                except OSError:
                    # no hard links on this filesystem: check-and-rename under the key's lock
                    with self._lock(key):
                        if os.path.lexists(final):
                            raise _s3.exists_error(str(final)) from None
                        os.rename(tmp, final)
            _fsync_dir(final.parent)
            return self._info(key, os.lstat(final))
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    @staticmethod
    def _fill_bytes(data: bytes) -> Callable[[Path], None]:
        def fill(tmp: Path) -> None:
            with open(tmp, "xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())

        return fill

    def put_bytes(self, key, data, *, overwrite=False, if_match=None, metadata=None):
        final = self._checked(key)
        if not overwrite and if_match is None and os.path.lexists(final):
            raise _s3.exists_error(str(final))
        tmp = self._make_tmp(final, key, self._fill_bytes(bytes(data)))
        if if_match is None:
            return self._commit_tmp(tmp, final, key, overwrite)
        try:
            with self._lock(key):
                try:
                    current = self._info(key, os.lstat(self._checked(key))).etag
                except FileNotFoundError:
                    raise ObjectNotFoundError(f"Cannot update {final}: it does not exist (it was deleted).") from None
                if current != if_match:
                    raise PreconditionFailedError(f"Cannot update {final}: it changed concurrently. Retry.")
                os.replace(tmp, final)
                _fsync_dir(final.parent)
                return self._info(key, os.lstat(final))
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def put_file(self, key, path, *, overwrite=False, progress=None, metadata=None):
        final = self._checked(key)
        if not overwrite and os.path.lexists(final):
            raise _s3.exists_error(str(final))
        if not Path(path).is_file():
            raise StoreError(f"Cannot upload {path}: no such file.")

        def fill(tmp: Path) -> None:
            with open(path, "rb") as src, open(tmp, "xb") as dst:
                while chunk := src.read(8 * _CHUNK):
                    dst.write(chunk)
                    if progress:
                        progress(len(chunk))
                dst.flush()
                os.fsync(dst.fileno())

        return self._commit_tmp(self._make_tmp(final, key, fill), final, key, overwrite)

    def copy(self, src, dst, *, overwrite=False):
        fd, _, source = self._open(src)
        os.close(fd)
        final = self._checked(dst)

        def fill(tmp: Path) -> None:
            try:
                os.link(source, tmp)  # published objects are never modified in place: sharing is safe
            except FileNotFoundError:
                if not source.is_file():
                    raise ObjectNotFoundError(f"Cannot copy {source}: no such object.") from None
                raise
            except OSError:
                shutil.copyfile(source, tmp, follow_symlinks=False)

        return self._commit_tmp(self._make_tmp(final, dst, fill), final, dst, overwrite)

    def delete(self, key):
        path = self._checked(key)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        # remove directories left empty, up to the root
        parent = path.parent
        while parent != self.root and self.root in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def _read_fd(self, fd: int, path: Path, size: int, max_bytes: int | None) -> bytes:
        if max_bytes is not None and size > max_bytes:
            raise too_large(str(path), size, max_bytes)
        limit = size if max_bytes is None else max_bytes
        chunks, total = [], 0
        with os.fdopen(fd, "rb") as handle:
            while chunk := handle.read(min(8 * _CHUNK, limit + 1 - total)):
                chunks.append(chunk)
                total += len(chunk)
                if total > limit:
                    if max_bytes is not None:
                        raise too_large(str(path), total, max_bytes)
                    break  # grew while we read: the rest is not ours to return
        return b"".join(chunks)

    def get_bytes(self, key, *, max_bytes=None):
        fd, st, path = self._open(key)
        return self._read_fd(fd, path, st.st_size, max_bytes)

    def _read_json_etag(self, key):
        fd, st, path = self._open(key)
        data = self._read_fd(fd, path, st.st_size, MAX_JSON_BYTES)
        return _parse_json(data, str(path)), self._info(key, st).etag

    def get_file(self, key, dest, progress=None, *, max_bytes=None):
        fd, st, source = self._open(key)
        dest = Path(dest)
        with contextlib.ExitStack() as stack:
            src = stack.enter_context(os.fdopen(fd, "rb"))
            expected = st.st_size
            if max_bytes is not None and expected > max_bytes:
                raise too_large(str(source), expected, max_bytes)
            limit = expected if max_bytes is None else max_bytes
            dest.parent.mkdir(parents=True, exist_ok=True)
            out_fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX, suffix="-" + dest.name[:100], dir=dest.parent)
            tmp = Path(tmp_name)
            stack.callback(lambda: tmp.unlink(missing_ok=True))
            written = 0
            with os.fdopen(out_fd, "wb") as dst:
                while chunk := src.read(min(8 * _CHUNK, limit + 1 - written)):
                    written += len(chunk)
                    if written > limit:
                        if max_bytes is not None:
                            raise too_large(str(source), written, max_bytes)
                        break
                    dst.write(chunk)
                    if progress:
                        progress(len(chunk))
            if written != expected:
                raise IntegrityError(f"Download of {source} ended short or changed size while read ({written} of {expected} bytes). Retry.")
            os.replace(tmp, dest)
        return dest

    def head(self, key):
        path = self._checked(key)
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISREG(st.st_mode):
            return None  # a directory (links and special files were refused above)
        return self._info(key, st)

    def sha256(self, key):
        try:
            fd, _, _ = self._open(key)
        except ObjectNotFoundError:
            return None
        digest = hashlib.sha256()
        with os.fdopen(fd, "rb") as handle:
            while chunk := handle.read(8 * _CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def scan(self, prefix=""):
        result = ScanResult()
        rel_prefix = prefix.strip("/")
        base = self._checked(rel_prefix) if rel_prefix else self.root
        try:
            if not stat.S_ISDIR(os.lstat(base).st_mode):
                return result
        except (FileNotFoundError, NotADirectoryError):
            return result
        for dirpath, dirnames, filenames in os.walk(base):  # never follows links
            here = Path(dirpath)
            kept = []
            for d in dirnames:
                if d == _LOCK_DIR:
                    continue
                if (here / d).is_symlink():
                    result.skipped.append((str(here / d), "a symbolic link"))
                else:
                    kept.append(d)
            dirnames[:] = kept
            rel = here.relative_to(self.root)
            for name in filenames:
                if name.startswith(TMP_PREFIX):
                    continue
                try:
                    st = os.lstat(here / name)
                except FileNotFoundError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else _kind(st.st_mode)
                    result.skipped.append((str(here / name), kind))
                    continue
                result.objects.append(self._info((rel / name).as_posix(), st))
        result.objects.sort(key=lambda o: o.key)
        return result

    def list(self, prefix=""):
        return [o.key for o in self.scan(prefix).objects]

    def list_dirs(self, prefix=""):
        rel_prefix = prefix.strip("/")
        base = self._checked(rel_prefix) if rel_prefix else self.root
        if not base.is_dir():
            return []
        return sorted(e.name for e in os.scandir(base) if e.is_dir(follow_symlinks=False) and e.name != _LOCK_DIR)

    def temp_files(self, skip: Callable[[Path], bool] | None = None) -> list[tuple[Path, float]]:
        """Hidden temporary files left by crashed writers, with their mtimes (for gc).

        Links are never followed; ``skip(dir)`` prunes directories (nested stores).
        """
        found = []
        if self.root.is_dir():
            for dirpath, dirnames, filenames in os.walk(self.root):
                here = Path(dirpath)
                dirnames[:] = [d for d in dirnames if not (here / d).is_symlink() and not (skip and skip(here / d))]
                for name in filenames:
                    if name.startswith(TMP_PREFIX):
                        path = here / name
                        with contextlib.suppress(FileNotFoundError):
                            found.append((path, os.lstat(path).st_mtime))
        return found

    @contextlib.contextmanager
    def _lock(self, key: str):
        import fcntl

        lock_dir = self.root / _LOCK_DIR
        if lock_dir.is_symlink():
            raise _refused(lock_dir, "a symbolic link", self.root)
        lock_dir.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(key.encode()).hexdigest()[:32] + ".lock"
        fd = os.open(lock_dir / name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
        with os.fdopen(fd, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _refused(path: Path, kind: str, root: Path) -> StoreError:
    return StoreError(
        f"Refusing {path}: it is {kind} inside the store {root}, which holds only regular files and "
        "directories. Remove it (kerascut never follows links or reads special files in a store)."
    )


_LOCK_DIR = ".kerascut-locks"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems refuse fsync on directories
        if exc.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _parse_json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"Cannot parse {where}: not valid JSON ({exc.__class__.__name__}). Restore or delete it.") from None


# ---------------------------------------------------------------------------------------------
# S3
# ---------------------------------------------------------------------------------------------


class S3Store(Store):
    """``s3://bucket/prefix`` through boto3 (see the module docstring for the guarantees)."""

    def __init__(self, uri: str, *, endpoint_url: str | None = None) -> None:
        bucket, prefix = parse_s3(uri.rstrip("/") if uri.rstrip("/") != "s3:/" else uri)
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.root_uri = f"s3://{bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self._endpoint = endpoint_url
        self._bucket_checked = False

    @property
    def client(self) -> Any:
        return _s3.client(self._endpoint)

    def uri(self, key: str = "") -> str:
        return f"{self.root_uri}/{check_key(key)}" if key else self.root_uri

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, action: str, key: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as exc:
            raise _s3.map_error(exc, self.uri(key) if key else self.root_uri, action) from exc

    # -- writes ---------------------------------------------------------------------------
    def put_bytes(self, key, data, *, overwrite=False, if_match=None, metadata=None):
        data = bytes(data)
        meta = {"sha256": hashlib.sha256(data).hexdigest(), **(metadata or {})}
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key), "Body": data, "Metadata": meta}
        if key.endswith(".json"):
            kwargs["ContentType"] = "application/json"
        if if_match is not None:
            kwargs["IfMatch"] = if_match
        elif not overwrite:
            kwargs["IfNoneMatch"] = "*"
        try:
            response = self.client.put_object(**kwargs)
        except Exception as exc:
            mine = self._retried_own_write(exc, key, meta["sha256"], len(data))
            if mine is not None:
                return mine
            raise self._write_error(exc, key, if_match is None and not overwrite) from exc
        return ObjectInfo(
            key=key,
            size=len(data),
            etag=response.get("ETag", ""),
            last_modified=dt.datetime.now(dt.timezone.utc),
            version_id=response.get("VersionId"),
            metadata=meta,
        )

    def _retried_own_write(self, exc: Exception, key: str, sha256: str, size: int) -> ObjectInfo | None:
        """Our own earlier attempt, when botocore retried a write whose response was lost.

        A conditional write that succeeded on the server but whose response was lost (a reset
        connection) is retried by botocore and then fails its own precondition. When the object
        now there has our sha256 and size, that first attempt succeeded: the write is done.
        """
        response = getattr(exc, "response", None) or {}
        if not response.get("ResponseMetadata", {}).get("RetryAttempts"):
            return None
        if _s3.map_error(exc, self.uri(key)).__class__ not in (PreconditionFailedError, ObjectNotFoundError) \
                and response.get("Error", {}).get("Code") != "NoSuchUpload":
            return None
        info = self.head(key)
        return info if info is not None and info.sha256 == sha256 and info.size == size else None

    def _write_error(self, exc: Exception, key: str, if_none_match: bool) -> Exception:
        mapped = _s3.map_error(exc, self.uri(key), "write")
        if if_none_match and isinstance(mapped, PreconditionFailedError):
            return _s3.exists_error(self.uri(key))
        if isinstance(mapped, ObjectNotFoundError):
            # If-Match on a key that was deleted meanwhile
            return ObjectNotFoundError(f"Cannot update {self.uri(key)}: it does not exist (it was deleted).")
        return mapped

    def put_file(self, key, path, *, overwrite=False, progress=None, metadata=None):
        path = Path(path)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise StoreError(f"Cannot upload {path}: no such file.") from None
        meta = dict(metadata or {})
        if "sha256" not in meta:  # callers that hashed the file already (staging) pass it
            meta["sha256"] = sha256_file(path)
        if not overwrite and self.exists(key):
            # cheap early refusal; the conditional write below is what guarantees it
            raise _s3.exists_error(self.uri(key))
        if size < MULTIPART_THRESHOLD:
            with open(path, "rb") as handle:
                data = handle.read()
            info = self.put_bytes(key, data, overwrite=overwrite, metadata=meta)
            if progress:
                progress(size)
            return info
        return self._multipart_upload(key, path, size, meta, overwrite, progress)

    def _multipart_upload(self, key, path, size, meta, overwrite, progress):
        client, s3_key = self.client, self._key(key)
        chunk = max(MULTIPART_CHUNKSIZE, -(-size // 9000))
        created = self._call(
            "upload", key,
            lambda: client.create_multipart_upload(Bucket=self.bucket, Key=s3_key, Metadata=meta),
        )
        upload_id = created["UploadId"]
        offsets = list(range(0, size, chunk))

        def upload_part(number: int, offset: int) -> dict[str, Any]:
            with open(path, "rb") as handle:
                handle.seek(offset)
                body = handle.read(min(chunk, size - offset))
            response = client.upload_part(
                Bucket=self.bucket, Key=s3_key, UploadId=upload_id, PartNumber=number, Body=body
            )
            if progress:
                progress(len(body))
            part = {"PartNumber": number, "ETag": response["ETag"]}
            for name in ("ChecksumCRC32", "ChecksumCRC32C", "ChecksumSHA1", "ChecksumSHA256", "ChecksumCRC64NVME"):
                if response.get(name):
                    part[name] = response[name]
            return part

        try:
            pool = ThreadPoolExecutor(max_workers=max(1, min(_s3.MAX_CONCURRENCY, len(offsets))))
            try:
                futures = [pool.submit(upload_part, n + 1, off) for n, off in enumerate(offsets)]
                parts = [f.result() for f in futures]
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
            extra = {} if overwrite else {"IfNoneMatch": "*"}
            response = client.complete_multipart_upload(
                Bucket=self.bucket, Key=s3_key, UploadId=upload_id, MultipartUpload={"Parts": parts}, **extra
            )
        except BaseException as exc:
            with contextlib.suppress(Exception):
                client.abort_multipart_upload(Bucket=self.bucket, Key=s3_key, UploadId=upload_id)
            if isinstance(exc, Exception):
                mine = self._retried_own_write(exc, key, meta["sha256"], size)
                if mine is not None:
                    return mine
                raise self._write_error(exc, key, not overwrite) from exc
            raise
        return ObjectInfo(
            key=key,
            size=size,
            etag=response.get("ETag", ""),
            last_modified=dt.datetime.now(dt.timezone.utc),
            version_id=response.get("VersionId"),
            metadata=meta,
        )

    def copy(self, src, dst, *, overwrite=False):
        source = self.head(src)
        if source is None:
            raise ObjectNotFoundError(f"Cannot copy {self.uri(src)}: no such object.")
        if not overwrite and self.exists(dst):
            raise _s3.exists_error(self.uri(dst))
        copy_source = {"Bucket": self.bucket, "Key": self._key(src)}
        if source.version_id:
            copy_source["VersionId"] = source.version_id
        kwargs: dict[str, Any] = {} if overwrite else {"IfNoneMatch": "*"}
        if source.size <= 5 * (1 << 30) - 1:
            try:
                response = self.client.copy_object(
                    Bucket=self.bucket, Key=self._key(dst), CopySource=copy_source,
                    MetadataDirective="COPY", **kwargs,
                )
            except Exception as exc:
                mine = self._retried_own_write(exc, dst, source.sha256 or "", source.size) if source.sha256 else None
                if mine is not None:
                    return mine
                raise self._write_error(exc, dst, not overwrite) from exc
            etag = response.get("CopyObjectResult", {}).get("ETag", "")
            version_id = response.get("VersionId")
        else:  # > 5 GiB: managed multipart copy (the claim protocol in publish.py guards it)
            from boto3.s3.transfer import TransferConfig

            self._call(
                "copy", dst,
                lambda: self.client.copy(
                    copy_source, self.bucket, self._key(dst),
                    ExtraArgs={"Metadata": source.metadata, "MetadataDirective": "REPLACE"},
                    Config=TransferConfig(max_concurrency=_s3.MAX_CONCURRENCY),
                ),
            )
            etag, version_id = "", None
        return ObjectInfo(dst, source.size, etag, dt.datetime.now(dt.timezone.utc), version_id, dict(source.metadata))

    def delete(self, key):
        client, s3_key = self.client, self._key(key)
        versions: list[dict[str, str]] = []
        try:  # on a versioned bucket remove every version, so nothing of a staging object lingers
            for page in client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=s3_key):
                for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                    if item["Key"] == s3_key and item.get("VersionId") not in (None, "null"):
                        versions.append({"Key": s3_key, "VersionId": item["VersionId"]})
        except Exception:  # no s3:ListBucketVersions: a plain delete is still right
            versions = []
        if not versions:
            self._call("delete", key, lambda: client.delete_object(Bucket=self.bucket, Key=s3_key))
            return
        for start in range(0, len(versions), 1000):
            batch = versions[start : start + 1000]
            response = self._call(
                "delete", key,
                lambda batch=batch: client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}),
            )
            if response.get("Errors"):
                first = response["Errors"][0]
                raise StoreError(f"Cannot delete {self.uri(key)}: {first.get('Code')}: {first.get('Message')}")

    # -- reads ----------------------------------------------------------------------------
    def get_bytes(self, key, *, max_bytes=None):
        return self._get(key, max_bytes)[0]

    def _get(self, key: str, max_bytes: int | None = None) -> tuple[bytes, str]:
        def fetch() -> tuple[bytes, str]:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            expected = response.get("ContentLength")
            body_stream = response["Body"]
            if max_bytes is not None and expected is not None and expected > max_bytes:
                body_stream.close()
                raise too_large(self.uri(key), int(expected), max_bytes)
            body = body_stream.read(None if max_bytes is None else max_bytes + 1)
            if max_bytes is not None and len(body) > max_bytes:
                body_stream.close()
                raise too_large(self.uri(key), len(body), max_bytes)
            if expected is not None and len(body) != expected:
                raise IntegrityError(f"Download of {self.uri(key)} ended short ({len(body)} of {expected} bytes). Retry.")
            return body, response.get("ETag", "")

        from botocore import exceptions as bexc

        # botocore retries requests, not the reading of a body cut short: retry those here
        streaming = (bexc.IncompleteReadError, bexc.ResponseStreamingError, bexc.ReadTimeoutError,
                     bexc.ConnectionClosedError)
        attempts = int(os.environ.get("KERASCUT_S3_MAX_ATTEMPTS", "5"))
        for attempt in range(1, attempts + 1):
            try:
                return fetch()
            except IntegrityError as exc:
                if "ended short" not in str(exc) or attempt == attempts:
                    raise
                time.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0))
            except streaming as exc:
                if attempt == attempts:
                    raise _s3.map_error(exc, self.uri(key), "read") from exc
                time.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0))
            except Exception as exc:
                mapped = _s3.map_error(exc, self.uri(key), "read")
                if isinstance(mapped, ObjectNotFoundError):
                    self._check_bucket()
                raise mapped from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _read_json_etag(self, key):
        data, etag = self._get(key, MAX_JSON_BYTES)
        return _parse_json(data, self.uri(key)), etag

    def get_file(self, key, dest, progress=None, *, max_bytes=None):
        from boto3.s3.transfer import TransferConfig

        info = self.head(key)
        if info is None:
            raise ObjectNotFoundError(f"Cannot read {self.uri(key)}: no such object.")
        if max_bytes is not None and info.size > max_bytes:
            raise too_large(self.uri(key), info.size, max_bytes)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        out_fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX, suffix="-" + dest.name[:100], dir=dest.parent)
        os.close(out_fd)
        tmp = Path(tmp_name)
        config = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=MULTIPART_CHUNKSIZE,
            max_concurrency=_s3.MAX_CONCURRENCY,
        )
        try:
            extra = {"VersionId": info.version_id} if info.version_id else {}
            self._call(
                "download", key,
                lambda: self.client.download_file(
                    self.bucket, self._key(key), str(tmp), ExtraArgs=extra or None, Callback=progress, Config=config
                ),
            )
            got = tmp.stat().st_size
            if got != info.size:
                raise IntegrityError(f"Download of {self.uri(key)} ended short ({got} of {info.size} bytes). Retry.")
            os.replace(tmp, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return dest

    def head(self, key):
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            if _s3.is_not_found(exc):
                self._check_bucket()
                return None
            raise _s3.map_error(exc, self.uri(key), "read") from exc
        version = response.get("VersionId")
        return ObjectInfo(
            key=key,
            size=int(response.get("ContentLength", 0)),
            etag=response.get("ETag", ""),
            last_modified=response.get("LastModified") or dt.datetime.now(dt.timezone.utc),
            version_id=version if version and version != "null" else None,
            metadata=dict(response.get("Metadata") or {}),
        )

    def check(self) -> None:
        _s3.check_bucket(self.bucket, "open", self._endpoint)

    def _check_bucket(self) -> None:
        """A 404 on an object could be a missing bucket: ask once, so that is never taken as 'absent'."""
        if self._bucket_checked:
            return
        _s3.check_bucket(self.bucket, "open", self._endpoint)
        self._bucket_checked = True

    def sha256(self, key):
        info = self.head(key)
        return None if info is None else info.sha256

    def _dir_prefix(self, prefix: str) -> str:
        """The S3 prefix of the "directory" ``prefix`` (always ending in ``/`` unless the root)."""
        rel = prefix.strip("/")
        if not rel:
            return f"{self.prefix}/" if self.prefix else ""
        return self._key(rel) + "/"

    def _list(self, prefix: str, delimiter: str | None) -> tuple[list[dict], list[str]]:
        s3_prefix = self._dir_prefix(prefix)
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": s3_prefix}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        objects: list[dict] = []
        dirs: list[str] = []

        def run() -> None:
            for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
                objects.extend(page.get("Contents", []))
                dirs.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))

        try:
            run()
        except Exception as exc:
            raise _s3.map_error(exc, self.uri(prefix.strip("/")) if prefix.strip("/") else self.root_uri, "list") from exc
        return objects, [d[len(s3_prefix) :].rstrip("/") for d in dirs]

    def _rel(self, s3_key: str) -> str:
        return s3_key[len(self.prefix) + 1 :] if self.prefix else s3_key

    def scan(self, prefix=""):
        """One listing, no HEADs. Keys no store operation can address (``..``, ``.`` or empty
        segments, a trailing ``/`` folder marker) are skipped and reported, never fatal."""
        objects, _ = self._list(prefix, None)
        result = ScanResult()
        for o in objects:
            rel = self._rel(o["Key"])
            try:
                check_key(rel)
                if "" in rel.split("/"):
                    raise StoreError("empty segment")
            except StoreError:
                result.skipped.append((f"s3://{self.bucket}/{o['Key']}", "a key with '..', '.' or empty segments"))
                continue
            result.objects.append(ObjectInfo(rel, int(o.get("Size", 0)), o.get("ETag", ""), o["LastModified"]))
        result.objects.sort(key=lambda o: o.key)
        return result

    def list(self, prefix=""):
        return [o.key for o in self.scan(prefix).objects]

    def parent(self) -> S3Store | None:
        if not self.prefix:
            return None
        up = self.prefix.rpartition("/")[0]
        return S3Store(f"s3://{self.bucket}" + (f"/{up}" if up else ""), endpoint_url=self._endpoint)

    def child(self, name: str) -> S3Store:
        return S3Store(self.uri(name), endpoint_url=self._endpoint)

    def list_dirs(self, prefix=""):
        _, dirs = self._list(prefix, "/")
        return sorted(d for d in dirs if d and d not in (".", "..") and "/" not in d)

    def incomplete_uploads(self, prefix: str = "") -> list[tuple[str, str, dt.datetime]]:
        """``(key, upload_id, initiated)`` for multipart uploads never completed nor aborted."""
        found: list[tuple[str, str, dt.datetime]] = []
        s3_prefix = self._dir_prefix(prefix)

        def run() -> None:
            for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=s3_prefix):
                for up in page.get("Uploads", []):
                    found.append((self._rel(up["Key"]), up["UploadId"], up["Initiated"]))

        self._call("list uploads under", prefix, run)
        return found

    def abort_upload(self, key: str, upload_id: str) -> None:
        self._call(
            "abort upload of", key,
            lambda: self.client.abort_multipart_upload(Bucket=self.bucket, Key=self._key(key), UploadId=upload_id),
        )

