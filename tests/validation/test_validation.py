"""validate() on correct cuts of the tiny graphs, its inputs, its report and its errors.

Every candidate is saved to disk and validated from its bytes. On CPU with float32 the
candidate must reproduce the source exactly (max abs diff 0.0).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import kerascut_core as kc
from kerascut_core.validation.report import ValidationReport
from tests.fixtures.models import BUILDERS
from tests.support.backend import tensorflow_only

pytestmark = pytest.mark.jax  # also in CI's JAX slice (KERAS_BACKEND=jax)

CORRECT_CUTS = [
    ("chain", {"start": "a", "end": "c"}),
    ("chain", {"drop_first": 1}),
    ("branch_merge", {"start": "stem", "end": "head"}),
    ("residual", {"start": "block1_out", "end": "block3_out"}),
    ("residual", {"start": "stem", "end": {"P2": "block2_out", "P3": "block3_out"}}),
    ("residual", {"start": "block1_conv1", "end": "block2_out", "extra_inputs": "auto"}),
    ("shared_layer", {"start": "relu", "end": "head"}),
    ("functional_in_functional", {"start": "pre", "end": "post"}),
    ("sequential_in_functional", {"start": "pre", "end": "post"}),
    ("raw_ops", {"start": "a"}),
    ("split_op", {"start": "a", "end": "concat"}),
    ("multi_input", {"end": "concat"}),
    ("multi_output", {"start": "trunk"}),
]


def _save_cut(model: Any, path: Path, spec: dict) -> Path:
    kc.cut(model, **spec).save(path)
    return path


@pytest.mark.parametrize(
    "graph, spec", CORRECT_CUTS, ids=[f"{g}-{i}" for i, (g, _) in enumerate(CORRECT_CUTS)]
)
def test_correct_cut_passes_exactly(graph, spec, tmp_path):
    source = BUILDERS[graph]()
    candidate = _save_cut(source, tmp_path / "model.keras", spec)
    report = kc.validate(candidate, source, spec)

    assert report.passed, report.failures
    assert report.max_abs_diff == 0.0 and report.max_rel_diff == 0.0
    assert report.failures == []
    plan = kc.plan_cut(source, **spec)
    assert [o.name for o in report.outputs] == list(plan.outputs)
    assert all(o.passed and o.nan_count == 0 and o.inf_count == 0 for o in report.outputs)
    assert report.inputs == plan.inputs
    assert report.structure.passed
    assert report.weights.passed
    assert report.weights.params_kept == plan.kept_params
    assert report.weights.params_kept + report.weights.params_dropped == report.weights.source_params
    assert report.samples == 8 and report.batch_size == 8
    assert report.device.kind == "cpu"
    assert [f.format for f in report.formats] == ["keras"]


def test_a_spec_given_as_tensors_is_recorded_as_addresses(tmp_path):
    source = BUILDERS["residual"]()
    ends = {"P2": source.get_layer("block2_out").output, "P3": source.get_layer("block3_out").output}
    spec = {"start": source.get_layer("stem").output, "end": ends}
    candidate = _save_cut(source, tmp_path / "model.keras", spec)
    report = kc.validate(candidate, source, spec)

    assert report.passed, report.failures
    assert report.max_abs_diff == 0.0
    assert report.cut_spec["end"] == {"P2": "block2_out", "P3": "block3_out"}
    assert report.cut_spec["start"] == "stem"
    assert json.loads(report.model_dump_json())["cut_spec"] == report.cut_spec


def test_extra_inputs_cut_feeds_every_start(tmp_path):
    source = BUILDERS["residual"]()
    spec = {"start": "block1_conv1", "end": "block2_out", "extra_inputs": "auto"}
    report = kc.validate(_save_cut(source, tmp_path / "model.keras", spec), source, spec)
    assert report.passed
    assert len(report.inputs) == 2  # the start and the skip that crosses it
    assert [t.role for t in report.structure.tensors] == ["input", "input", "output"]


def test_samples_and_batching(tmp_path):
    source = BUILDERS["residual"]()
    spec = {"start": "block1_out", "end": "block3_out"}
    candidate = _save_cut(source, tmp_path / "model.keras", spec)
    report = kc.validate(candidate, source, spec, samples=5, batch_size=2, seed=3)
    assert report.passed and report.samples == 5 and report.batch_size == 2 and report.seed == 3


def test_source_given_as_uri(tmp_path):
    source = BUILDERS["chain"]()
    source.save(tmp_path / "source.keras")
    spec = {"start": "a", "end": "c"}
    candidate = _save_cut(source, tmp_path / "model.keras", spec)
    report = kc.validate(str(candidate), str(tmp_path / "source.keras"), spec)
    assert report.passed
    assert report.source == str(tmp_path / "source.keras")


def test_candidate_directory_and_file_uri(tmp_path):
    source = BUILDERS["chain"]()
    spec = kc.CutSpec(start="a", end="c")
    _save_cut(source, tmp_path / "model.keras", spec.to_dict())
    assert kc.validate(tmp_path, source, spec).passed
    assert kc.validate(f"file://{tmp_path / 'model.keras'}", source, spec).passed


def test_source_with_dict_inputs_in_non_sorted_order(tmp_path):
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    b, a = keras.Input((3,), name="b"), keras.Input((5,), name="a")
    h = keras.layers.Concatenate(name="cat")(
        [keras.layers.Dense(4, name="da")(a), keras.layers.Dense(4, name="db")(b)]
    )
    source = keras.Model({"b": b, "a": a}, keras.layers.Dense(2, name="head")(h), name="dict_in")
    for spec in ({"end": "cat"}, {"start": ["da", "db"]}):
        candidate = _save_cut(source, tmp_path / "model.keras", spec)
        report = kc.validate(candidate, source, spec)
        assert report.passed, (spec, report.failures)


def _twice_nested() -> Any:
    """Two nested blocks whose layers share names: a cut renames the second block's copies."""
    import keras

    from tests.fixtures.models import _inner_block

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    enc, dec = _inner_block("enc"), _inner_block("dec")
    x = keras.Input((8,), name="x")
    h = dec(enc(keras.layers.Dense(8, name="pre")(x)))
    return keras.Model(x, keras.layers.Dense(2, name="post")(h), name="twice")


