"""load_model on s3:// sources: fetched through the download cache."""

from __future__ import annotations

import numpy as np
import pytest

sources = pytest.importorskip("kerascut_core.sources", reason="kerascut_core.sources comes with the surgery branch")


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(3, name="dense")(inputs))
    root = tmp_path_factory.mktemp("src")
    model.save(root / "tiny.keras")
    model.save(root / "tiny.h5")
    expected = model.predict(np.ones((1, 4), "float32"), verbose=0)
    keras.backend.clear_session()
    return root, expected


@pytest.mark.parametrize("name", ["tiny.keras", "tiny.h5"])
def test_load_model_from_s3(name, tiny_files, s3_client, any_bucket, tmp_path):
    root, expected = tiny_files
    s3_client.upload_file(str(root / name), any_bucket, f"models/{name}")
    model = sources.load_model(f"s3://{any_bucket}/models/{name}", cache_dir=tmp_path / "cache")
    np.testing.assert_allclose(model.predict(np.ones((1, 4), "float32"), verbose=0), expected, rtol=0, atol=0)
    assert list((tmp_path / "cache").rglob(name))  # it went through the download cache
