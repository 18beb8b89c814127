"""S3 credentials handed to the client, scoped to a context, never written to ``os.environ``.

By default kerascut's S3 client uses the standard AWS chain (environment, shared files, SSO,
instance roles). An orchestrator that holds credentials of its own (a prefect-aws
``AwsCredentials`` block, an Airflow AWS connection) hands them to the client for one run with
:func:`s3_credentials`. The value lives in a :class:`contextvars.ContextVar`, so two runs in one
process (threads, or tasks that copy their context) each see their own credentials and the
process environment is never touched: nothing leaks into a concurrent run or a child process.

    >>> creds = S3Credentials(access_key_id="AKIA...", secret_access_key="...", region="eu-west-1")
    >>> creds                                         # secrets never appear in a repr
    S3Credentials(access_key_id='AKIA...', profile=None, region='eu-west-1', endpoint_url=None)
    >>> with s3_credentials(creds):
    ...     current_credentials() is creds
    True
    >>> current_credentials() is None
    True
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = ["S3Credentials", "current_credentials", "s3_credentials"]


@dataclass(frozen=True)
class S3Credentials:
    """What a boto3 session needs; unset fields fall back to the standard AWS chain."""

    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None

    def session(self) -> Any:
        """A ``boto3.session.Session`` with these credentials (boto3 imported here)."""
        import boto3

        return boto3.session.Session(
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            aws_session_token=self.session_token,
            profile_name=self.profile,
            region_name=self.region,
        )


_CURRENT: contextvars.ContextVar[S3Credentials | None] = contextvars.ContextVar("kerascut_s3_credentials", default=None)


def current_credentials() -> S3Credentials | None:
    """The credentials handed to S3 clients in this context, or ``None`` (the AWS chain)."""
    return _CURRENT.get()


@contextmanager
def s3_credentials(credentials: S3Credentials | None) -> Iterator[None]:
    """Within the block, S3 clients made in this context use ``credentials`` (``None``: no change)."""
    if credentials is None:
        yield
        return
    token = _CURRENT.set(credentials)
    try:
        yield
    finally:
        _CURRENT.reset(token)
