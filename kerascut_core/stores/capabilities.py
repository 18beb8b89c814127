"""Optional store capabilities: what some backends offer beyond the :class:`~.base.Store` interface.

A backend declares a capability by inheriting its ABC (as MLflow's artifact repositories
inherit ``MultipartUploadMixin``), and code that needs one asks with ``isinstance``, never by
probing attributes:

    >>> from kerascut_core.stores import LocalStore, S3Store
    >>> issubclass(S3Store, IncompleteUploads), issubclass(LocalStore, IncompleteUploads)
    (True, False)
    >>> issubclass(LocalStore, TempFiles) and issubclass(LocalStore, LocalRoot)
    True
    >>> issubclass(S3Store, ObjectVersions)
    True

* :class:`IncompleteUploads`: multipart uploads that were started and never completed nor
  aborted can be listed and aborted (S3); ``kerascut gc`` aborts the stale ones.
* :class:`TempFiles`: hidden temporary files a crashed writer can leave (a local store);
  ``kerascut gc`` removes the stale ones.
* :class:`LocalRoot`: the store is a directory on this machine, at :attr:`LocalRoot.root`.
* :class:`ObjectVersions`: the store may keep earlier object versions of a key (a versioned
  S3 bucket), so a deleted ``manifest.json`` can be restored; ``kerascut gc`` leaves such a
  version directory and prints the command that restores it.

A third-party backend (see :func:`~kerascut_core.stores.register_store`) inherits the ones it
supports; one that inherits none still works everywhere, with those steps skipped.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "IncompleteUpload",
    "IncompleteUploads",
    "LocalRoot",
    "ObjectVersion",
    "ObjectVersions",
    "TempFiles",
]


@dataclass(frozen=True)
class IncompleteUpload:
    """A multipart upload that was started and never completed nor aborted."""

    key: str
    upload_id: str
    initiated: dt.datetime


@dataclass(frozen=True)
class ObjectVersion:
    """One stored object version of ``key`` (never a delete marker).

    ``version_id`` is the store's id of this version (``"null"`` for an object written before
    the bucket was versioned); ``is_latest`` tells whether it is the key's current object.
    """

    key: str
    version_id: str
    last_modified: dt.datetime | None
    is_latest: bool


class IncompleteUploads(ABC):
    """A store whose multipart uploads can be left incomplete, listed and aborted."""

    @abstractmethod
    def incomplete_uploads(self, prefix: str = "") -> list[IncompleteUpload]:
        """The uploads under ``prefix`` never completed nor aborted (store-relative keys)."""

    @abstractmethod
    def abort_upload(self, key: str, upload_id: str) -> None:
        """Abort the upload ``upload_id`` of ``key``; its parts are freed."""


class TempFiles(ABC):
    """A store whose writers go through hidden temporary files a crash can leave behind."""

    @abstractmethod
    def temp_files(self, skip: Callable[[Path], bool] | None = None) -> list[tuple[Path, float]]:
        """The temporary files left in the store, with their modification times.

        Links are never followed; ``skip(directory)`` prunes a directory (a nested store).
        """


class LocalRoot(ABC):
    """A store that is a directory on this machine."""

    #: the store's directory, absolute
    root: Path


class ObjectVersions(ABC):
    """A store that may keep earlier versions of an object after it is overwritten or deleted."""

    @abstractmethod
    def object_versions(self, key: str) -> list[ObjectVersion] | None:
        """The stored versions of exactly ``key`` (delete markers left out), or ``None`` when the
        store keeps none or they cannot be listed (no permission)."""

    @abstractmethod
    def restore_command(self, version: ObjectVersion) -> str:
        """A shell command that makes ``version`` the current object of its key again."""
