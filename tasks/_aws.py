"""Use a prefect-aws ``AwsCredentials`` block for S3 without writing secrets anywhere.

kerascut's stores take credentials from the standard AWS chain (environment, profiles,
instance roles) and the endpoint from ``AWS_ENDPOINT_URL``. A flow given a block name loads
the block and exposes it to that chain through the process environment for the duration of
the run, then restores the environment. Secret values are never logged or returned.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["aws_credentials"]

_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
)


@contextmanager
def aws_credentials(block_name: str | None) -> Iterator[None]:
    """Within the block, the AWS chain sees the credentials of the named ``AwsCredentials`` block.

    ``None`` changes nothing (the standard AWS environment applies).

        with aws_credentials("team-s3"):
            open_store("s3://team-backbones/prod").list("")
    """
    if not block_name:
        yield
        return
    from prefect_aws import AwsCredentials

    from kerascut_core.errors import StoreError

    try:
        block = AwsCredentials.load(block_name)
    except ValueError as exc:
        raise StoreError(
            f"Expected an AwsCredentials block named {block_name!r} on the Prefect server. "
            f"Received: {str(exc).splitlines()[0]}. Create it (prefect block register -m "
            "prefect_aws; then in the UI or with AwsCredentials(...).save(name)) or remove "
            "`aws_credentials_block`."
        ) from None
    values = {
        "AWS_ACCESS_KEY_ID": block.aws_access_key_id,
        "AWS_SECRET_ACCESS_KEY": (
            block.aws_secret_access_key.get_secret_value() if block.aws_secret_access_key else None
        ),
        "AWS_SESSION_TOKEN": block.aws_session_token,
        "AWS_PROFILE": block.profile_name,
        "AWS_DEFAULT_REGION": block.region_name,
        "AWS_ENDPOINT_URL": getattr(block.aws_client_parameters, "endpoint_url", None),
    }
    saved = {key: os.environ.get(key) for key in _VARS}
    try:
        for key, value in values.items():
            if value:
                os.environ[key] = str(value)
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
