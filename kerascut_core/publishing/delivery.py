"""``pull -o DIR``: a delivery of one version's files, not a merge into whatever DIR holds.

- DIR must not be inside a store (or be one): a pull never writes over committed objects, so
  ``kerascut pull STORE/NAME@v1 -o STORE/NAME/v3`` is refused with one line naming the store.
- DIR must be a directory or not exist yet; a file, FIFO, device or dangling link there is one
  line. A link to a directory is followed (the user pointed it there); links *inside* DIR never
  are.
- DIR may hold only files the manifest lists (an earlier pull of the same version, say). Anything
  else is refused with one line, unless ``replace`` is given: then DIR is left holding exactly
  the version's files, the others removed (a link is removed as a link, never through it).
- Every file is first staged, verified, inside DIR (``.kerascut-tmp-pull-*``); only when all of
  them are there is anything moved into place or removed, so a delivery that fails midway leaves
  DIR as it was.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from kerascut_core.errors import KerascutError, StoreError
from kerascut_core.publishing.layout import LATEST, MANIFEST, MARKER
from kerascut_core.safe_fs import describe_kind, make_dirs, os_errors
from kerascut_core.stores import TMP_PREFIX, Store
from kerascut_core.text import printable

__all__ = ["DeliveryError", "check_destination", "deliver"]

_VERSION_DIR = re.compile(r"[0-9a-f]{16}")
_SHOWN = 3  # unlisted entries named in a refusal


class DeliveryError(StoreError):
    """A pull target that cannot receive a delivery (inside a store, odd, or holding other files)."""


def _shown(path: Path | str) -> str:
    return printable(str(path), 300)


def check_destination(dest: str | os.PathLike[str], source: Store) -> Path:
    """The directory ``dest`` names, as an absolute path (a link to a directory resolved),
    refused with one line when it is not a directory, or is in or at a store."""
    target = Path(os.path.abspath(Path(dest).expanduser()))
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        _check_parents(target)
    except NotADirectoryError:
        _check_parents(target)
    else:
        if stat.S_ISLNK(st.st_mode):
            try:
                followed = os.stat(target)
            except OSError:
                raise DeliveryError(
                    f"Cannot pull into {_shown(target)}: it is a symbolic link to {_shown(os.readlink(target))}, "
                    "which does not exist. Remove the link, or pull into a directory."
                ) from None
            if not stat.S_ISDIR(followed.st_mode):
                raise DeliveryError(
                    f"Cannot pull into {_shown(target)}: it is a symbolic link to {_kind(followed.st_mode)}, not a "
                    "directory. Pull into a directory."
                )
            target = Path(os.path.realpath(target))
        elif not stat.S_ISDIR(st.st_mode):
            raise DeliveryError(
                f"Cannot pull into {_shown(target)}: it is {_kind(st.st_mode)}, not a directory. "
                "Pull into a new or existing directory."
            )
    store = _store_holding(target, source)
    if store is not None:
        raise DeliveryError(
            f"Cannot pull into {_shown(target)}: it is inside the store {_shown(store)}, where only publishing "
            "writes (a pull there could overwrite committed versions). Pull into a directory outside any store."
        )
    return target


def _kind(mode: int) -> str:
    return "a regular file" if stat.S_ISREG(mode) else describe_kind(mode)


def _check_parents(target: Path) -> None:
    """``target`` does not exist: every existing ancestor must be a directory (or a link to one)."""
    for parent in target.parents:
        try:
            st = os.stat(parent)
        except FileNotFoundError:
            if os.path.islink(parent):
                raise DeliveryError(
                    f"Cannot pull into {_shown(target)}: {_shown(parent)} is a symbolic link to "
                    f"{_shown(os.readlink(parent))}, which does not exist. Remove the link, or pull elsewhere."
                ) from None
            continue
        except NotADirectoryError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise DeliveryError(
                f"Cannot pull into {_shown(target)}: {_shown(parent)} is {_kind(st.st_mode)}, not a directory. "
                "Pull into a directory."
            )
        return


def _store_holding(target: Path, source: Store) -> str | None:
    """The store ``target`` is in or at, or ``None``: the source store when it is local and
    holds it; a store marker at ``target`` or above; a store recognised by its layout (a
    ``<name>/latest.json`` or ``<name>/<version>/manifest.json`` at or above ``target``)."""
    real = Path(os.path.realpath(target))
    local_root = getattr(source, "root", None)
    if isinstance(local_root, Path):
        root = Path(os.path.realpath(local_root))
        if real == root or root in real.parents:
            return source.root_uri
    chains = {target, real}
    for start in chains:
        for level in [start, *start.parents]:
            if os.path.lexists(level / MARKER):
                return str(level)
            in_version = _VERSION_DIR.fullmatch(level.name) and os.path.lexists(level / MANIFEST)
            if in_version and _is_store(level.parent.parent):
                return str(level.parent.parent)
            if os.path.lexists(level / LATEST) and _is_store(level.parent):
                return str(level.parent)
    if os.path.isdir(real) and _is_store(real):
        return str(real)
    return None


def _is_store(path: Path) -> bool:
    from kerascut_core.publishing.root import is_store_root
    from kerascut_core.stores import open_store

    try:
        return is_store_root(open_store(str(path)))
    except (KerascutError, OSError):  # not openable as a store (permissions, not a directory)
        return False


def _plan(target: Path, files: Iterable[str]) -> tuple[list[Path], list[Path]]:
    """``(unlisted, links at directory places)`` under ``target``: entries that are neither a
    listed file (or a link at a listed file's place, which the delivery replaces) nor a real
    directory on the way to one. Nothing is followed."""
    wanted = set(files)
    dirs = {str(Path(rel).parent.as_posix()) for rel in wanted} - {"."}
    dirs |= {p.as_posix() for d in list(dirs) for p in Path(d).parents if str(p) != "."}
    unlisted: list[Path] = []
    linked: list[Path] = []
    if not target.is_dir():
        return unlisted, linked

    def walk(here: Path, prefix: str) -> None:
        with os.scandir(here) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                rel = prefix + entry.name
                st = entry.stat(follow_symlinks=False)
                if rel in wanted and (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
                    continue
                if rel in dirs and stat.S_ISDIR(st.st_mode):
                    walk(Path(entry.path), rel + "/")
                    continue
                if rel in dirs and stat.S_ISLNK(st.st_mode):
                    linked.append(Path(entry.path))
                unlisted.append(Path(entry.path))

    walk(target, "")
    return unlisted, linked


def deliver(
    target: Path,
    files: list[str],
    fill: Callable[[str, IO[bytes]], None],
    manifest_json: str,
    *,
    what: str,
    replace: bool = False,
) -> list[Path]:
    """Leave ``files`` (and ``manifest.json``) in ``target``, each written by ``fill(rel, out)``
    (which verifies what it writes, or raises); return what ``replace`` removed.

    ``what`` names the version in errors (``store/name@version``).
    """
    listed = [*files, MANIFEST]
    unlisted, linked = _plan(target, listed)
    if linked and not replace:
        raise DeliveryError(
            f"Refusing to pull {what} into {_shown(target)}: {_shown(linked[0])} is a symbolic link where a directory "
            "of the version goes, and a pull never writes through a link. Remove it, or pass --replace "
            "(replace=True) to leave exactly this version's files there."
        )
    if unlisted and not replace:
        names = ", ".join(_shown(p.relative_to(target).as_posix()) for p in unlisted[:_SHOWN])
        more = f" and {len(unlisted) - _SHOWN} more" if len(unlisted) > _SHOWN else ""
        raise DeliveryError(
            f"Refusing to pull {what} into {_shown(target)}: it holds {len(unlisted)} entr"
            f"{'y' if len(unlisted) == 1 else 'ies'} that this version does not list ({names}{more}). Pull into an "
            "empty directory, or pass --replace (replace=True) to leave exactly this version's files there."
        )
    if unlisted:
        _check_replaceable(target)
    created = not target.exists()
    with _os_errors(target):
        if created:
            target.mkdir(parents=True)
        stage = Path(tempfile.mkdtemp(prefix=TMP_PREFIX + "pull-", dir=target))
    try:
        with _os_errors(target):
            for rel in files:
                _stage_one(stage, rel, fill)
            (stage / MANIFEST).write_text(manifest_json)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if created:
            with contextlib.suppress(OSError):
                target.rmdir()
        raise
    removed: list[Path] = []
    try:
        with _os_errors(target):
            for path in unlisted:  # only with replace; everything is staged and verified by now
                _remove(path)
                removed.append(path)
            where = f"the pull target {target}"
            for rel in listed:
                parent = make_dirs(target, Path(rel).parent, what=where, error=DeliveryError) if "/" in rel else target
                os.replace(stage / rel, parent / Path(rel).name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return removed


@contextlib.contextmanager
def _os_errors(target: Path) -> Iterator[None]:
    """An ``OSError`` (permissions, a full disk) while writing ``target`` as one line."""
    with os_errors(f"pull into {_shown(target)}", "Check its permissions and free space, or pull into another "
                   "directory.", error=DeliveryError, show=_shown):
        yield


def _check_replaceable(target: Path) -> None:
    """``replace`` never empties ``/``, the home directory, or a directory above it or above the
    one the command runs in."""
    real = Path(os.path.realpath(target))
    home = Path(os.path.realpath(Path.home()))
    cwd = Path(os.path.realpath(os.getcwd()))
    if real == home or real in home.parents or real in cwd.parents:
        raise DeliveryError(
            f"Refusing --replace on {_shown(target)}: it is the home directory, or above it or the current directory, "
            "and --replace removes everything there that the version does not list. Pull into a directory of its own."
        )


def _stage_one(stage: Path, rel: str, fill: Callable[[str, IO[bytes]], None]) -> None:
    parent = make_dirs(stage, Path(rel).parent, what="the staging directory") if "/" in rel else stage
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(parent / Path(rel).name, flags, 0o644)
    with os.fdopen(fd, "w+b") as out:
        fill(rel, out)
        out.flush()
        os.fsync(out.fileno())


def _remove(path: Path) -> None:
    """Remove ``path``: a link or file is unlinked (never followed), a real directory removed
    with everything in it, links inside unlinked as links."""
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)  # never follows a link inside (and refuses one at the top: lstat says dir)
    else:
        os.unlink(path)
