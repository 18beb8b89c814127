"""Credentials handed to the S3 client for one context, never through ``os.environ``.

Against moto's IAM-enforcing S3 API server (a real subprocess): two threads in one process,
each inside its own :func:`s3_credentials` context, see their own identity at the same time;
the process environment holds no AWS key before, during or after.
"""

from __future__ import annotations

import contextvars
import os
import threading

import pytest

from kerascut_core.aws import client as _s3
from kerascut_core.aws.credentials import S3Credentials, current_credentials, s3_credentials
from kerascut_core.errors import StoreError
from kerascut_core.stores import open_store


@pytest.fixture
def no_aws_env(s3_env, monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    _s3.clear_clients()
    yield
    _s3.clear_clients()


def _list(bucket: str) -> str:
    try:
        open_store(f"s3://{bucket}/").list("")
    except StoreError as exc:
        return str(exc)
    return "ok"


def test_handed_credentials_reach_the_client_without_the_environment(moto_auth, no_aws_env):
    reader = S3Credentials(
        access_key_id=moto_auth["reader_key"],
        secret_access_key=moto_auth["reader_secret"],
        region="us-east-1",
        endpoint_url=moto_auth["endpoint"],
    )
    with s3_credentials(reader):
        assert _list(moto_auth["bucket"]) == "ok"
        assert "AWS_ACCESS_KEY_ID" not in os.environ and "AWS_SECRET_ACCESS_KEY" not in os.environ
    assert current_credentials() is None
    assert moto_auth["reader_secret"] not in repr(reader)


def test_concurrent_contexts_keep_their_own_credentials(moto_auth, no_aws_env):
    good = S3Credentials(moto_auth["reader_key"], moto_auth["reader_secret"], region="us-east-1",
                         endpoint_url=moto_auth["endpoint"])
    bad = S3Credentials("AKIANOBODY", "wrong-secret", region="us-east-1", endpoint_url=moto_auth["endpoint"])
    results: dict[str, list[str]] = {"good": [], "bad": []}
    barrier = threading.Barrier(2)

    def run(name: str, creds: S3Credentials) -> None:
        with s3_credentials(creds):
            barrier.wait()  # both contexts are open at once
            for _ in range(3):
                results[name].append(_list(moto_auth["bucket"]))

    threads = [
        threading.Thread(target=contextvars.copy_context().run, args=(run, name, creds))
        for name, creds in (("good", good), ("bad", bad))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results["good"] == ["ok"] * 3
    assert len(results["bad"]) == 3 and all("rejected" in r or "denied" in r for r in results["bad"]), results["bad"]
    assert "AWS_ACCESS_KEY_ID" not in os.environ
