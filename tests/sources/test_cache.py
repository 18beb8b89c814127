"""fetch() and the download cache: verified, atomic, keyed by bucket/key/ETag, safe against odd keys."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from kerascut_core import fetch, resolve_local
from kerascut_core.errors import IntegrityError, SourceError, StoreError
from kerascut_core.sources.cache import DownloadCache, default_cache_dir


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("KERASCUT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "kerascut"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "kerascut"
    monkeypatch.setenv("KERASCUT_CACHE_DIR", str(tmp_path / "explicit"))
    assert default_cache_dir() == tmp_path / "explicit"


def test_local_paths_are_returned_as_they_are(tmp_path):
    path = tmp_path / "m.keras"
    path.write_bytes(b"x")
    assert fetch(str(path)) == path
    assert fetch(f"file://{path}") == path
    with pytest.raises(SourceError, match="no such file"):
        fetch(str(tmp_path / "missing.keras"))
    with pytest.raises(SourceError, match="built, not downloaded"):
        fetch("keras.applications/MobileNetV2")


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_s3_download_is_cached_by_etag(any_bucket, s3_client, tmp_path):
    s3_client.put_object(Bucket=any_bucket, Key="models/m.keras", Body=b"one")
    cache = tmp_path / "cache"
    seen = []
    path = fetch(f"s3://{any_bucket}/models/m.keras", cache_dir=cache, progress=seen.append)
    assert path.read_bytes() == b"one" and path.name == "m.keras"
    assert cache in path.parents
    assert fetch(f"s3://{any_bucket}/models/m.keras", cache_dir=cache) == path  # a hit
    s3_client.put_object(Bucket=any_bucket, Key="models/m.keras", Body=b"two")
    changed = fetch(f"s3://{any_bucket}/models/m.keras", cache_dir=cache)
    assert changed != path and changed.read_bytes() == b"two"
    assert not [f for f in _files(cache) if "tmp" in f]


def test_multipart_download(s3_bucket, s3_client, tmp_path, monkeypatch):
    import kerascut_core.aws.client as stores

    monkeypatch.setattr(stores, "MULTIPART_THRESHOLD", 5 << 20)
    monkeypatch.setattr(stores, "MULTIPART_CHUNKSIZE", 5 << 20)
    data = hashlib.sha256(b"seed").digest() * (400 << 10)  # 12.5 MiB
    s3_client.put_object(Bucket=s3_bucket, Key="big.h5", Body=data)
    path = fetch(f"s3://{s3_bucket}/big.h5", cache_dir=tmp_path)
    assert path.read_bytes() == data


def test_wrong_checksum_leaves_nothing_behind(s3_bucket, s3_client, tmp_path):
    s3_client.put_object(Bucket=s3_bucket, Key="m.keras", Body=b"bytes", Metadata={"sha256": "0" * 64})
    with pytest.raises(IntegrityError, match="wrong checksum") as info:
        fetch(f"s3://{s3_bucket}/m.keras", cache_dir=tmp_path)
    assert "\n" not in str(info.value)
    assert [f for f in _files(tmp_path) if not f.endswith("/")] == []


def test_short_download_is_refused(tmp_path):
    cache = DownloadCache(tmp_path)
    tmp = cache.temp_path("bucket", "m.keras", "etag")
    tmp.write_bytes(b"half")
    with pytest.raises(IntegrityError, match="ended short: expected 8 bytes, received 4"):
        cache.commit(tmp, bucket="bucket", key="m.keras", etag="etag", size=8)
    assert _files(tmp_path) == []
    assert cache.lookup("bucket", "m.keras", "etag", 8) is None


def test_md5_etag_is_checked(tmp_path):
    cache = DownloadCache(tmp_path)
    tmp = cache.temp_path("bucket", "m.keras", "0" * 32)
    tmp.write_bytes(b"data")
    with pytest.raises(IntegrityError, match="expected MD5"):
        cache.commit(tmp, bucket="bucket", key="m.keras", etag="0" * 32, size=4)
    assert _files(tmp_path) == []


def test_a_broken_cache_entry_is_not_a_hit(tmp_path):
    cache = DownloadCache(tmp_path)
    tmp = cache.temp_path("bucket", "m.keras", "e")
    tmp.write_bytes(b"data")
    path = cache.commit(tmp, bucket="bucket", key="m.keras", etag="e", size=4)
    assert cache.lookup("bucket", "m.keras", "e", 4, verify=True) == path
    path.write_bytes(b"dat")  # truncated on disk
    with pytest.warns(UserWarning, match="failed verification"):
        assert cache.lookup("bucket", "m.keras", "e", 4) is None
    assert not path.exists()


@pytest.mark.parametrize("key", ["../../etc/passwd", "/etc/passwd", "a/../../../x.keras"])
def test_keys_that_climb_are_refused_before_any_request(key, tmp_path):
    with pytest.raises((SourceError, StoreError), match=r"absolute|'\.\.'") as info:
        fetch(f"s3://bucket/{key}", cache_dir=tmp_path)
    assert "\n" not in str(info.value)
    assert _files(tmp_path) == []


def test_cache_paths_never_leave_the_root(tmp_path):
    cache = DownloadCache(tmp_path)
    for key in ("..", "a/..", "..\\..\\x", "x/.."):
        path = cache.path_for("bucket", key, "etag/../..")
        assert tmp_path in path.parents


def test_missing_object_and_bucket(s3_bucket, s3_env, tmp_path):
    with pytest.raises(SourceError, match="no such object"):
        fetch(f"s3://{s3_bucket}/nope.keras", cache_dir=tmp_path)
    with pytest.raises(StoreError, match="bucket does not exist"):
        fetch("s3://kc-no-such-bucket/nope.keras", cache_dir=tmp_path)
    assert _files(tmp_path) == []


def test_resolve_local_fetches_s3_weights(s3_bucket, s3_client, tmp_path):
    s3_client.put_object(Bucket=s3_bucket, Key="w/mnv2.weights.h5", Body=b"w")
    uri, options = resolve_local("keras.applications/MobileNetV2", weights=f"s3://{s3_bucket}/w/mnv2.weights.h5",
                                 input_shape=[96, 96, 3], cache_dir=tmp_path)
    assert uri == "keras.applications/MobileNetV2"
    assert options["input_shape"] == [96, 96, 3]
    assert Path(options["weights"]).read_bytes() == b"w"
    s3_client.put_object(Bucket=s3_bucket, Key="m.keras", Body=b"m")
    uri, options = resolve_local(f"s3://{s3_bucket}/m.keras", cache_dir=tmp_path)
    assert Path(uri).read_bytes() == b"m" and options == {}


# --- s3:// directories (keras-hub presets) fetched concurrently --------------------------------


def _put_dir(s3_client, bucket):
    files = {"config.json": b'{"a": 1}', "metadata.json": b'{"keras_hub_version": "0.32.0"}',
             "assets/vocab.txt": b"x" * 1000}
    for name, body in files.items():
        s3_client.put_object(Bucket=bucket, Key=f"presets/tiny/{name}", Body=body)
    return f"s3://{bucket}/presets/tiny/", files


def _complete(path, files):
    return all((path / name).read_bytes() == body for name, body in files.items())


def test_two_threads_fetching_one_s3_directory_both_get_the_complete_entry(s3_bucket, s3_client, tmp_path, monkeypatch):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from kerascut_core.sources import directories

    uri, files = _put_dir(s3_client, s3_bucket)
    # both threads pass the first cache check (a miss) before either downloads: both download,
    # and both reach the rename, which only one of them wins
    barrier, seen, real = threading.Barrier(2, timeout=30), threading.local(), directories._is_hit

    def is_hit(*args, **kwargs):
        first = not getattr(seen, "done", False)
        seen.done = True
        hit = real(*args, **kwargs)
        if first:
            barrier.wait()
        return hit

    monkeypatch.setattr(directories, "_is_hit", is_hit)
    with ThreadPoolExecutor(2) as pool:
        paths = list(pool.map(lambda _: fetch(uri, cache_dir=tmp_path), range(2)))
    assert paths[0] == paths[1] and _complete(paths[0], files)
    assert not [f for f in _files(tmp_path) if ".tmp-" in f]


def test_a_complete_s3_directory_entry_is_not_replaced_by_a_second_fetch(s3_bucket, s3_client, tmp_path, monkeypatch):
    import os

    from kerascut_core.sources import directories

    uri, files = _put_dir(s3_client, s3_bucket)
    first = fetch(uri, cache_dir=tmp_path)
    inode = os.stat(first / "config.json").st_ino
    # a fetch that started before the entry landed (its first check a miss) and finds it
    # complete after downloading keeps it, and drops its own copy
    calls, real = [], directories._is_hit
    monkeypatch.setattr(directories, "_is_hit", lambda *a, **k: bool(calls.append(1)) or (len(calls) > 1 and real(*a, **k)))
    assert fetch(uri, cache_dir=tmp_path) == first
    assert os.stat(first / "config.json").st_ino == inode and _complete(first, files)
    assert not [f for f in _files(tmp_path) if ".tmp-" in f]


def test_a_fetch_losing_the_rename_to_another_returns_the_winner(s3_bucket, s3_client, tmp_path, monkeypatch):
    from kerascut_core.sources import directories

    uri, files = _put_dir(s3_client, s3_bucket)
    real_replace, real_hit, raced = directories.os.replace, directories._is_hit, []

    def replace(src, dst):
        if not raced and Path(src).is_dir() and ".tmp-" in Path(src).name:
            raced.append(1)
            # another fetch lands first: its entry is complete when this rename runs
            monkeypatch.setattr(directories, "_is_hit", real_hit)
            fetch(uri, cache_dir=tmp_path)
        return real_replace(src, dst)

    monkeypatch.setattr(directories.os, "replace", replace)
    monkeypatch.setattr(directories, "_is_hit", lambda *a, **k: False if not raced else real_hit(*a, **k))
    path = fetch(uri, cache_dir=tmp_path)
    assert raced and _complete(path, files)
    assert not [f for f in _files(tmp_path) if ".tmp-" in f]
