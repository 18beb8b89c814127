"""The fault proxy itself, against a real S3 API server with plain boto3.

At 10% faults every operation succeeds through botocore's retries (and s3transfer's retries of
bodies that end short); at 100% every operation fails with a clear error.
"""

from __future__ import annotations

import io
import os

import pytest

from tests.reliability.faultproxy import FAULT_KINDS, FaultProxy
from tests.reliability.servers import moto_server, s3_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3_url():
    with moto_server(lifetime=600) as url, s3_env(url):
        yield url


def _client(url: str, attempts: int):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=url, region_name="us-east-1",
        config=Config(retries={"mode": "standard", "max_attempts": attempts}, s3={"addressing_style": "path"}),
    )


def test_ten_percent_faults_are_absorbed_by_retries(s3_url):
    _client(s3_url, 1).create_bucket(Bucket="proxy-ten")
    payloads = {f"obj/{i}": os.urandom(1500 + i) for i in range(40)}
    with FaultProxy(s3_url, rate=0.10, seed=11, lifetime=120) as proxy:
        s3 = _client(proxy.url, 8)
        for key, data in payloads.items():
            s3.upload_fileobj(io.BytesIO(data), "proxy-ten", key)
        for key, data in payloads.items():
            buf = io.BytesIO()
            s3.download_fileobj("proxy-ten", key, buf)
            assert buf.getvalue() == data, key
        stats = proxy.stats
    assert stats["faults"] >= 4, stats
    assert stats["requests"] >= 80, stats


def test_every_fault_kind_is_injected():
    with moto_server(lifetime=120) as url:
        _client(url, 1).create_bucket(Bucket="proxy-kinds")
        _client(url, 1).put_object(Bucket="proxy-kinds", Key="k", Body=b"x" * 4096)
        for kind in FAULT_KINDS:
            with FaultProxy(url, rate=1.0, seed=0, kinds=(kind,), lifetime=60) as proxy:
                s3 = _client(proxy.url, 1)
                with pytest.raises(Exception) as info:
                    s3.get_object(Bucket="proxy-kinds", Key="k")["Body"].read()
                assert proxy.stats[kind] >= 1, kind
            text = str(info.value)
            if kind == "slowdown":
                assert "SlowDown" in text
            elif kind == "500":
                assert "InternalError" in text
            elif kind == "503":
                assert "ServiceUnavailable" in text


def test_hundred_percent_faults_fail_clearly(s3_url):
    from botocore.exceptions import BotoCoreError, ClientError

    _client(s3_url, 1).create_bucket(Bucket="proxy-all")
    with FaultProxy(s3_url, rate=1.0, seed=3, lifetime=60) as proxy:
        s3 = _client(proxy.url, 2)
        for _ in range(5):
            with pytest.raises((ClientError, BotoCoreError)):
                s3.put_object(Bucket="proxy-all", Key="never", Body=b"1")
        assert proxy.stats["faults"] == proxy.stats["requests"] >= 10
    # nothing was written except by the "reset_after" kind, which applies the write
    listing = _client(s3_url, 1).list_objects_v2(Bucket="proxy-all").get("Contents", [])
    assert all(obj["Key"] == "never" for obj in listing)
