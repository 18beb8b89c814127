"""S3 failures reach the user as one line naming the object, the reason and the fix; nothing is written."""

from __future__ import annotations

import pytest

from kerascut_core import fetch, fingerprint, open_store
from kerascut_core.aws import client as _s3
from kerascut_core.errors import ObjectNotFoundError, SourceError, StoreError
from tests.support.cli import kerascut


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text
    return text


def test_missing_bucket(s3_env):
    store = open_store("s3://kc-no-such-bucket/prefix")
    for action in (lambda: store.head("a"), lambda: store.get_bytes("a"), lambda: store.list("a"),
                   lambda: store.put_bytes("a", b"x"), lambda: store.read_json("n/latest.json")):
        with pytest.raises(StoreError, match="bucket does not exist") as info:
            action()
        assert not isinstance(info.value, ObjectNotFoundError) or "bucket" in str(info.value)
        _one_line(info.value)


def test_no_credentials(s3_bucket, s3_env, monkeypatch, tmp_path):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    _s3.clear_clients()
    store = open_store(f"s3://{s3_bucket}")
    with pytest.raises(StoreError, match="no AWS credentials found") as info:
        store.put_bytes("a/b", b"x")
    assert "AWS_ACCESS_KEY_ID" in _one_line(info.value)
    with pytest.raises(StoreError, match="no AWS credentials"):
        fingerprint(f"s3://{s3_bucket}/m.keras")
    with pytest.raises(StoreError, match="no AWS credentials"):
        fetch(f"s3://{s3_bucket}/m.keras", cache_dir=tmp_path)
    assert list(tmp_path.rglob("*.keras")) == []


@pytest.fixture
def reader_env(moto_auth, s3_env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_auth["endpoint"])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", moto_auth["reader_key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", moto_auth["reader_secret"])
    _s3.clear_clients()
    return moto_auth


def test_access_denied(reader_env, tmp_path):
    bucket = reader_env["bucket"]
    store = open_store(f"s3://{bucket}")
    assert store.list("") == ["m.keras"]  # listing is allowed
    for action in (lambda: store.get_bytes("m.keras"), lambda: store.head("m.keras"),
                   lambda: store.put_bytes("new/obj", b"x")):
        with pytest.raises(StoreError, match="access denied") as info:
            action()
        assert "Grant the caller" in _one_line(info.value)
    with pytest.raises(StoreError, match="access denied"):
        fingerprint(f"s3://{bucket}/m.keras")
    with pytest.raises(StoreError, match="access denied"):
        fetch(f"s3://{bucket}/m.keras", cache_dir=tmp_path)
    assert store.list("") == ["m.keras"]  # nothing was written
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_rejected_credentials(moto_auth, s3_env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_auth["endpoint"])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIANOTAKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret-value")
    _s3.clear_clients()
    with pytest.raises(StoreError) as info:
        open_store(f"s3://{moto_auth['bucket']}").get_bytes("m.keras")
    text = _one_line(info.value)
    assert "credentials were rejected" in text or "access denied" in text
    assert "not-a-secret-value" not in text


def test_unreachable_endpoint(s3_env, monkeypatch):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("KERASCUT_S3_MAX_ATTEMPTS", "1")
    _s3.clear_clients()
    with pytest.raises(StoreError, match="cannot be reached") as info:
        open_store("s3://bucket/x").get_bytes("k")
    _one_line(info.value)


def test_missing_object_names_the_uri(s3_bucket, s3_env):
    with pytest.raises(ObjectNotFoundError, match=f"s3://{s3_bucket}/p/missing.json"):
        open_store(f"s3://{s3_bucket}/p").get_bytes("missing.json")
    with pytest.raises(SourceError, match="no such object"):
        fingerprint(f"s3://{s3_bucket}/p/missing.keras")


def test_cli_reports_access_denied_in_one_line(reader_env, tmp_path):
    out = kerascut("pull", f"s3://{reader_env['bucket']}/mnv2", "-o", str(tmp_path), timeout=120)
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert "access denied" in out.stderr
    assert reader_env["reader_secret"] not in out.stderr + out.stdout


def test_bodies_cut_short_are_retried(truncating_proxy, s3_client, s3_bucket, tmp_path):
    s3_client.put_object(Bucket=s3_bucket, Key="m.keras", Body=b"0123456789" * 1000)
    s3_client.put_object(Bucket=s3_bucket, Key="n/latest.json", Body=b'{"version": "v1"}')
    truncating_proxy.cut = 1
    assert fetch(f"s3://{s3_bucket}/m.keras", cache_dir=tmp_path).read_bytes() == b"0123456789" * 1000
    truncating_proxy.cut = 1
    assert open_store(f"s3://{s3_bucket}").read_json("n/latest.json") == {"version": "v1"}
    assert truncating_proxy.cuts_done == 2


def test_bodies_always_cut_short_fail_in_one_line_and_leave_nothing(truncating_proxy, s3_client, s3_bucket,
                                                                    tmp_path, monkeypatch):
    monkeypatch.setenv("KERASCUT_S3_MAX_ATTEMPTS", "2")
    _s3.clear_clients()
    s3_client.put_object(Bucket=s3_bucket, Key="m.keras", Body=b"0123456789" * 1000)
    truncating_proxy.cut = -1
    with pytest.raises(StoreError) as info:
        fetch(f"s3://{s3_bucket}/m.keras", cache_dir=tmp_path)
    assert f"s3://{s3_bucket}/m.keras" in _one_line(info.value)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    with pytest.raises(StoreError) as info:
        open_store(f"s3://{s3_bucket}").get_bytes("m.keras")
    assert "ended short" in _one_line(info.value) or "Retry" in str(info.value)
