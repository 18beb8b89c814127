"""Use a prefect-aws ``AwsCredentials`` block for S3 without writing secrets anywhere.

kerascut's stores take credentials from the standard AWS chain (environment, profiles,
instance roles) and the endpoint from ``AWS_ENDPOINT_URL``. A flow given a block name loads
the block and hands its values to kerascut's S3 client for the duration of the run
(:func:`kerascut_core.aws.credentials.s3_credentials`, a context variable), as prefect-aws
hands a block to ``boto3``: the process environment is never changed, so concurrent runs in one
worker each keep their own credentials. Secret values are never logged or returned.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from kerascut_core.aws.credentials import S3Credentials, s3_credentials

__all__ = ["aws_credentials", "block_credentials"]


def block_credentials(block_name: str) -> S3Credentials:
    """The :class:`S3Credentials` of the prefect-aws ``AwsCredentials`` block ``block_name``.

        creds = block_credentials("team-s3")
    """
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
    secret = block.aws_secret_access_key
    return S3Credentials(
        access_key_id=block.aws_access_key_id or None,
        secret_access_key=secret.get_secret_value() if secret else None,
        session_token=block.aws_session_token or None,
        profile=block.profile_name or None,
        region=block.region_name or None,
        endpoint_url=getattr(block.aws_client_parameters, "endpoint_url", None) or None,
    )


@contextmanager
def aws_credentials(block_name: str | None) -> Iterator[None]:
    """Within the block, kerascut's S3 clients use the named ``AwsCredentials`` block.

    ``None`` changes nothing (the standard AWS environment applies).

        with aws_credentials("team-s3"):
            open_store("s3://team-backbones/prod").list("")
    """
    with s3_credentials(block_credentials(block_name) if block_name else None):
        yield
