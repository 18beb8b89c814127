"""validate() on correct cuts of keras.applications models (random weights, small inputs).

The CI slice (``zoo and not slow``) validates a MobileNetV2 pyramid; ResNet50, EfficientNetB0
and the SavedModel format run with ``-m slow``. Each model is built once per test.
"""

from __future__ import annotations

import pytest

import kerascut_core as kc

pytestmark = pytest.mark.zoo

CASES = [
    pytest.param(
        "MobileNetV2", (96, 96, 3),
        {"start": "block_3_expand_relu", "end": {"C4": "block_13_expand_relu", "C5": "out_relu"}},
        ("keras",), id="MobileNetV2-pyramid", marks=pytest.mark.jax,  # CI's JAX slice: the zoo model
    ),
    pytest.param(
        "MobileNetV2", (96, 96, 3), {"drop_first": 9, "end": "block_6_expand_relu"},
        ("keras", "saved_model"), id="MobileNetV2-drop_first-saved_model", marks=pytest.mark.slow,
    ),
    pytest.param(
        "ResNet50", (64, 64, 3),
        {"end": {"C3": "conv3_block4_out", "C4": "conv4_block6_out", "C5": "conv5_block3_out"}},
        ("keras", "saved_model"), id="ResNet50-pyramid-saved_model", marks=pytest.mark.slow,
    ),
    pytest.param(
        "EfficientNetB0", (64, 64, 3),
        {"start": "block2a_expand_activation", "end": "block6a_expand_activation"},
        ("keras", "saved_model"), id="EfficientNetB0-saved_model", marks=pytest.mark.slow,
    ),
]


@pytest.mark.parametrize("name, shape, spec, formats", CASES)
def test_zoo_cut_validates_exactly(name, shape, spec, formats, tmp_path):
    import keras

    keras.backend.clear_session()
    source = kc.load_model(f"keras.applications/{name}", weights="none", input_shape=shape)
    kc.cut(source, **spec).save(tmp_path / "model.keras")
    report = kc.validate(tmp_path / "model.keras", source, spec, formats=formats, samples=4,
                         batch_size=4)
    assert report.passed, report.failures
    assert report.max_abs_diff == 0.0
    assert report.weights.params_kept == kc.plan_cut(source, **spec).kept_params
    assert [f.format for f in report.formats] == list(formats)
    assert all(f.passed and f.max_abs_diff == 0.0 for f in report.formats)
    keras.backend.clear_session()
