"""The shared S3 client: one boto3 client per endpoint and thread-safe, botocore errors as one line.

Credentials come from the standard AWS chain (environment, shared files, SSO, instance roles);
the endpoint from ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` or the AWS config file, so
MinIO and other S3-compatible servers work. Transient faults (500, 503, SlowDown, throttling,
connection resets) are retried by botocore's ``standard`` retry mode; when they still fail,
:func:`map_error` marks the error ``transient`` (the one rule in :mod:`kerascut_core.transient`)
so that task retries try again later.

Nothing here ever puts a credential into a message. boto3 is imported on the first client.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from kerascut_core.aws.credentials import current_credentials
from kerascut_core.errors import (
    KerascutError,
    ObjectNotFoundError,
    PreconditionFailedError,
    SourceError,
    StoreError,
)
from kerascut_core.text import one_line
from kerascut_core.transient import TRANSIENT_CODES, is_transient_fault, is_transient_reply

__all__ = [
    "MAX_CONCURRENCY",
    "MULTIPART_CHUNKSIZE",
    "MULTIPART_THRESHOLD",
    "TRANSIENT_CODES",
    "check_bucket",
    "clear_clients",
    "client",
    "head_source",
    "is_not_found",
    "map_error",
    "transfer_config",
]

_LOCK = threading.Lock()
#: held while a client is made: threads asking at once (a refresh's or a plan's parallel
#: checks) wait for the one client instead of each making its own (making one is CPU-heavy)
_MAKING = threading.Lock()
_CLIENTS: dict[tuple, Any] = {}

#: Parallel connections for multipart transfers (like ``aws s3 cp``'s default of 10).
MAX_CONCURRENCY = int(os.environ.get("KERASCUT_S3_CONCURRENCY", "10"))
#: Transfers of this many bytes or more are multipart (read at call time: tests lower them).
MULTIPART_THRESHOLD = int(os.environ.get("KERASCUT_S3_MULTIPART_THRESHOLD", str(16 << 20)))
MULTIPART_CHUNKSIZE = int(os.environ.get("KERASCUT_S3_MULTIPART_CHUNKSIZE", str(8 << 20)))


def transfer_config() -> Any:
    """boto3's ``TransferConfig`` for downloads: kerascut's multipart sizes and concurrency
    (read at call time, so a changed ``MULTIPART_*`` applies to the next transfer)."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=MULTIPART_THRESHOLD,
        multipart_chunksize=MULTIPART_CHUNKSIZE,
        max_concurrency=MAX_CONCURRENCY,
    )


def _endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def client(endpoint_url: str | None = None) -> Any:
    """A cached boto3 S3 client for the current context (boto3 clients are thread-safe).

    Credentials handed over with :func:`~kerascut_core.aws.credentials.s3_credentials` win
    (their endpoint too); otherwise the standard AWS chain and ``AWS_ENDPOINT_URL`` apply.
    """
    handed = current_credentials()
    endpoint_url = endpoint_url or (handed.endpoint_url if handed else None) or _endpoint()
    key = (
        handed,  # frozen and hashable; it lives only in this in-memory key
        endpoint_url,
        os.environ.get("AWS_PROFILE"),
        os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION"),
        # a change of identity in the environment gets a new client (the id is not a secret,
        # and it only lives in this in-memory key)
        os.environ.get("AWS_ACCESS_KEY_ID"),
    )
    with _LOCK:
        found = _CLIENTS.get(key)
        if found is not None:
            return found
    with _MAKING:
        with _LOCK:
            found = _CLIENTS.get(key)
        return found if found is not None else _make(key, endpoint_url)


def _make(key: tuple, endpoint_url: str | None) -> Any:
    import boto3
    from botocore.config import Config

    handed = key[0]
    session = handed.session() if handed is not None else boto3.session.Session()
    region = session.region_name or "us-east-1"
    s3_options: dict[str, str] = {}
    style = os.environ.get("KERASCUT_S3_ADDRESSING_STYLE")
    if style:
        s3_options["addressing_style"] = style
    elif endpoint_url:
        # S3-compatible servers (MinIO, moto, Ceph) serve buckets by path.
        s3_options["addressing_style"] = "path"
    config = Config(
        region_name=region,
        retries={"mode": "standard", "max_attempts": int(os.environ.get("KERASCUT_S3_MAX_ATTEMPTS", "5"))},
        max_pool_connections=MAX_CONCURRENCY + 4,
        connect_timeout=10,
        read_timeout=60,
        s3=s3_options or None,
    )
    made = session.client("s3", endpoint_url=endpoint_url, config=config)
    with _LOCK:
        return _CLIENTS.setdefault(key, made)


def clear_clients() -> None:
    """Forget cached clients (after the environment's credentials or endpoint changed)."""
    with _LOCK:
        _CLIENTS.clear()


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def is_not_found(exc: BaseException) -> bool:
    return _code(exc) in {"404", "NoSuchKey", "NotFound", "NoSuchVersion"}


