"""The one rule for "worth retrying later": throttling, 5xx replies, resets, timeouts, short bodies.

The S3 layer (:func:`kerascut_core.aws.client.map_error`) marks the errors it raises
with ``transient = True`` by this rule, and task retries (Prefect's ``retry_condition_fn``, an
Airflow operator's retry) ask :func:`is_transient`, which reads that flag or applies the same
rule to a raw botocore/urllib3/socket exception anywhere in the ``__cause__`` chain. Permanent
errors (a missing object, access denied, an existing version, a cut that cannot be made) are
not transient: retrying them only delays the one-line error.

    >>> is_transient(ConnectionResetError())
    True
    >>> is_transient(ValueError("bad cut"))
    False
"""

from __future__ import annotations

import http.client
from typing import Any

__all__ = ["TRANSIENT_CODES", "is_transient", "is_transient_fault", "is_transient_reply"]

#: S3 error codes and HTTP statuses worth retrying later: throttling and server-side hiccups.
TRANSIENT_CODES = frozenset(
    {
        "500",
        "502",
        "503",
        "504",
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "RequestLimitExceeded",
    }
)


def is_transient_reply(response: Any) -> bool:
    """True when a botocore error ``response`` carries a transient code or HTTP status."""
    response = response or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return code in TRANSIENT_CODES or status in TRANSIENT_CODES


def is_transient_fault(exc: BaseException) -> bool:
    """A network fault without an S3 error code: a body cut short, a reset, a timeout, or
    s3transfer giving up after bodies kept ending short. (A certificate that does not verify
    does not heal by waiting, so an SSL error is not one.)"""
    try:
        from botocore import exceptions as bexc
    except ImportError:  # pragma: no cover - boto3 is a dependency
        bexc = None
    if bexc is not None:
        if isinstance(exc, bexc.SSLError):
            return False
        if isinstance(exc, (bexc.HTTPClientError, bexc.IncompleteReadError, bexc.EndpointConnectionError)):
            return True  # ConnectionClosedError, ResponseStreamingError, ReadTimeoutError, ...
        if isinstance(exc, (bexc.ConnectionError, bexc.ReadTimeoutError, bexc.ConnectTimeoutError)):
            return True
    try:
        from s3transfer.exceptions import RetriesExceededError
    except ImportError:  # pragma: no cover - s3transfer comes with boto3
        pass
    else:
        if isinstance(exc, RetriesExceededError):
            return True
    try:
        from urllib3 import exceptions as uexc
    except ImportError:  # pragma: no cover - urllib3 comes with botocore
        pass
    else:
        if isinstance(exc, (uexc.ProtocolError, uexc.ReadTimeoutError, uexc.IncompleteRead)):
            return True
    return isinstance(exc, (ConnectionError, TimeoutError, http.client.IncompleteRead))


def is_transient(exc: BaseException | None) -> bool:
    """True when ``exc``, or an exception it was raised from, is worth retrying later.

    An error kerascut raised says so itself (``KerascutError.transient``); a raw exception is
    judged by the rule above; an ``IntegrityError`` (a download that ended short or arrived
    corrupted) is worth one more try.
    """
    from kerascut_core.errors import IntegrityError

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if getattr(exc, "transient", False) or isinstance(exc, IntegrityError):
            return True
        if is_transient_fault(exc) or is_transient_reply(getattr(exc, "response", None)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