def test_layers_renamed_by_the_cut_still_match_their_source(tmp_path):
    import keras

    source = _twice_nested()
    spec = {"start": "pre", "end": "post"}
    candidate = _save_cut(source, tmp_path / "model.keras", spec)
    report = kc.validate(candidate, source, spec)
    assert report.passed, report.failures
    assert report.weights.variables_kept == 10  # enc and dec: 4 each, post: 2

    # the same names with the two blocks' first layers swapped must not pass
    model = keras.saving.load_model(candidate)
    names = [layer.name for layer in model.layers if "dense_1" in layer.name]
    first, second = (model.get_layer(n) for n in names)
    w1, w2 = first.get_weights(), second.get_weights()
    first.set_weights(w2)
    second.set_weights(w1)
    model.save(tmp_path / "swapped.keras")
    report = kc.validate(tmp_path / "swapped.keras", source, spec)
    assert not report.passed
    assert any("not bitwise equal" in f for f in report.failures)


# ---------------------------------------------------------------------------------------------
# formats


@tensorflow_only
def test_saved_model_is_exported_when_not_beside_the_candidate(tmp_path):
    source = BUILDERS["residual"]()
    spec = {"start": "stem", "end": {"P2": "block2_out", "P3": "block3_out"}}
    candidate = _save_cut(source, tmp_path / "model.keras", spec)
    report = kc.validate(candidate, source, spec, formats=("saved_model",))
    assert report.passed, report.failures
    saved = [f for f in report.formats if f.format == "saved_model"]
    assert [f.format for f in report.formats] == ["keras", "saved_model"]
    assert saved[0].origin == "exported" and saved[0].max_abs_diff == 0.0


@tensorflow_only
def test_saved_model_beside_the_candidate_is_the_artifact_checked(tmp_path):
    source = BUILDERS["multi_input"]()
    spec = {"end": "concat"}
    model = kc.cut(source, **spec)
    model.save(tmp_path / "model.keras")
    model.export(str(tmp_path / "saved_model"), format="tf_saved_model", verbose=False)
    report = kc.validate(tmp_path / "model.keras", source, spec, formats=("keras", "saved_model"))
    assert report.passed, report.failures
    assert report.formats[1].origin == "artifact"
    assert report.formats[1].location == str(tmp_path / "saved_model")


# ---------------------------------------------------------------------------------------------
# inputs


def _int_model() -> Any:
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(1)
    tokens = keras.Input((5,), dtype="int32", name="tokens")
    flags = keras.Input((2,), dtype="int32", name="flags")
    e = keras.layers.Embedding(7, 4, name="embed")(tokens)
    e = keras.layers.Flatten(name="flat")(e)
    f = keras.layers.Dense(4, name="flag_dense")(keras.ops.cast(flags, "float32"))
    h = keras.layers.Concatenate(name="concat")([e, f])
    return keras.Model([tokens, flags], keras.layers.Dense(2, name="head")(h), name="ints")


