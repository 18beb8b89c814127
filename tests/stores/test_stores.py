"""Stores: the same contract on a local directory and on a real S3 API server."""

from __future__ import annotations

import threading

import pytest

from kerascut_core import open_store
from kerascut_core.errors import (
    ObjectExistsError,
    ObjectNotFoundError,
    PreconditionFailedError,
    StoreError,
)
from kerascut_core.stores import LocalStore, S3Store, sha256_file

STORE_PREFIX = "team/backbones"


def test_open_store_kinds(tmp_path):
    assert isinstance(open_store(tmp_path), LocalStore)
    assert isinstance(open_store(f"file://{tmp_path}"), LocalStore)
    assert open_store(f"file://{tmp_path}").root == tmp_path
    assert isinstance(open_store("s3://bucket/prefix/"), S3Store)
    assert open_store("s3://bucket/prefix/").uri("a/b") == "s3://bucket/prefix/a/b"
    with pytest.raises(StoreError, match="scheme 'gs'"):
        open_store("gs://bucket/x")


def test_put_get_head_list(store):
    info = store.put_bytes("net/v1/a.txt", b"hello")
    assert info.size == 5
    assert store.get_bytes("net/v1/a.txt") == b"hello"
    head = store.head("net/v1/a.txt")
    assert head is not None and head.size == 5 and head.etag
    assert store.exists("net/v1/a.txt") and not store.exists("net/v1/b.txt")
    assert store.head("net/v1/missing") is None
    store.put_bytes("net/v2/b.txt", b"x")
    store.put_bytes("other/c.txt", b"y")
    assert store.list("net") == ["net/v1/a.txt", "net/v2/b.txt"]
    assert store.list("net/v1/") == ["net/v1/a.txt"]
    assert store.list("ne") == []  # prefixes are directories, never partial names
    assert store.list_dirs("") == ["net", "other"]
    assert store.list_dirs("net") == ["v1", "v2"]
    assert {o.key for o in store.list_objects("net")} == {"net/v1/a.txt", "net/v2/b.txt"}


def test_put_without_overwrite_refuses_existing(store):
    store.put_bytes("k/obj", b"first")
    with pytest.raises(ObjectExistsError, match="already exists") as info:
        store.put_bytes("k/obj", b"second")
    assert "\n" not in str(info.value)
    assert store.get_bytes("k/obj") == b"first"
    store.put_bytes("k/obj", b"third", overwrite=True)
    assert store.get_bytes("k/obj") == b"third"


def test_files_round_trip_and_multipart(store, tmp_path, monkeypatch):
    import kerascut_core.aws.client as stores

    monkeypatch.setattr(stores, "MULTIPART_THRESHOLD", 5 << 20)
    monkeypatch.setattr(stores, "MULTIPART_CHUNKSIZE", 5 << 20)
    src = tmp_path / "big.bin"
    src.write_bytes(bytes(range(256)) * (48 << 10))  # 12 MiB: 3 parts
    seen = []
    info = store.put_file("net/v1/model.keras", src, progress=seen.append)
    assert sum(seen) == src.stat().st_size
    assert info.size == src.stat().st_size
    assert store.sha256("net/v1/model.keras") == sha256_file(src)
    with pytest.raises(ObjectExistsError):
        store.put_file("net/v1/model.keras", src)
    got = []
    dest = store.get_file("net/v1/model.keras", tmp_path / "out" / "model.keras", progress=got.append)
    assert dest.read_bytes() == src.read_bytes()
    assert sum(got) == src.stat().st_size
    assert not [p for p in dest.parent.iterdir() if p.name != "model.keras"]  # no temp files left


def test_multipart_put_if_absent_is_enforced_at_completion(s3_bucket, tmp_path, monkeypatch):
    import kerascut_core.aws.client as stores

    monkeypatch.setattr(stores, "MULTIPART_THRESHOLD", 5 << 20)
    monkeypatch.setattr(stores, "MULTIPART_CHUNKSIZE", 5 << 20)
    store = open_store(f"s3://{s3_bucket}")
    src = tmp_path / "big.bin"
    src.write_bytes(b"\1" * (11 << 20))
    monkeypatch.setattr(store, "exists", lambda key: False)  # skip the early refusal
    store.put_bytes("m.keras", b"winner")
    with pytest.raises(ObjectExistsError):
        store.put_file("m.keras", src)
    assert store.get_bytes("m.keras") == b"winner"
    assert store.incomplete_uploads() == []  # the failed upload was aborted


