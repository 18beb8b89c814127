"""The download cache: S3 objects fetched once, keyed by bucket, key and ETag.

Layout under the cache directory (``$KERASCUT_CACHE_DIR``, else ``$XDG_CACHE_HOME/kerascut``,
else ``~/.cache/kerascut``)::

    s3/<bucket>/<sha256(key)[:32]>/<etag>/<basename>     the bytes
    s3/<bucket>/<sha256(key)[:32]>/<etag>/entry.json     {bucket, key, etag, size, sha256}

* The key never becomes a path: it is hashed, and only a sanitised basename is kept (so the
  file keeps its ``.keras`` / ``.h5`` suffix). A key with ``..`` or an absolute key cannot
  climb out of the cache; such keys are refused before anything is fetched.
* Bytes are downloaded to a temporary name in the entry directory, checked (size against the
  HEAD, sha256 against the metadata kerascut recorded, or MD5 against a single-part ETag), and
  only then renamed into place; ``entry.json`` is written last. A crash leaves no half file
  under the real name, and an entry without ``entry.json`` is not a hit.
* A hit is checked by size (and sha256 with ``verify=True``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import uuid
from pathlib import Path

from kerascut_core._names import short_repr
from kerascut_core.errors import ConfigError, IntegrityError
from kerascut_core.uris import expand_path

__all__ = ["DownloadCache", "check_cache_dir", "default_cache_dir", "verify_download", "write_marker"]

_SAFE = re.compile(r"[^A-Za-z0-9._-]")
# "s3://...", "file:///...", "gs:/x": a URI where a local directory belongs (not "C:/..." nor "./a:b").
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+:/")


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


def default_cache_dir() -> Path:
    """``$KERASCUT_CACHE_DIR``, else ``$XDG_CACHE_HOME/kerascut``, else ``~/.cache/kerascut``.

    ``KERASCUT_CACHE_DIR`` must be a local directory; a URI there is a ``ConfigError``.
    """
    explicit = os.environ.get("KERASCUT_CACHE_DIR")
    if explicit:
        return Path(check_cache_dir(explicit, "KERASCUT_CACHE_DIR")).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(check_cache_dir(xdg, "XDG_CACHE_HOME")) if xdg else Path.home() / ".cache"
    return base / "kerascut"


def _safe_name(key: str) -> str:
    name = _SAFE.sub("_", key.replace("\\", "/").rsplit("/", 1)[-1])
    return name if name.strip(".") else "object"


class DownloadCache:
    """A directory of verified downloads (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(check_cache_dir(root)).expanduser() if root is not None else default_cache_dir()

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

    def path_for(self, bucket: str, key: str, etag: str) -> Path:
        return self.entry_dir(bucket, key, etag) / _safe_name(key)

    def lookup(self, bucket: str, key: str, etag: str, size: int, *, verify: bool = False) -> Path | None:
        """The cached file for this exact object, or ``None``. Broken entries are dropped."""
        path = self.path_for(bucket, key, etag)
        entry = path.parent / "entry.json"
        try:
            recorded = json.loads(entry.read_text())
            actual = path.stat().st_size
        except (FileNotFoundError, ValueError, OSError):
            return None
        if actual != size or recorded.get("size") != size or recorded.get("key") != key:
            self._drop(path)
            return None
        if verify and _hash_file(path)[0] != recorded.get("sha256"):
            self._drop(path)
            return None
        return path

    def temp_path(self, bucket: str, key: str, etag: str) -> Path:
        """A fresh temporary name inside the entry directory (same filesystem: rename is atomic)."""
        directory = self.entry_dir(bucket, key, etag)
        directory.mkdir(parents=True, exist_ok=True)
        return directory / f".tmp-{uuid.uuid4().hex}-{_safe_name(key)}"

    def commit(
        self,
        tmp: Path,
        *,
        bucket: str,
        key: str,
        etag: str,
        size: int,
        sha256: str | None = None,
        uri: str = "",
    ) -> Path:
        """Check ``tmp`` (size, then sha256 or MD5 ETag) and rename it into place."""
        shown = uri or f"s3://{bucket}/{key}"
        try:
            digest = verify_download(tmp, size=size, etag=etag, sha256=sha256, shown=shown)
            plain_etag = etag.strip('"')
            final = self.path_for(bucket, key, etag)
            os.replace(tmp, final)
            entry = {"bucket": bucket, "key": key, "etag": plain_etag, "size": size, "sha256": digest}
            write_marker(final.parent / "entry.json", entry)
            return final
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    @staticmethod
    def _drop(path: Path) -> None:
        for stale in (path.parent / "entry.json", path):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()


def write_marker(path: Path, data: dict[str, object]) -> None:
    """Write ``data`` as JSON to ``path`` atomically: a temporary sibling, then a rename."""
    tmp = path.parent / f".tmp-{uuid.uuid4().hex}-{path.name}"
    try:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
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
    actual = path.stat().st_size
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


def _hash_file(path: Path) -> tuple[str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(8 << 20):
            sha.update(chunk)
            md5.update(chunk)
    return sha.hexdigest(), md5.hexdigest()