def test_random_integer_inputs_stay_in_the_embedding_range(tmp_path):
    from kerascut_core.validation.inputs import random_inputs

    source = _int_model()
    tokens, flags = random_inputs(source, 64, seed=0)
    assert tokens.dtype == np.int32 and tokens.min() >= 0 and tokens.max() == 6
    assert flags.dtype == np.int32 and set(np.unique(flags)) == {0, 1}
    again = random_inputs(source, 64, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(again, (tokens, flags), strict=True))

    spec = {"end": "concat"}
    report = kc.validate(_save_cut(source, tmp_path / "model.keras", spec), source, spec)
    assert report.passed, report.failures


def test_random_float_inputs_respect_shape_and_dtype():
    from kerascut_core.validation.inputs import random_inputs

    (x,) = random_inputs(BUILDERS["residual"](), 3, seed=0)
    assert x.shape == (3, 8, 8, 3) and x.dtype == np.float32
    assert x.min() >= -1.0 and x.max() < 1.0


def test_user_data_npz_and_npy(tmp_path):
    source = BUILDERS["multi_input"]()
    spec = {"end": "concat"}
    candidate = _save_cut(source, tmp_path / "model.keras", spec)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "data.npz", img=rng.normal(size=(12, 8)).astype("float32"),
             meta=rng.normal(size=(12, 3)).astype("float32"))
    report = kc.validate(candidate, source, spec, data=tmp_path / "data.npz", samples=10, batch_size=4)
    assert report.passed and report.samples == 10 and report.data == str(tmp_path / "data.npz")

    chain = BUILDERS["chain"]()
    chain_spec = {"start": "a", "end": "c"}
    chain_candidate = _save_cut(chain, tmp_path / "chain.keras", chain_spec)
    np.save(tmp_path / "x.npy", rng.normal(size=(3, 8)).astype("float64"))  # cast to float32
    report = kc.validate(chain_candidate, chain, chain_spec, data=tmp_path / "x.npy")
    assert report.passed and report.samples == 3


@pytest.mark.parametrize(
    "arrays, fragment",
    [
        ({"img": np.zeros((4, 9), "float32"), "meta": np.zeros((4, 3), "float32")},
         "Expected `data` for input 'img' to have shape (None, 8). Received shape (4, 9)."),
        ({"image": np.zeros((4, 8), "float32"), "meta": np.zeros((4, 3), "float32")},
         "Expected `data` to hold arrays named after the source's inputs ['img', 'meta']"),
        ({"img": np.zeros((4, 8), "float32"), "meta": np.zeros((3, 3), "float32")},
         "same, non-zero number of rows"),
        ({"img": np.zeros((4, 8), "complex64"), "meta": np.zeros((4, 3), "float32")},
         "to have dtype float32. Received complex64"),
    ],
)
def test_bad_user_data_is_refused(arrays, fragment, tmp_path):
    source = BUILDERS["multi_input"]()
    spec = {"end": "concat"}
    candidate = _save_cut(source, tmp_path / "model.keras", spec)
    np.savez(tmp_path / "data.npz", **arrays)
    with pytest.raises(kc.ValidationError) as info:
        kc.validate(candidate, source, spec, data=tmp_path / "data.npz")
    assert fragment in str(info.value)


# ---------------------------------------------------------------------------------------------
# the report


def test_report_round_trips_through_json_and_renders_markdown(tmp_path):
    source = BUILDERS["residual"]()
    spec = {"start": "stem", "end": {"P2": "block2_out", "P3": "block3_out"}}
    report = kc.validate(_save_cut(source, tmp_path / "model.keras", spec), source, spec)
    dumped = json.dumps(report.model_dump(mode="json"), allow_nan=False)
    assert ValidationReport.model_validate(json.loads(dumped)) == report
    md = report.to_markdown()
    assert "| output | shape | max abs diff | result |" in md
    assert "| P2 | (None, 8, 8, 4) | 0 | pass |" in md
    assert report.timings.total >= report.timings.probe > 0


def test_compare_is_exact_by_default_and_nan_always_fails():
    from kerascut_core.validation.comparisons import compare

    a = np.array([1.0, 2.0], "float32")
    b = np.nextafter(a, np.float32(3))
    assert compare(a, a, 0.0, 0.0)[-1] is True
    assert compare(b, a, 0.0, 0.0)[-1] is False
    assert compare(b, a, 1e-6, 0.0)[-1] is True
    assert compare(b, a, 0.0, 1e-6)[-1] is True
    with_nan = np.array([1.0, np.nan], "float32")
    max_abs, _, nan, inf, ok = compare(with_nan, with_nan, 1e9, 1e9)
    assert not ok and nan == 2 and inf == 0 and np.isnan(max_abs)
    assert compare(np.array([np.inf]), np.array([np.inf]), 1.0, 1.0)[-1] is False


# ---------------------------------------------------------------------------------------------
# errors