def test_copy(store):
    store.put_bytes("a/src", b"payload")
    store.copy("a/src", "b/dst")
    assert store.get_bytes("b/dst") == b"payload"
    assert store.sha256("b/dst") == store.sha256("a/src")
    with pytest.raises(ObjectExistsError):
        store.copy("a/src", "b/dst")
    with pytest.raises(ObjectNotFoundError):
        store.copy("a/missing", "b/other")


def test_delete(store):
    store.put_bytes("s/x", b"1")
    store.delete("s/x")
    assert not store.exists("s/x")
    store.delete("s/x")  # missing is fine
    store.put_bytes("s/x", b"2")  # and the key can be written again (staging keys are reused)
    assert store.get_bytes("s/x") == b"2"


def test_missing_object_is_one_line(store):
    with pytest.raises(ObjectNotFoundError, match="no such object") as info:
        store.get_bytes("nope/none.json")
    assert "\n" not in str(info.value)
    with pytest.raises(ObjectNotFoundError):
        store.read_json("nope/none.json")


@pytest.mark.parametrize("key", ["../escape", "a/../../b", "/abs/key", "a/./b", ""])
def test_keys_that_climb_are_refused(store, key, tmp_path):
    with pytest.raises(StoreError) as info:
        store.put_bytes(key, b"x")
    assert "\n" not in str(info.value)
    assert store.list("") == []
    assert not (tmp_path / "escape").exists()


def test_update_json_conditional(store):
    assert store.update_json("n/latest.json", lambda cur: {"n": 1}) == {"n": 1}
    assert store.update_json("n/latest.json", lambda cur: {"n": cur["n"] + 1}) == {"n": 2}
    assert store.update_json("n/latest.json", lambda cur: None) == {"n": 2}
    etag = store.head("n/latest.json").etag
    store.put_bytes("n/latest.json", b'{"n": 3}', if_match=etag)
    with pytest.raises(PreconditionFailedError):
        store.put_bytes("n/latest.json", b'{"n": 4}', if_match=etag)  # stale etag
    assert store.read_json("n/latest.json") == {"n": 3}


def test_conditional_read_gives_the_etag_of_what_it_read(store):
    store.put_json("n/claim.json", {"run": "a"})
    value, etag = store.read_json_with_etag("n/claim.json")
    assert value == {"run": "a"} and store.get_bytes_with_etag("n/claim.json")[1] == etag
    store.put_bytes("n/claim.json", b'{"run": "b"}', if_match=etag)
    with pytest.raises(PreconditionFailedError):  # someone wrote after our read
        store.put_bytes("n/claim.json", b'{"run": "c"}', if_match=etag)
    with pytest.raises(ObjectNotFoundError):
        store.read_json_with_etag("n/missing.json")


def test_backends_declare_their_capabilities(store):
    from kerascut_core.stores import IncompleteUploads, LocalRoot, ObjectVersions, TempFiles

    is_s3 = isinstance(store, S3Store)
    assert isinstance(store, IncompleteUploads) is is_s3 and isinstance(store, ObjectVersions) is is_s3
    assert isinstance(store, TempFiles) is not is_s3 and isinstance(store, LocalRoot) is not is_s3


def test_update_json_race_loses_no_update(store):
    """Eight threads each add ten entries through conditional updates: all 80 arrive."""
    errors = []

    def writer(i: int) -> None:
        try:
            for j in range(10):
                store.update_json("race/latest.json", lambda cur, i=i, j=j: {"items": [*(cur or {}).get("items", []), f"{i}-{j}"]})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    items = store.read_json("race/latest.json")["items"]
    assert sorted(items) == sorted(f"{i}-{j}" for i in range(8) for j in range(10))
