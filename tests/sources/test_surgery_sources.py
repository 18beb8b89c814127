"""load_model for local files (.keras, legacy .h5) and keras.applications, then cut."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kerascut_core import SourceError
from kerascut_core.sources import load_model
from kerascut_core.surgery import cut
from tests.fixtures import models
from tests.fixtures.models import random_input, reference_activations


def test_legacy_h5_file_loads_and_cuts(tmp_path):
    model = models.residual()
    path = tmp_path / "legacy.h5"
    model.save(path)  # Keras 3 writes the legacy HDF5 format for .h5
    loaded = load_model(path)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    data = random_input(model)
    a, out = reference_activations(model, ["block1_out", "block3_out"], data)
    part = cut(loaded, start="block1_out", end="block3_out")
    assert np.max(np.abs(np.asarray(part(a)) - out)) == 0.0


def test_keras_file_and_file_uri(tmp_path):
    model = models.chain()
    path = tmp_path / "chain.keras"
    model.save(path)
    for uri in (str(path), f"file://{path}"):
        loaded = load_model(uri)
        data = random_input(model)
        assert np.max(np.abs(np.asarray(loaded(data)) - np.asarray(model(data)))) == 0.0


def test_lambda_layers_need_allow_unsafe(tmp_path):
    x = keras.Input((4,), name="x")
    y = keras.layers.Lambda(lambda t: t * 2.0, name="double")(x)
    path = tmp_path / "lambda.keras"
    keras.Model(x, y).save(path)
    with pytest.raises(SourceError, match="allow_unsafe=True"):
        load_model(path)
    model = load_model(path, allow_unsafe=True)
    assert isinstance(model.get_layer("double"), keras.layers.Lambda)
    np.testing.assert_array_equal(np.asarray(model(np.ones((1, 4), "float32"))), np.full((1, 4), 2.0, "float32"))


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        load_model(tmp_path / "nope.keras")
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(SourceError, match=r"\.keras, \.h5"):
        load_model(tmp_path / "model.onnx")
    with pytest.raises(SourceError, match="SavedModel"):
        load_model(tmp_path)
    with pytest.raises(SourceError, match="unsupported scheme 'gs'"):
        load_model("gs://bucket/model.keras")


def test_applications_build_deterministically_without_weights():
    first = load_model("keras.applications/MobileNetV2", weights="none",
                       input_shape=(32, 32, 3), include_top=False)
    first_weights = [np.asarray(w) for w in first.get_weights()]
    keras.backend.clear_session()
    keras.utils.set_random_seed(99)  # whatever the global state, the build is the same
    second = load_model("keras.applications/MobileNetV2", weights="none",
                        input_shape=(32, 32, 3), include_top=False)
    assert first.output.shape == (None, 1, 1, 1280)
    assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(first_weights, second.get_weights(), strict=True))


def test_seeded_build_ignores_other_threads_using_random():
    """Prefect names runs with `random` from other threads; a seeded build must not notice."""
    import random
    import threading

    def weights(model):
        return np.concatenate([np.ravel(v.numpy()) for v in model.weights])

    uri = "keras.applications/MobileNetV2"
    alone = weights(load_model(uri, weights="none", input_shape=(32, 32, 3)))
    stop = threading.Event()

    def use_random():
        while not stop.is_set():
            random.random()

    other = threading.Thread(target=use_random)
    other.start()
    try:
        busy = weights(load_model(uri, weights="none", input_shape=(32, 32, 3)))
    finally:
        stop.set()
        other.join()
    np.testing.assert_array_equal(alone, busy)


def test_applications_weights_file(tmp_path):
    keras.utils.set_random_seed(3)
    source = keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), include_top=False)
    path = tmp_path / "mnv2.weights.h5"
    source.save_weights(path)
    loaded = load_model("keras.applications/MobileNetV2", weights=str(path),
                        input_shape=(32, 32, 3), include_top=False)
    assert all(np.array_equal(np.asarray(a), np.asarray(b))
               for a, b in zip(source.get_weights(), loaded.get_weights(), strict=True))


def test_applications_errors():
    with pytest.raises(SourceError, match="Did you mean 'MobileNetV2'"):
        load_model("keras.applications/MobileNetv2", weights="none")
    with pytest.raises(SourceError, match="not a file"):
        load_model("keras.applications/MobileNetV2", weights="/no/such/weights.h5")
    with pytest.raises(SourceError, match="Could not build"):
        load_model("keras.applications/MobileNetV2", weights="none", input_shape=(8, 8, 3))
