"""A store in a local directory (the embedded default).

Writes go to a hidden temporary file first, fsynced, then get their real name: a write without
overwrite ``os.link``\\ s the temporary file to the final name, which fails atomically if the
name exists; a conditional update compares the etag under an ``flock`` and renames into place.
A reader never sees a half-written object under its real name.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import hashlib
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from kerascut_core.errors import (
    IntegrityError,
    ObjectNotFoundError,
    PreconditionFailedError,
    StoreError,
)
from kerascut_core.stores._local_fs import (
    LOCK_DIR,
    file_kind,
    find_temp_files,
    fsync_dir,
    key_lock,
    object_info,
    read_fd,
    refused,
    scan_tree,
)
from kerascut_core.stores.base import (
    _CHUNK,
    TMP_PREFIX,
    ObjectInfo,
    ScanResult,
    Store,
    exists_error,
    too_large,
)
from kerascut_core.stores.capabilities import LocalRoot, TempFiles
from kerascut_core.uris import check_key

__all__ = ["LocalStore"]


class LocalStore(Store, TempFiles, LocalRoot):
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
                raise refused(current, "a symbolic link", self.root)
            if stat.S_ISDIR(st.st_mode):
                continue
            if not stat.S_ISREG(st.st_mode):
                raise refused(current, file_kind(st.st_mode), self.root)
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
                raise refused(path, "a symbolic link", self.root) from None
            raise StoreError(f"Cannot read {path}: {exc.strerror}.") from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            if stat.S_ISDIR(st.st_mode):
                raise ObjectNotFoundError(f"Cannot read {path}: no such object (a directory).")
            raise refused(path, file_kind(st.st_mode), self.root)
        return fd, st, path

    _info = staticmethod(object_info)

    def _make_tmp(self, final: Path, key: str, fill: Callable[[Path], None]) -> Path:
        """A hidden temporary file next to ``final``, filled by ``fill(tmp)`` and fsynced.

        A concurrent ``delete`` removes directories it leaves empty: one may go between our
        ``mkdir`` of it and of its child, or between our ``mkdir`` and the file's creation; both
        are retried.
        """
        attempts = 50
        for attempt in range(attempts):
            self._checked(key)  # no link on the way: mkdir would follow it out of the store
            try:
                final.parent.mkdir(parents=True, exist_ok=True)
            except FileNotFoundError:
                if attempt == attempts - 1:
                    raise StoreError(f"Cannot write {final}: its directory keeps disappearing. Retry.") from None
                continue  # a parent we had just made was removed as empty by a concurrent delete
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
                if tmp.parent.exists() or attempt == attempts - 1:
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
                    raise exists_error(str(final)) from None
                except OSError:
                    # no hard links on this filesystem: check-and-rename under the key's lock
                    with key_lock(self.root, key):
                        if os.path.lexists(final):
                            raise exists_error(str(final)) from None
                        os.rename(tmp, final)
            fsync_dir(final.parent)
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
            raise exists_error(str(final))
        tmp = self._make_tmp(final, key, self._fill_bytes(bytes(data)))
        if if_match is None:
            return self._commit_tmp(tmp, final, key, overwrite)
        try:
            with key_lock(self.root, key):
                try:
                    current = self._info(key, os.lstat(self._checked(key))).etag
                except FileNotFoundError:
                    raise ObjectNotFoundError(f"Cannot update {final}: it does not exist (it was deleted).") from None
                if current != if_match:
                    raise PreconditionFailedError(f"Cannot update {final}: it changed concurrently. Retry.")
                os.replace(tmp, final)
                fsync_dir(final.parent)
                return self._info(key, os.lstat(final))
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def put_file(self, key, path, *, overwrite=False, progress=None, metadata=None):
        final = self._checked(key)
        if not overwrite and os.path.lexists(final):
            raise exists_error(str(final))
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

    def get_bytes_with_etag(self, key, *, max_bytes=None):
        fd, st, path = self._open(key)
        return read_fd(fd, path, st.st_size, max_bytes), self._info(key, st).etag

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
        scan_tree(self.root, base, result)
        result.objects.sort(key=lambda o: o.key)
        return result

    def list(self, prefix=""):
        return [o.key for o in self.scan(prefix).objects]

    def list_dirs(self, prefix=""):
        rel_prefix = prefix.strip("/")
        base = self._checked(rel_prefix) if rel_prefix else self.root
        if not base.is_dir():
            return []
        return sorted(e.name for e in os.scandir(base) if e.is_dir(follow_symlinks=False) and e.name != LOCK_DIR)

    def temp_files(self, skip: Callable[[Path], bool] | None = None) -> builtins.list[tuple[Path, float]]:
        return find_temp_files(self.root, skip)  # `builtins.list` above: `list` is the method
