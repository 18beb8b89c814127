"""load_backbone / pull: a real (tiny) Keras model through a local store and the S3 API server."""

from __future__ import annotations

import numpy as np
import pytest

from kerascut_core import load_backbone, open_store
from kerascut_core.errors import IntegrityError, ObjectNotFoundError
from kerascut_core.publishing import commit_version, stage_candidate, update_latest
from kerascut_core.publishing.consumer import pull
from tests.publishing.test_publish import make_manifest


@pytest.fixture(scope="module")
def tiny_model_file(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(3, name="dense")(inputs))
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    model.save(path)
    expected = model.predict(np.ones((2, 4), "float32"), verbose=0)
    keras.backend.clear_session()
    return path, expected


STORE_KINDS = ("local", "s3")


def _publish(store_uri, path):
    store = open_store(store_uri)
    uri = stage_candidate(store, "tiny", "v1", {"model.keras": path})
    commit_version(store, "tiny", "v1", uri, make_manifest("tiny", "v1"))
    update_latest(store, "tiny", "v1")
    return store


def test_load_backbone_round_trip(store_uri, tiny_model_file, tmp_path):
    path, expected = tiny_model_file
    _publish(store_uri, path)
    model = load_backbone(f"{store_uri}/tiny", cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(model.predict(np.ones((2, 4), "float32"), verbose=0), expected)
    again = load_backbone(f"{store_uri}/tiny@v1", cache_dir=tmp_path / "cache")  # cached, re-verified
    np.testing.assert_array_equal(again.predict(np.ones((2, 4), "float32"), verbose=0), expected)


def test_load_backbone_refuses_a_sha256_mismatch(store_uri, tiny_model_file, tmp_path):
    path, _ = tiny_model_file
    store = _publish(store_uri, path)
    # the stored bytes are replaced behind kerascut's back (bit rot, a manual upload...)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    store.put_bytes("tiny/v1/model.keras", bytes(data), overwrite=True)
    with pytest.raises(IntegrityError, match="does not match the manifest") as info:
        load_backbone(f"{store_uri}/tiny", cache_dir=tmp_path / "cache")
    assert "\n" not in str(info.value)
    assert not list((tmp_path / "cache").rglob("model.keras"))  # the bad copy is not kept


def test_a_tampered_cache_is_redownloaded(store_uri, tiny_model_file, tmp_path):
    path, expected = tiny_model_file
    _publish(store_uri, path)
    _, root = pull(f"{store_uri}/tiny", cache_dir=tmp_path / "cache")
    (root / "model.keras").write_bytes(b"garbage")
    model = load_backbone(f"{store_uri}/tiny", cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(model.predict(np.ones((2, 4), "float32"), verbose=0), expected)
    assert (root / "model.keras").read_bytes() == path.read_bytes()  # the cache holds the real bytes again


def test_pull_to_a_directory(store_uri, tiny_model_file, tmp_path):
    path, _ = tiny_model_file
    _publish(store_uri, path)
    manifest, out = pull(f"{store_uri}/tiny", tmp_path / "out", cache_dir=tmp_path / "cache")
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model.keras"]
    assert (out / "model.keras").read_bytes() == path.read_bytes()
    assert manifest.version == "v1"


def test_unknown_version_and_name(store_uri, tiny_model_file, tmp_path):
    path, _ = tiny_model_file
    _publish(store_uri, path)
    with pytest.raises(ObjectNotFoundError, match="not published"):
        load_backbone(f"{store_uri}/tiny", version="v9", cache_dir=tmp_path)
    with pytest.raises(ObjectNotFoundError, match=r"latest\.json"):
        load_backbone(f"{store_uri}/other", cache_dir=tmp_path)


@pytest.mark.parametrize("cache_dir", ["s3://bucket/cache", "file:///tmp/cache"])
def test_a_uri_as_cache_dir_is_refused(cache_dir, tiny_model_file, tmp_path, monkeypatch):
    """The backbone cache is local, as the download cache is: no directory called ``s3:``."""
    from kerascut_core.errors import ConfigError

    path, _ = tiny_model_file
    store_uri = str(tmp_path / "store")
    _publish(store_uri, path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="Expected `cache_dir` to be a local directory") as info:
        pull(f"{store_uri}/tiny", cache_dir=cache_dir)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="the URI"):
        load_backbone(f"{store_uri}/tiny", cache_dir=cache_dir)
    assert not (tmp_path / "s3:").exists() and not (tmp_path / "file:").exists()
