"""Which store backend a URI opens: a registry of URI schemes, like MLflow's artifact repositories.

    >>> open_store("s3://team-models/backbones")
    S3Store('s3://team-models/backbones')
    >>> sorted(registered_schemes())
    ['', 'file', 's3']

A plain path (scheme ``""``) and ``file://`` open a :class:`LocalStore`, ``s3://`` an
:class:`S3Store`. Another backend registers a factory ``factory(uri, *, endpoint_url=None)``
for its scheme with :func:`register_store`; :func:`open_store` then dispatches to it.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Protocol

from kerascut_core.errors import StoreError
from kerascut_core.stores.base import Store, _local_uri
from kerascut_core.stores.local import LocalStore
from kerascut_core.stores.s3 import S3Store
from kerascut_core.uris import expand_path

__all__ = ["StoreFactory", "open_store", "register_store", "registered_schemes"]


class StoreFactory(Protocol):
    """Opens the store at ``uri`` (the full URI, stripped); ``endpoint_url`` is for S3-like backends."""

    def __call__(self, uri: str, *, endpoint_url: str | None = None) -> Store: ...


_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*$")
_LOCK = threading.Lock()
_FACTORIES: dict[str, StoreFactory] = {}


def register_store(scheme: str, factory: StoreFactory) -> None:
    """Make :func:`open_store` open ``scheme://...`` URIs with ``factory`` (replacing any before).

    ``scheme`` is lower case, like ``s3`` or ``gs``; ``""`` is a plain path.
    """
    if not isinstance(scheme, str) or (scheme and not _SCHEME.match(scheme)):
        raise StoreError(f"Expected a URI scheme like 's3' (lower case letters, digits, '+', '-', '.'). Received {scheme!r}.")
    if not callable(factory):
        raise StoreError(f"Expected a store factory callable as factory(uri, *, endpoint_url=None). Received {factory!r}.")
    with _LOCK:
        _FACTORIES[scheme] = factory


def registered_schemes() -> list[str]:
    """The schemes :func:`open_store` can open, in registration order (``""`` is a plain path)."""
    with _LOCK:
        return list(_FACTORIES)


def _scheme_list() -> str:
    return ", ".join(f"{s}://" for s in registered_schemes() if s)


def open_store(uri: str | Path, *, endpoint_url: str | None = None) -> Store:
    """Open a store: a local directory (path or ``file://``) or ``s3://bucket/prefix``.

    S3 credentials come from the standard AWS chain; the endpoint from ``endpoint_url``,
    ``AWS_ENDPOINT_URL`` or the AWS config file, so MinIO works. ``$NAME``, ``${NAME}`` and a
    leading ``~`` are expanded (:func:`~kerascut_core.uris.expand_path`; an unset variable is a
    StoreError), never taken literally.

        >>> open_store("./backbones")            # doctest: +SKIP
        LocalStore('/abs/path/backbones')
        >>> open_store("s3://team-models/backbones")
        S3Store('s3://team-models/backbones')
    """
    if isinstance(uri, Path):
        return LocalStore(Path(expand_path(str(uri))))
    if not isinstance(uri, str) or not uri.strip():
        raise StoreError(f"Expected a store URI: a directory, file://DIR or s3://bucket/prefix. Received {uri!r}.")
    uri = expand_path(uri.strip())
    scheme = uri.split("://")[0] if "://" in uri else ""
    with _LOCK:
        factory = _FACTORIES.get(scheme)
    if factory is None:
        raise StoreError(
            f"Expected a store URI: a directory, file://DIR or s3://bucket/prefix. "
            f"Received scheme {scheme!r} in {uri!r}. Registered schemes: {_scheme_list()}."
        )
    return factory(uri, endpoint_url=endpoint_url)


def _open_local(uri: str, *, endpoint_url: str | None = None) -> Store:
    return LocalStore(_local_uri(uri))


def _open_s3(uri: str, *, endpoint_url: str | None = None) -> Store:
    return S3Store(uri, endpoint_url=endpoint_url)


register_store("", _open_local)
register_store("file", _open_local)
register_store("s3", _open_s3)