def _transient(error: StoreError) -> StoreError:
    """``error``, marked as worth retrying later (``KerascutError.transient``)."""
    error.transient = True
    return error


def map_error(exc: BaseException, uri: str, action: str = "access") -> Exception:
    """Turn a botocore/boto3 exception into a one-line kerascut error naming ``uri`` and the fix.

    The caller raises the result ``from exc``. Errors kerascut already raised pass through.
    Throttling, 5xx replies, connection resets and timeouts, an unreachable endpoint and
    bodies cut short give an error with ``transient = True``; every other error keeps False.
    """
    from botocore import exceptions as bexc

    if isinstance(exc, KerascutError):
        return exc
    if isinstance(exc, (bexc.NoCredentialsError, bexc.PartialCredentialsError)):
        return StoreError(
            f"Cannot {action} {uri}: no AWS credentials found. Set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or attach a role to this machine."
        )
    if isinstance(exc, bexc.EndpointConnectionError):
        return _transient(StoreError(
            f"Cannot {action} {uri}: the S3 endpoint {getattr(exc, 'kwargs', {}).get('endpoint_url', '')} "
            "cannot be reached. Check AWS_ENDPOINT_URL and that the server is running."
        ))
    if isinstance(exc, (bexc.ConnectionError, bexc.ReadTimeoutError, bexc.ConnectTimeoutError)):
        error = StoreError(f"Cannot {action} {uri}: connection to S3 failed after retries ({type(exc).__name__}). Retry later.")
        return _transient(error) if is_transient_fault(exc) else error
    code = _code(exc)
    message = one_line(str((getattr(exc, "response", None) or {}).get("Error", {}).get("Message", "")), None)
    if code in {"NoSuchBucket"}:
        return StoreError(f"Cannot {action} {uri}: the bucket does not exist. Create it or fix the bucket name.")
    if is_not_found(exc):
        return ObjectNotFoundError(f"Cannot {action} {uri}: no such object. Check the key (s3 keys are case-sensitive).")
    if code in {"AccessDenied", "403", "AllAccessDisabled", "AccountProblem"}:
        return StoreError(
            f"Cannot {action} {uri}: access denied. Grant the caller s3 permissions on this bucket "
            "and prefix (or use another profile)."
        )
    if code in {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired"}:
        return StoreError(
            f"Cannot {action} {uri}: the AWS credentials were rejected ({code}). "
            "Check the access key, secret and session token of the current profile."
        )
    if code in {"PreconditionFailed", "412"}:
        return PreconditionFailedError(f"Cannot {action} {uri}: it changed concurrently (precondition failed). Retry.")
    if code in {"ConditionalRequestConflict", "409", "OperationAborted"}:
        return PreconditionFailedError(f"Cannot {action} {uri}: a concurrent write to it is in progress ({code}). Retry.")
    if code:
        error = StoreError(f"Cannot {action} {uri}: {code}: {message}")
        return _transient(error) if is_transient_reply(getattr(exc, "response", None)) else error
    # anything else (s3transfer's RetriesExceededError after bodies kept ending short, ...)
    detail = one_line(str(exc), 300)
    error = StoreError(f"Cannot {action} {uri}: {type(exc).__name__}: {detail}. Retry; check the network or endpoint.")
    return _transient(error) if is_transient_fault(exc) else error


def head_source(bucket: str, key: str, action: str) -> dict[str, Any]:
    """The HEAD of the source object ``s3://bucket/key``, or one line saying why there is none.

    A missing object is told apart from a missing bucket (a 404 on the object alone cannot say
    which) and the error names the fix, including the trailing ``/`` of a directory source.
    ``action`` is the verb of the message (``fetch``, ``fingerprint``).
    """
    uri = f"s3://{bucket}/{key}"
    try:
        return dict(client().head_object(Bucket=bucket, Key=key))
    except Exception as exc:
        if is_not_found(exc):
            check_bucket(bucket, action)
            raise SourceError(
                f"Cannot {action} {uri}: no such object. Check the key (S3 keys are "
                "case-sensitive); a directory source (a keras-hub preset) ends in '/'."
            ) from exc
        raise map_error(exc, uri, action) from exc


def check_bucket(bucket: str, action: str, endpoint_url: str | None = None) -> None:
    """HEAD the bucket: a 404 on an object may mean the bucket is missing, which must not read as 'absent'."""
    try:
        client(endpoint_url).head_bucket(Bucket=bucket)
    except Exception as exc:
        if is_not_found(exc) or _code(exc) == "NoSuchBucket":
            raise StoreError(
                f"Cannot {action} s3://{bucket}: the bucket does not exist. Create it or fix the bucket name."
            ) from exc
        raise map_error(exc, f"s3://{bucket}", action) from exc
