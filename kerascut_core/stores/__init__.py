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
  missing bucket, unreachable endpoint). botocore retries transient faults (``standard`` mode);
  an error still transient after that (throttling, 5xx, a reset, a body cut short) has
  ``transient = True``, which task retries read.

One module per backend (:mod:`.local`, :mod:`.s3`) on the interface of :mod:`.base`, each
inheriting the optional capabilities of :mod:`.capabilities` it has (``isinstance`` tells);
:mod:`._json` parses every JSON object a store holds, defensively (:func:`parse_json`);
:mod:`.registry` maps URI schemes to backends (:func:`register_store`, :func:`open_store`).
"""

from __future__ import annotations

from kerascut_core.aws.client import MULTIPART_CHUNKSIZE, MULTIPART_THRESHOLD
from kerascut_core.stores._json import MAX_JSON_DEPTH, MAX_JSON_INT_DIGITS, parse_json
from kerascut_core.stores.base import (
    MAX_JSON_BYTES,
    TMP_PREFIX,
    ObjectInfo,
    Progress,
    ScanResult,
    Store,
    sha256_file,
)
from kerascut_core.stores.capabilities import (
    IncompleteUpload,
    IncompleteUploads,
    LocalRoot,
    ObjectVersion,
    ObjectVersions,
    TempFiles,
)
from kerascut_core.stores.local import LocalStore
from kerascut_core.stores.registry import (
    StoreFactory,
    open_store,
    register_store,
    registered_schemes,
)
from kerascut_core.stores.s3 import S3Store

# MULTIPART_* are re-exported to be read; to change them, set them on ``aws.client``
# (where the S3 code reads them at call time) or through the environment.
__all__ = [
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_JSON_INT_DIGITS",
    "MULTIPART_CHUNKSIZE",
    "MULTIPART_THRESHOLD",
    "TMP_PREFIX",
    "IncompleteUpload",
    "IncompleteUploads",
    "LocalRoot",
    "LocalStore",
    "ObjectInfo",
    "ObjectVersion",
    "ObjectVersions",
    "Progress",
    "S3Store",
    "ScanResult",
    "Store",
    "StoreFactory",
    "TempFiles",
    "open_store",
    "parse_json",
    "register_store",
    "registered_schemes",
    "sha256_file",
]
