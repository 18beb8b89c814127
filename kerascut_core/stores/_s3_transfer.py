"""Moving bytes between one S3 object and here: the transfers an S3 store is built on.

Each function takes an :class:`S3Object` (a client, a bucket, a key and the URI errors name)
and knows nothing of the store that calls it; the store turns what fails into its own errors.

* **upload**: files of ``KERASCUT_S3_MULTIPART_THRESHOLD`` (16 MiB) or more go up in
  ``KERASCUT_S3_MULTIPART_CHUNKSIZE`` (8 MiB) parts, more for files over 9000 parts, with
  ``KERASCUT_S3_CONCURRENCY`` (10) in flight and an optional ``progress(n_bytes)`` callback.
  Without overwrite ``CompleteMultipartUpload`` sends ``If-None-Match: *``, so the object
  appears whole or not at all; a failed upload is aborted and its error raised as it came.
* **bounded read**: a GET refused before (or at the first byte over) ``max_bytes``; a body cut
  short is read again, since botocore retries requests but not the reading of their bodies.
* **download**: a managed (multipart) download into a temporary file next to ``dest``, renamed
  into place once its size is checked.

A download still cut short after the retries raises an :class:`IntegrityError` marked
``transient``.
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kerascut_core.aws import client as _s3
from kerascut_core.errors import IntegrityError
from kerascut_core.stores.base import TMP_PREFIX, Progress, too_large

__all__ = ["S3Object", "download_file", "ended_short", "get_object", "multipart_upload"]


@dataclass(frozen=True)
class S3Object:
    """One object of a bucket: where a transfer reads or writes."""

    client: Any
    bucket: str
    #: the full S3 key (the store's prefix included)
    key: str
    #: ``s3://bucket/key``, as error messages name it
    uri: str


def multipart_upload(
    target: S3Object,
    path: Path,
    size: int,
    meta: dict[str, str],
    overwrite: bool,
    progress: Progress | None,
) -> dict[str, Any]:
    """Upload ``path`` to ``target`` in parts; return ``CompleteMultipartUpload``'s response.

    A failure to start the upload raises the one-line store error; any later failure aborts
    the upload and raises the exception as it came (the caller may find its own write done).
    """
    client, bucket, s3_key = target.client, target.bucket, target.key
    chunk = max(_s3.MULTIPART_CHUNKSIZE, -(-size // 9000))
    try:
        created = client.create_multipart_upload(Bucket=bucket, Key=s3_key, Metadata=meta)
    except Exception as exc:
        raise _s3.map_error(exc, target.uri, "upload") from exc
    upload_id = created["UploadId"]
    offsets = list(range(0, size, chunk))

    def upload_part(number: int, offset: int) -> dict[str, Any]:
        with open(path, "rb") as handle:
            handle.seek(offset)
            body = handle.read(min(chunk, size - offset))
        response = client.upload_part(Bucket=bucket, Key=s3_key, UploadId=upload_id, PartNumber=number, Body=body)
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
        response: dict[str, Any] = client.complete_multipart_upload(
            Bucket=bucket, Key=s3_key, UploadId=upload_id, MultipartUpload={"Parts": parts}, **extra
        )
    except BaseException:
        with contextlib.suppress(Exception):
            client.abort_multipart_upload(Bucket=bucket, Key=s3_key, UploadId=upload_id)
        raise
    return response


def get_object(target: S3Object, max_bytes: int | None = None) -> tuple[bytes, str]:
    """The bytes and etag of ``target``, at most ``max_bytes`` of them; bodies cut short are retried.

    Errors are the one-line store errors (:class:`ObjectNotFoundError` when it is missing).
    """

    def fetch() -> tuple[bytes, str]:
        response = target.client.get_object(Bucket=target.bucket, Key=target.key)
        expected = response.get("ContentLength")
        body_stream = response["Body"]
        if max_bytes is not None and expected is not None and expected > max_bytes:
            body_stream.close()
            raise too_large(target.uri, int(expected), max_bytes)
        body = body_stream.read(None if max_bytes is None else max_bytes + 1)
        if max_bytes is not None and len(body) > max_bytes:
            body_stream.close()
            raise too_large(target.uri, len(body), max_bytes)
        if expected is not None and len(body) != expected:
            raise ended_short(target.uri, len(body), expected)
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
                raise _s3.map_error(exc, target.uri, "read") from exc
            time.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0))
        except Exception as exc:
            raise _s3.map_error(exc, target.uri, "read") from exc
    raise AssertionError("unreachable")  # pragma: no cover


def download_file(
    target: S3Object, size: int, dest: Path, progress: Progress | None, *, version_id: str | None = None
) -> Path:
    """Download ``target`` (``size`` bytes; that ``version_id`` when given) to ``dest`` through a
    temporary name, renamed into place once its size is checked."""
    from boto3.s3.transfer import TransferConfig

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
        extra = {"VersionId": version_id} if version_id else None
        try:
            target.client.download_file(
                target.bucket, target.key, str(tmp), ExtraArgs=extra, Callback=progress, Config=config
            )
        except Exception as exc:
            raise _s3.map_error(exc, target.uri, "download") from exc
        got = tmp.stat().st_size
        if got != size:
            raise ended_short(target.uri, got, size)
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
