"""The file-system steps a :class:`~kerascut_core.stores.local.LocalStore` is built on.

Refusing symbolic links and special files, per-key ``flock`` locks, directory ``fsync``,
bounded reads of an open file, walking the tree for a listing, and finding the temporary
files crashed writers left behind. Nothing here follows a link.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from kerascut_core.errors import StoreError
from kerascut_core.stores.base import _CHUNK, TMP_PREFIX, ObjectInfo, ScanResult, too_large

__all__ = [
    "LOCK_DIR",
    "file_kind",
    "find_temp_files",
    "fsync_dir",
    "key_lock",
    "object_info",
    "read_fd",
    "refused",
    "scan_tree",
]

#: The directory of per-key lock files at the store root (never listed).
LOCK_DIR = ".kerascut-locks"


def file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def refused(path: Path, kind: str, root: Path) -> StoreError:
    return StoreError(
        f"Refusing {path}: it is {kind} inside the store {root}, which holds only regular files and "
        "directories. Remove it (kerascut never follows links or reads special files in a store)."
    )


def object_info(key: str, st: os.stat_result) -> ObjectInfo:
    """The :class:`ObjectInfo` of a regular file; its etag changes with every write."""
    return ObjectInfo(
        key=key,
        size=st.st_size,
        # every write renames a new inode into place, so (inode, mtime, size) changes with it
        etag=f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}",
        last_modified=dt.datetime.fromtimestamp(st.st_mtime, tz=dt.timezone.utc),
    )


def fsync_dir(path: Path) -> None:
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


def read_fd(fd: int, path: Path, size: int, max_bytes: int | None) -> bytes:
    """The bytes of the open file ``fd`` (closed after), at most ``max_bytes`` (:class:`IntegrityError` past it)."""
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


def find_temp_files(root: Path, skip: Callable[[Path], bool] | None = None) -> list[tuple[Path, float]]:
    """Hidden temporary files left by crashed writers, with their mtimes (for gc).

    Links are never followed; ``skip(dir)`` prunes directories (nested stores).
    """
    found = []
    if root.is_dir():
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            dirnames[:] = [d for d in dirnames if not (here / d).is_symlink() and not (skip and skip(here / d))]
            for name in filenames:
                if name.startswith(TMP_PREFIX):
                    path = here / name
                    with contextlib.suppress(FileNotFoundError):
                        found.append((path, os.lstat(path).st_mtime))
    return found


@contextlib.contextmanager
def key_lock(root: Path, key: str) -> Iterator[None]:
    """An exclusive ``flock`` on ``key`` under ``root``'s lock directory, for the block."""
    import fcntl

    lock_dir = root / LOCK_DIR
    if lock_dir.is_symlink():
        raise refused(lock_dir, "a symbolic link", root)
    lock_dir.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(key.encode()).hexdigest()[:32] + ".lock"
    fd = os.open(lock_dir / name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
    with os.fdopen(fd, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def scan_tree(root: Path, base: Path, result: ScanResult) -> None:
    """Add the regular files under the directory ``base`` of the store ``root`` to ``result``.

    Links and special files are skipped and reported; temporary files and locks are left out.
    """
    for dirpath, dirnames, filenames in os.walk(base):  # never follows links
        here = Path(dirpath)
        kept = []
        for d in dirnames:
            if d == LOCK_DIR:
                continue
            if (here / d).is_symlink():
                result.skipped.append((str(here / d), "a symbolic link"))
            else:
                kept.append(d)
        dirnames[:] = kept
        rel = here.relative_to(root)
        for name in filenames:
            if name.startswith(TMP_PREFIX):
                continue
            try:
                st = os.lstat(here / name)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode):
                kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else file_kind(st.st_mode)
                result.skipped.append((str(here / name), kind))
                continue
            result.objects.append(object_info((rel / name).as_posix(), st))
