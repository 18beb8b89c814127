"""The S3 side of a benchmark: moto's standalone server, its environment, one bucket.

    with s3_bench(work) as (endpoint, admin):
        admin.put_object(Bucket="bench", Key="sources/m.keras", Body=b"...")
        ...  # kerascut's own clients see the server through AWS_ENDPOINT_URL

The server is the one launcher the tests and harnesses use (``tests.reliability.servers``);
the environment is restored and kerascut's cached clients are dropped on the way out.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["s3_bench"]


@contextmanager
def s3_bench(work: Path, bucket: str = "bench") -> Iterator[tuple[str, Any]]:
    """``(endpoint, admin_client)`` with ``bucket`` created and boto3's environment pointed at it."""
    import boto3

    from kerascut_core.aws import client as _s3
    from tests.reliability.servers import moto_server, s3_environment

    saved = dict(os.environ)
    server = moto_server()
    endpoint = server.start()
    try:
        os.environ.update(s3_environment(endpoint, work))
        _s3.clear_clients()
        admin = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        admin.create_bucket(Bucket=bucket)
        yield endpoint, admin
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved)
        _s3.clear_clients()
