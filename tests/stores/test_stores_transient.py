"""S3 errors worth retrying carry ``transient = True``; permanent ones keep False.

A real S3 API server (moto's standalone server) sits behind the fault proxy, which answers
every request with the fault asked for (``rate=1.0``); nothing in boto3 is patched. Task
retries (``kerascut.tasks.common.is_transient``) read the flag, so the two must agree.
"""

from __future__ import annotations

import pytest
from botocore import exceptions as bexc

from kerascut_core.aws import client as _s3
from kerascut_core.errors import (
    IntegrityError,
    KerascutError,
    ObjectNotFoundError,
    PreconditionFailedError,
    StoreError,
)
from kerascut_core.stores import S3Store
from tests.reliability.faultproxy import FaultProxy


@pytest.fixture
def one_attempt(s3_env, monkeypatch):
    """No botocore retries (each fault reaches kerascut at once); fresh clients."""
    monkeypatch.setenv("KERASCUT_S3_MAX_ATTEMPTS", "1")
    _s3.clear_clients()
    yield
    _s3.clear_clients()


@pytest.fixture
def filled_bucket(s3_bucket, s3_client):
    s3_client.put_object(Bucket=s3_bucket, Key="p/obj.bin", Body=b"0123456789" * 1000)
    s3_client.put_object(Bucket=s3_bucket, Key="p/latest.json", Body=b'{"version": "v1"}')
    return s3_bucket


def _raised(action) -> KerascutError:
    with pytest.raises(KerascutError) as info:
        action()
    assert "\n" not in str(info.value)
    return info.value


def _agrees_with_task_retries(error: BaseException, expected: bool) -> None:
    pytest.importorskip("prefect")
    from kerascut.tasks.common import is_transient

    assert is_transient(error) is expected


@pytest.mark.parametrize("kind", ["503", "500", "slowdown", "reset", "reset_after", "short"])
def test_transient_faults_are_marked_transient(kind, one_attempt, moto_endpoint, filled_bucket):
    with FaultProxy(moto_endpoint, rate=1.0, seed=0, kinds=(kind,), lifetime=60) as proxy:
        store = S3Store(f"s3://{filled_bucket}/p", endpoint_url=proxy.url)
        reads = [lambda: store.get_bytes("obj.bin"), lambda: store.read_json("latest.json")]
        writes = [lambda: store.put_bytes("new.bin", b"x"), lambda: store.list("")]
        actions = reads if kind == "short" else [*reads, lambda: store.head("obj.bin"), *writes]
        for action in actions:
            error = _raised(action)
            assert isinstance(error, StoreError), (kind, error)
            assert error.transient is True, (kind, type(error).__name__, str(error))
            _agrees_with_task_retries(error, True)
        assert proxy.stats[kind] >= len(actions)


def test_missing_object_is_not_transient(one_attempt, moto_endpoint, filled_bucket):
    with FaultProxy(moto_endpoint, rate=0.0, lifetime=60) as proxy:  # forwards everything
        store = S3Store(f"s3://{filled_bucket}/p", endpoint_url=proxy.url)
        for action in (lambda: store.get_bytes("missing.bin"), lambda: store.read_json("n/latest.json")):
            error = _raised(action)
            assert isinstance(error, ObjectNotFoundError), error
            assert error.transient is False
            _agrees_with_task_retries(error, False)
        assert store.head("missing.bin") is None
    assert proxy.stats["requests"] >= 3


def test_access_denied_is_not_transient(one_attempt, moto_endpoint, filled_bucket):
    with FaultProxy(moto_endpoint, rate=1.0, kinds=("denied",), lifetime=60) as proxy:
        store = S3Store(f"s3://{filled_bucket}/p", endpoint_url=proxy.url)
        for action in (lambda: store.get_bytes("obj.bin"), lambda: store.head("obj.bin"),
                       lambda: store.put_bytes("new.bin", b"x"), lambda: store.list("")):
            error = _raised(action)
            assert "access denied" in str(error), error
            assert error.transient is False
            _agrees_with_task_retries(error, False)
        assert proxy.stats["denied"] >= 4


def test_missing_bucket_is_not_transient(one_attempt):
    error = _raised(lambda: S3Store("s3://kc-no-such-bucket-transient/p").get_bytes("k"))
    assert "bucket does not exist" in str(error)
    assert error.transient is False


def _client_error(code: str, status: int) -> bexc.ClientError:
    return bexc.ClientError(
        {"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject"
    )


@pytest.mark.parametrize(
    ("exc", "expected", "kind"),
    [
        (_client_error("SlowDown", 503), True, StoreError),
        (_client_error("Throttling", 400), True, StoreError),
        (_client_error("RequestTimeout", 400), True, StoreError),
        (_client_error("BadGateway", 502), True, StoreError),  # any code, on a 5xx status
        (_client_error("504", 504), True, StoreError),
        (bexc.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True, StoreError),
        (bexc.ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), True, StoreError),
        (bexc.ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), True, StoreError),
        (bexc.ConnectionClosedError(endpoint_url="http://127.0.0.1:1"), True, StoreError),
        (bexc.IncompleteReadError(actual_bytes=1, expected_bytes=2), True, StoreError),
        (bexc.ResponseStreamingError(error="cut"), True, StoreError),
        (ConnectionResetError(104, "reset"), True, StoreError),
        (_client_error("NoSuchKey", 404), False, ObjectNotFoundError),
        (_client_error("AccessDenied", 403), False, StoreError),
        (_client_error("NoSuchBucket", 404), False, StoreError),
        (_client_error("PreconditionFailed", 412), False, PreconditionFailedError),
        (_client_error("InvalidAccessKeyId", 403), False, StoreError),
        (_client_error("MalformedXML", 400), False, StoreError),
        (bexc.NoCredentialsError(), False, StoreError),
        (ValueError("not a network fault"), False, StoreError),
    ],
)
def test_map_error_sets_transient(exc, expected, kind):
    mapped = _s3.map_error(exc, "s3://bucket/key", "read")
    assert type(mapped) is kind
    assert mapped.transient is expected
    assert "s3://bucket/key" in str(mapped)


def test_s3transfer_giving_up_is_transient():
    from s3transfer.exceptions import RetriesExceededError

    assert _s3.map_error(RetriesExceededError(bexc.IncompleteReadError(actual_bytes=1, expected_bytes=2)),
                         "s3://bucket/key").transient is True


def test_errors_default_to_not_transient_and_pass_through():
    assert KerascutError.transient is False
    assert StoreError("x").transient is False
    short = IntegrityError("Download ended short")
    short.transient = True
    assert _s3.map_error(short, "s3://bucket/key") is short  # kerascut's own errors keep their flag
    assert StoreError("y").transient is False  # set on the instance, never on the class


def test_task_retries_use_the_one_transient_rule():
    pytest.importorskip("prefect")
    from kerascut.tasks import common
    from kerascut_core import transient

    assert common.is_transient is transient.is_transient
    assert _s3.TRANSIENT_CODES is transient.TRANSIENT_CODES
