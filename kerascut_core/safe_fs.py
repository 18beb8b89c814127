"""Paths under a root that is ours (a cache, a pull target): never followed out through a link.

A cache directory may be shared between users or jobs, and a pull target may already hold
things. Whatever it contains must not make kerascut read or write outside it: a symbolic link
planted at ``<cache>/backbones/<store>/<name>/<version>`` must not turn a download into an
overwrite of the link's target, and a FIFO must not hang a read. Every helper here walks the
path from ``root`` with ``lstat`` and refuses a link or special file at any step *below* the
root (the root itself may be a link: a user may point ``~/.cache`` elsewhere on purpose).

    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> d = make_dirs(root, "a/b", what="the cache")
    >>> d == root / "a" / "b"
    True
    >>> (root / "link").symlink_to(d)
    >>> checked_path(root, "link/x", what="the cache")
    Traceback (most recent call last):
    ...
    kerascut_core.errors.StoreError: Refusing .../link: it is a symbolic link inside the cache...

Errors are one line naming the path, what it is, and the fix (remove it); the error class is
the caller's (``StoreError`` by default, ``SourceError`` for the download cache).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kerascut_core.errors import KerascutError, StoreError

__all__ = ["checked_path", "describe_kind", "make_dirs", "open_regular", "os_errors", "refuse"]

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def describe_kind(mode: int) -> str:
    """``"a symbolic link"``, ``"a FIFO"``, ``"a socket"``, ``"a device"`` or ``"a special file"``."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def refuse(
    path: Path, kind: str, what: str, error: type[KerascutError] = StoreError
) -> KerascutError:
    """The one-line error for ``path`` being ``kind`` inside ``what`` (e.g. ``"the cache /c"``)."""
    return error(
        f"Refusing {path}: it is {kind} inside {what}, which kerascut never follows or reads "
        "through; remove it (kerascut recreates what it needs)."
    )


def checked_path(
    root: str | os.PathLike[str],
    rel: str | os.PathLike[str],
    *,
    what: str,
    error: type[KerascutError] = StoreError,
) -> Path:
    """``root/rel``, refusing a link or special file at any existing step below ``root``.

    Parts that do not exist yet are fine (the caller creates them); ``..`` and absolute parts
    are refused, so the result is always inside ``root``.
    """
    base = Path(root)
    current = base
    parts = Path(rel).parts
    for i, part in enumerate(parts):
        if part in ("..", "") or os.path.isabs(part):
            raise error(f"Refusing the path {rel!s} under {what}: it leaves {base}. Use a relative path inside it.")
        current = current / part
        try:
            st = os.lstat(current)
        except (FileNotFoundError, NotADirectoryError):
            return base.joinpath(*parts)
        if stat.S_ISDIR(st.st_mode):
            continue
        if stat.S_ISREG(st.st_mode) and i == len(parts) - 1:
            return current
        if stat.S_ISREG(st.st_mode):
            raise error(f"Refusing {current}: it is a file inside {what} where a directory belongs; remove it.")
        raise refuse(current, describe_kind(st.st_mode), what, error)
    return current


def make_dirs(
    root: str | os.PathLike[str],
    rel: str | os.PathLike[str],
    *,
    what: str,
    error: type[KerascutError] = StoreError,
) -> Path:
    """Create ``root/rel`` one directory at a time, never through a link; return it.

    A link, file or special file found at any step is refused with one line. A directory
    created concurrently by another process is accepted (``mkdir`` is atomic).
    """
    base = Path(root)
    base.mkdir(parents=True, exist_ok=True)
    current = base
    for part in Path(rel).parts:
        if part in ("..", "") or os.path.isabs(part):
            raise error(f"Refusing the path {rel!s} under {what}: it leaves {base}. Use a relative path inside it.")
        current = current / part
        try:
            os.mkdir(current)
            continue
        except FileExistsError:
            pass
        st = os.lstat(current)
        if stat.S_ISDIR(st.st_mode):
            continue
        if stat.S_ISREG(st.st_mode):
            raise error(f"Refusing {current}: it is a file inside {what} where a directory belongs; remove it.")
        raise refuse(current, describe_kind(st.st_mode), what, error)
    return current


def open_regular(
    path: str | os.PathLike[str], *, what: str, error: type[KerascutError] = StoreError
) -> tuple[int, os.stat_result]:
    """``(fd, stat)`` of the regular file at ``path``, opened without following a link or blocking.

    ``FileNotFoundError`` passes through (a miss is the caller's business); a link, FIFO,
    device or directory is refused with one line. The caller closes the fd.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise refuse(Path(path), "a symbolic link", what, error) from None
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise FileNotFoundError(exc.errno, exc.strerror, os.fspath(path)) from None
        raise error(f"Cannot read {path}: {exc.strerror}. Check its permissions.") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else describe_kind(st.st_mode)
        raise refuse(Path(path), kind, what, error)
    return fd, st


@contextlib.contextmanager
def os_errors(
    doing: str, fix: str, *, error: type[KerascutError] = StoreError, show: Callable[[Any], str] = str
) -> Iterator[None]:
    """An ``OSError`` inside the block (permissions, a full disk) as one line of ``error``:
    ``Cannot <doing>: <reason> (<file>). <fix>``, the file rendered with ``show``."""
    try:
        yield
    except OSError as exc:
        where = f" ({show(exc.filename)})" if exc.filename else ""
        raise error(f"Cannot {doing}: {exc.strerror or exc}{where}. {fix}") from None
