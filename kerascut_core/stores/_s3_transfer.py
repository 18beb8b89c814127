"""Moving bytes between an :class:`~kerascut_core.stores.s3.S3Store` and here.

* **upload**: files of ``KERASCUT_S3_MULTIPART_THRESHOLD`` (16 MiB) or more go up in
  ``KERASCUT_S3_MULTIPART_CHUNKSIZE`` (8 MiB) parts, more for files over 9000 parts, with
  ``KERASCUT_S3_CONCURRENCY`` (10) in flight and an optional ``progress(n_bytes)`` callback.
  Without overwrite ``CompleteMultipartUpload`` sends ``If-None-Match: *``, so the object
  appears whole or not at all; a failed upload is aborted.
* **bounded read**: a GET refused before (or at the first byte over) ``max_bytes``; a body cut
  short is read again, since botocore retries requests but not the reading of their bodies.
* **download**: a managed (multipart) download into a temporary file next to ``dest``, renamed
  into place once its size is checked.

A download still cut short after the retries raises an :class:`IntegrityError` marked
``transient``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kerascut_core.aws import client as _s3
from kerascut_core.errors import IntegrityError, ObjectNotFoundError
from kerascut_core.stores.base import TMP_PREFIX, ObjectInfo, Progress, too_large

if TYPE_CHECKING:
    from kerascut_core.stores.s3 import S3Store

__all__ = ["download_file", "ended_short", "get_object", "multipart_upload"]


def multipart_upload(
    store: S3Store,
    key: str,
    path: Path,
    size: int,
    meta: dict[str, str],
    overwrite: bool,
    progress: Progress | None,
) -> ObjectInfo:
    """Upload ``path`` to ``key`` of ``store`` in parts; abort the upload on any failure."""
    client, s3_key = store.client, store._key(key)
    chunk = max(_s3.MULTIPART_CHUNKSIZE, -(-size // 9000))
    created = store._call(
        "upload", key,
        lambda: client.create_multipart_upload(Bucket=store.bucket, Key=s3_key, Metadata=meta),
    )
    upload_id = created["UploadId"]
    offsets = list(range(0, size, chunk))

    def upload_part(number: int, offset: int) -> dict[str, Any]:
        with open(path, "rb") as handle:
            handle.seek(offset)
            body = handle.read(min(chunk, size - offset))
        response = client.upload_part(
            Bucket=store.bucket, Key=s3_key, UploadId=upload_id, PartNumber=number, Body=body
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
            Bucket=store.bucket, Key=s3_key, UploadId=upload_id, MultipartUpload={"Parts": parts}, **extra
        )
    except BaseException as exc:
        with contextlib.suppress(Exception):
            client.abort_multipart_upload(Bucket=store.bucket, Key=s3_key, UploadId=upload_id)
        if isinstance(exc, Exception):
            mine = store._retried_own_write(exc, key, meta["sha256"], size)
            if mine is not None:
                return mine
            raise store._write_error(exc, key, not overwrite) from exc
        raise
    return ObjectInfo(
        key=key,
        size=size,
        etag=response.get("ETag", ""),
        last_modified=dt.datetime.now(dt.timezone.utc),
        version_id=response.get("VersionId"),
        metadata=meta,
    )


def get_object(store: S3Store, key: str, max_bytes: int | None = None) -> tuple[bytes, str]:
    """The bytes and etag of ``key``, at most ``max_bytes`` of them; bodies cut short are retried."""

    def fetch() -> tuple[bytes, str]:
        response = store.client.get_object(Bucket=store.bucket, Key=store._key(key))
        expected = response.get("ContentLength")
        body_stream = response["Body"]
        if max_bytes is not None and expected is not None and expected > max_bytes:
            body_stream.close()
            raise too_large(store.uri(key), int(expected), max_bytes)
        body = body_stream.read(None if max_bytes is None else max_bytes + 1)
        if max_bytes is not None and len(body) > max_bytes:
            body_stream.close()
            raise too_large(store.uri(key), len(body), max_bytes)
        if expected is not None and len(body) != expected:
            raise ended_short(store.uri(key), len(body), expected)
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
                raise _s3.map_error(exc, store.uri(key), "read") from exc
            time.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0))
        except Exception as exc:
            mapped = _s3.map_error(exc, store.uri(key), "read")
            if isinstance(mapped, ObjectNotFoundError):
                store._check_bucket()
            raise mapped from exc
    raise AssertionError("unreachable")  # pragma: no cover


def download_file(store: S3Store, info: ObjectInfo, dest: Path, progress: Progress | None) -> Path:
    """Download the object ``info`` describes to ``dest`` through a temporary name; check its size."""
    from boto3.s3.transfer import TransferConfig

    key = info.key
    dest.parent.mkdir(parents=True, exist_ok=True)
    out_fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX, suffix="-" + dest.name[:100], dir=dest.parent)
    os.close(out_fd)
    tmp = Path(tmp_name)
    config = TransferConfig(
        multipart_threshold=_s3.MULTIPART_THRESHOLD,
        multipart_chunksize=_s3.MULTIPART_CHUNKSIZE,
        max_concurrency=_s3.MAX_CONCURRENCY,
    )
    try:
        extra = {"VersionId": info.version_id} if info.version_id else {}
        store._call(
            "download", key,
            lambda: store.client.download_file(
                store.bucket, store._key(key), str(tmp), ExtraArgs=extra or None, Callback=progress, Config=config
            ),
        )
        got = tmp.stat().st_size
        if got != info.size:
            raise ended_short(store.uri(key), got, info.size)
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return dest


def ended_short(uri: str, got: int, expected: int) -> IntegrityError:
    """A download cut short: worth retrying later (``transient``)."""
    error = IntegrityError(f"Download of {uri} ended short ({got} of {expected} bytes). Retry.")
    error.transient = True
    return error