def test_require_gpu_on_cpu_fails_before_any_model_is_loaded(monkeypatch):
    import keras

    import kerascut_core.sources as sources

    loads: list[Any] = []
    monkeypatch.setattr(sources, "load_model", lambda *a, **k: loads.append(a))
    monkeypatch.setattr(keras.saving, "load_model", lambda *a, **k: loads.append(a))
    started = time.perf_counter()
    with pytest.raises(kc.DeviceError) as info:
        # neither the candidate nor the source exist: the device check must come first
        kc.validate("s3://nowhere/candidate.keras", "keras.applications/ResNet50",
                    {"end": "conv4_block6_out"}, require_gpu=True)
    assert time.perf_counter() - started < 5.0
    assert loads == []
    message = str(info.value)
    assert "GPU worker" in message and "require_gpu=False" in message
    assert message.startswith("Expected a GPU") and "\n" not in message


def test_missing_candidate_is_an_error_not_a_verdict(tmp_path):
    with pytest.raises(kc.ValidationError, match="does not exist"):
        kc.validate(tmp_path / "nope.keras", BUILDERS["chain"](), {"start": "a"})


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"samples": 0}, "Expected `samples` to be a positive integer. Received samples=0."),
        ({"batch_size": 2.5}, "Expected `batch_size` to be a positive integer"),
        ({"atol": -1}, "Expected `atol` to be a number >= 0"),
        ({"formats": ("keras", "tflite")}, "remove ['tflite']"),
    ],
)
def test_bad_arguments_are_refused(kwargs, fragment, tmp_path):
    with pytest.raises(kc.ValidationError) as info:
        kc.validate(tmp_path / "model.keras", BUILDERS["chain"](), {"start": "a"}, **kwargs)
    assert fragment in str(info.value)


def test_cut_spec_that_does_not_fit_the_source_raises_cut_error(tmp_path):
    source = BUILDERS["chain"]()
    candidate = _save_cut(source, tmp_path / "model.keras", {"start": "a"})
    with pytest.raises(kc.CutError, match="aa_not_there"):
        kc.validate(candidate, source, {"start": "aa_not_there"})


def test_progress_reports_every_batch_of_both_passes(tmp_path):
    """validate(progress=...) sees the source pass and the candidate pass, batch by batch."""
    from kerascut_core.surgery import cut
    from kerascut_core.validation import validate
    from tests.fixtures.models import chain

    model = chain()
    path = tmp_path / "cut.keras"
    cut(model, start="a").save(path)
    seen: list[tuple[str, int, int]] = []
    report = validate(path, model, {"start": "a"}, samples=5, batch_size=2,
                      progress=lambda phase, done, total: seen.append((phase, done, total)))
    assert report.passed
    assert [s for s in seen if s[0] == "source"] == [("source", 2, 5), ("source", 4, 5), ("source", 5, 5)]
    assert [s for s in seen if s[0] == "candidate"] == [("candidate", 2, 5), ("candidate", 4, 5), ("candidate", 5, 5)]


@pytest.mark.zoo
def test_unnamed_weights_match_after_reload(tmp_path):
    """ConvNeXt's layer scales are unnamed weights (`variable_<n>`, numbered per process)."""
    import keras

    from kerascut_core.sources import load_model
    from kerascut_core.surgery import cut
    from kerascut_core.validation import validate

    keras.backend.clear_session()
    source = load_model("keras.applications/ConvNeXtTiny", weights="none", input_shape=(32, 32, 3))
    spec = {"start": "add_2", "end": "add_8"}  # raw keras.ops adds: stage 1 and its downsampling
    path = tmp_path / "convnext.keras"
    cut(source, **spec).save(path)
    report = validate(path, source, spec, samples=2, batch_size=2)
    assert report.passed, report.failures
    assert report.weights.variables_kept > 0 and not report.weights.unmatched


def test_validate_takes_the_config_s_settings_object_and_keyword_overrides(monkeypatch):
    """A refresh passes its ValidationSettings whole; keywords still win; unknown names are one line."""
    from kerascut_core.config import ValidationSettings

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with pytest.raises(kc.DeviceError):  # require_gpu from the settings object, checked first
        kc.validate("s3://nowhere/c.keras", "keras.applications/ResNet50", {"end": "conv4_block6_out"},
                    ValidationSettings(require_gpu=True))
    with pytest.raises(kc.DeviceError):  # ... from a dict, with an override on top
        kc.validate("s3://nowhere/c.keras", "keras.applications/ResNet50", {"end": "conv4_block6_out"},
                    {"require_gpu": False}, require_gpu=True)
    with pytest.raises(kc.ValidationError, match=r"Received 'sampels'.*samples"):
        kc.validate("s3://nowhere/c.keras", "keras.applications/ResNet50", {"end": "x"}, sampels=4)
