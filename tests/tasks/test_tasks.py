"""Task plumbing: which errors are retried, artifact keys, and retries through a real Prefect API."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from kerascut.tasks.common import IO_TASK, artifact_key, is_transient
from kerascut_core.errors import IntegrityError, ObjectNotFoundError, StoreError


def _client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")


def _chained(cause: BaseException) -> StoreError:
    try:
        try:
            raise cause
        except BaseException as exc:
            raise StoreError("Cannot read s3://b/k: the server failed") from exc
    except StoreError as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_client_error("SlowDown", 503), True),
        (_client_error("InternalError", 500), True),
        (_client_error("ServiceUnavailable", 503), True),
        (_client_error("NoSuchKey", 404), False),
        (_client_error("AccessDenied", 403), False),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True),
        (ConnectionResetError(), True),
        (IntegrityError("short download"), True),
        (ObjectNotFoundError("missing"), False),
        (ValueError("a cut that cannot be made"), False),
        (_chained(_client_error("SlowDown", 503)), True),
        (_chained(_client_error("NoSuchBucket", 404)), False),
        (None, False),
    ],
)
def test_is_transient(exc: BaseException | None, expected: bool) -> None:
    assert is_transient(exc) is expected


def test_artifact_keys_are_stable_and_valid() -> None:
    assert artifact_key("mobilenetv2-stride16") == "kerascut-mobilenetv2-stride16"
    assert artifact_key("ResNet50_C3.v2") == "kerascut-resnet50-c3-v2"


def test_io_tasks_retry_transient_errors_only(prefect_harness: None) -> None:
    from prefect import flow, task

    calls = {"slow": 0, "missing": 0}
    options = {**IO_TASK, "retry_delay_seconds": 0, "retry_jitter_factor": None}

    @task(**options)
    def throttled_once() -> str:
        calls["slow"] += 1
        if calls["slow"] == 1:
            raise _chained(_client_error("SlowDown", 503))
        return "ok"

    @task(**options)
    def missing() -> str:
        calls["missing"] += 1
        raise ObjectNotFoundError("Cannot read s3://b/k: no such key. Check the URI.")

    @flow
    def both() -> tuple[str, bool]:
        state = missing(return_state=True)
        return throttled_once(), state.is_failed()

    assert both() == ("ok", True)
    assert calls == {"slow": 2, "missing": 1}
