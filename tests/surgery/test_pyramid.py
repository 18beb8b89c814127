"""The auto-pyramid rule on tiny hand-built CNNs: exact taps, stages, nominal strides, bad input.

Level k is the latest valid cut point whose stride is 2^k (an exact one where the stage has
any). Each model is a handful of layers whose taps are known by construction.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import kerascut_core as kc
from kerascut_core.errors import CutError
from kerascut_core.publishing.card import model_card
from kerascut_core.publishing.manifest import OutputInfo
from kerascut_core.publishing.versioning import compute_version
from kerascut_core.surgery import (
    CutSpec,
    cut,
    cut_contract,
    cut_points,
    dot_source,
    plan_cut,
    pyramid,
    pyramid_taps,
    stages,
)
from kerascut_core.surgery import spec as spec_module
from kerascut_core.surgery.feature_pyramid import compare_pyramid_outputs

L = keras.layers


def _conv(x, filters: int, stride: int, name: str, padding: str = "same", kernel: int = 3):
    return L.Conv2D(filters, kernel, strides=stride, padding=padding, name=name)(x)


@pytest.fixture(scope="module")
def cnn():
    """x -> stem -> c1 (s2) -> r1 -> c2 (s2) -> [b_conv + skip] b_add -> c3 (s2) -> r3."""
    keras.utils.set_random_seed(0)
    x = keras.Input((None, None, 3), name="x")
    h = _conv(x, 4, 1, "stem")
    h = L.ReLU(name="r1")(_conv(h, 4, 2, "c1"))
    c2 = _conv(h, 8, 2, "c2")
    h = L.Add(name="b_add")([c2, _conv(c2, 8, 1, "b_conv")])
    h = L.ReLU(name="r3")(_conv(h, 16, 2, "c3"))
    return keras.Model(x, h, name="tiny_cnn")


def test_each_level_is_the_latest_valid_cut_point_at_its_stride(cnn):
    assert {k: t.address for k, t in pyramid_taps(cnn).items()} == {"P2": "b_add", "P3": "r3"}
    assert {k: t.address for k, t in pyramid_taps(cnn, [1, 2, 3]).items()} == {"P1": "r1", "P2": "b_add", "P3": "r3"}
    rows = [(s.level, s.stride, s.exact, s.first, s.latest, s.channels) for s in stages(cnn)]
    assert rows == [
        (0, 1, True, "x", "stem", 4),
        (1, 2, True, "c1", "r1", 4),
        (2, 4, True, "c2", "b_add", 8),
        (3, 8, True, "c3", "r3", 16),
    ]
    p2 = stages(cnn)[2]
    assert p2.layers == 3  # c2, b_conv, b_add
    assert p2.params == sum(cnn.get_layer(n).count_params() for n in ("c2", "b_conv", "b_add"))
    # b_conv is crossed by the skip c2 -> b_add: never a tap
    assert "b_conv" not in cut_points(cnn) and "b_add" in cut_points(cnn)


def test_pyramid_is_the_models_own_tensors_and_cuts_exactly(cnn):
    tensors = pyramid(cnn, levels=[2, 3])
    assert list(tensors) == ["P2", "P3"] and all(isinstance(t, keras.KerasTensor) for t in tensors.values())
    from_tensors = cut(cnn, end=tensors)
    from_name = cut(cnn, end="auto-pyramid", levels=[3, 2])
    assert from_tensors.cut_plan.outputs == from_name.cut_plan.outputs == {"P2": "b_add", "P3": "r3"}
    assert from_name.cut_plan.pyramid["P3"] == {"rule": "auto-pyramid", "level": 3, "stride": 8, "exact": True,
                                              "reduction": 8.0}
    x = np.random.default_rng(0).standard_normal((1, 32, 32, 3)).astype("float32")
    probe = keras.Model(cnn.input, [cnn.get_layer("b_add").output, cnn.get_layer("r3").output])(x)
    got = from_name(x)
    assert np.array_equal(np.asarray(got["P2"]), np.asarray(probe[0]))
    assert np.array_equal(np.asarray(got["P3"]), np.asarray(probe[1]))
    assert kc.pyramid is pyramid


def test_the_plan_records_addresses_and_cut_points_take_the_pyramid(cnn):
    plan = plan_cut(cnn, end="auto-pyramid", levels=[2, 3])
    assert plan.spec.end == {"P2": "b_add", "P3": "r3"} and plan.spec.levels is None
    assert plan.to_dict()["pyramid"]["P2"]["stride"] == 4
    assert cut_points(cnn, end="auto-pyramid", levels=[2, 3]) == cut_points(cnn, end=["b_add", "r3"])
    assert plan_cut(cnn, end="r3").pyramid == {}


def test_a_free_input_size_gets_the_taps_stride_in_the_contract(cnn):
    contract = cut_contract(cnn, plan_cut(cnn, end="auto-pyramid"))
    assert [(o.name, o.channels, o.stride) for o in contract.outputs] == [("P2", 8, [4, 4]), ("P3", 16, [8, 8])]
    assert contract.outputs[0].pyramid == {"rule": "auto-pyramid", "level": 2, "stride": 4, "exact": True,
                                           "reduction": 4.0}
    assert OutputInfo(**contract.outputs[0].__dict__).pyramid.level == 2


def test_valid_padding_gives_nominal_levels_said_as_such():
    x = keras.Input((64, 64, 3), name="x")
    h = _conv(x, 4, 2, "v1", padding="valid")   # 64 -> 31: never exactly half
    h = _conv(h, 4, 2, "v2", padding="valid")
    h = _conv(h, 4, 2, "v3", padding="valid")
    model = keras.Model(x, h, name="valid_cnn")
    taps = pyramid_taps(model)
    assert [(k, t.address, t.stride, t.exact) for k, t in taps.items()] == [("P2", "v2", 4, False), ("P3", "v3", 8, False)]
    assert taps["P3"].reduction > 8
    contract = cut_contract(model, plan_cut(model, end="auto-pyramid"))
    assert contract.outputs[1].stride is None  # 64 / 6 is not whole: the static shapes do not tell
    assert contract.outputs[1].pyramid["exact"] is False


def test_an_exact_cut_point_outranks_the_padded_copy_after_it():
    x = keras.Input((None, None, 3), name="x")
    h = L.ReLU(name="act")(_conv(x, 4, 2, "c1"))
    padded = L.ZeroPadding2D(1, name="pad")(h)                       # stride 2, two pixels more
    h = _conv(padded, 4, 2, "c2", padding="valid")                     # exactly stride 4 again
    model = keras.Model(x, h, name="padded_cnn")
    assert "pad" in cut_points(model)
    (level1,) = [s for s in stages(model) if s.level == 1]
    assert (level1.latest, level1.exact) == ("act", True)


def test_a_dense_only_model_has_no_pyramid():
    x = keras.Input((8,), name="x")
    model = keras.Model(x, L.Dense(2, name="d")(L.Dense(4, name="h")(x)), name="mlp")
    with pytest.raises(CutError, match=r"Expected a model with spatial axes.*'mlp'.*Name the end layers"):
        pyramid(model)
    with pytest.raises(CutError, match="spatial axes"):
        cut(model, end="auto-pyramid")


def test_a_level_the_model_lacks_names_the_level_the_model_and_its_stages(cnn):
    with pytest.raises(CutError) as info:
        pyramid(cnn, levels=[9])
    message = str(info.value)
    assert "\n" not in message
    assert "levels=[9]" in message and "level 9" in message and "'tiny_cnn'" in message
    assert "P2 (stride 4): b_add" in message and "kerascut inspect MODEL --stages" in message


def test_a_level_between_two_stages():
    x = keras.Input((None, None, 3), name="x")
    h = _conv(x, 4, 2, "c1")
    h = _conv(h, 4, 4, "c3", kernel=4)  # stride 2 -> 8: no stride 4
    model = keras.Model(x, h, name="jump")
    with pytest.raises(CutError, match="stride 4 is between its stages P1 and P3"):
        pyramid(model, levels=[2, 3])
    assert list(pyramid(model, levels=[1, 3])) == ["P1", "P3"]


def test_a_stage_with_no_valid_cut_point():
    x = keras.Input((None, None, 3), name="x")
    c1 = _conv(x, 4, 2, "c1")
    pooled = L.MaxPooling2D(2, name="pool")(c1)                          # stride 4, one branch only
    a = _conv(pooled, 4, 2, "a")                                          # stride 8
    b = _conv(c1, 4, 4, "b", kernel=4)                                   # stride 8, skipping stride 4
    model = keras.Model(x, L.Add(name="add")([a, b]), name="branches")
    (level2,) = [s for s in stages(model) if s.level == 2]
    assert (level2.first, level2.latest, level2.layers) == (None, None, 1)
    with pytest.raises(CutError, match="level 2 its stage at stride 4 has no valid cut point"):
        pyramid(model)
    assert list(pyramid(model, levels=[3])) == ["P3"]


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"end": "r3", "levels": [3]}, "Expected `levels` only with end='auto-pyramid'"),
        ({"end": "auto-pyramid", "levels": []}, "distinct integers"),
        ({"end": "auto-pyramid", "levels": [3, 3]}, "distinct integers"),
        ({"end": "auto-pyramid", "levels": [-1]}, "distinct integers"),
        ({"end": "auto-pyramid", "levels": [True]}, "distinct integers"),
        ({"end": "auto-pyramid", "levels": [99]}, "from 0 to 16"),
    ],
)
def test_levels_are_checked_in_the_spec(fields, match):
    with pytest.raises(CutError, match=match):
        CutSpec(**fields)


def test_the_spec_round_trips_levels_and_keeps_other_specs_as_they_were():
    spec = CutSpec(end="auto-pyramid", levels=[3, 4, 5])
    assert CutSpec.from_dict(spec.to_dict()) == spec
    assert "levels" not in CutSpec(end="r3").to_dict()


def test_the_version_depends_on_the_levels_the_rule_and_resolved_addresses(monkeypatch):
    def version(spec):
        return compute_version("sha256:ab12", spec, [224, 224, 3], "3.15.1", "0.1.0")

    # a spec without a pyramid keeps its version (the module's doctest value)
    assert version({"end": "block_13_expand_relu"}) == "dacbebb99180baec"
    auto = version({"end": "auto-pyramid"})
    assert auto != version({"end": "auto-pyramid", "levels": [3, 4, 5]})
    assert version({"end": {"P3": "a", "P4": "b"}}) != version({"end": {"P3": "a", "P4": "c"}})
    monkeypatch.setattr("kerascut_core.publishing.versioning.AUTO_PYRAMID_RULE", "another-rule/2")
    assert version({"end": "auto-pyramid"}) != auto
    assert spec_module.AUTO_PYRAMID_RULE.endswith("/1")


def test_keras_hub_style_pyramid_outputs_are_compared_key_by_key(cnn):
    x = keras.Input((None, None, 3), name="x")
    h = _conv(x, 4, 2, "c1")
    c2 = _conv(h, 8, 2, "c2")
    out = L.ReLU(name="r2")(c2)
    model = keras.Model(x, out, name="hub_like")
    model.pyramid_outputs = {"P2": c2}  # hand-written: the conv before the activation
    rows = compare_pyramid_outputs(model)
    assert rows == [{"key": "P2", "hand_written": "c2", "hand_written_stride": 4, "auto": "r2", "agree": False}]
    model.pyramid_outputs = {"P2": out}
    assert compare_pyramid_outputs(model)[0]["agree"] is True
    assert compare_pyramid_outputs(cnn) is None


def test_the_picture_marks_the_taps(cnn):
    source = dot_source(cnn, end="auto-pyramid").source
    assert source.count("pyramid-tap") == 2 and "pyramid tap P2" in source and "pyramid tap P3" in source
    marked = dot_source(cnn, taps={"P1": "r1"}).source
    assert marked.count("pyramid-tap") == 1 and "pyramid tap P1" in marked


def test_the_card_says_which_strides_are_nominal():
    from kerascut_core.publishing.manifest import Manifest

    manifest = Manifest.model_validate({
        "name": "p", "version": "0123456789abcdef",
        "source": {"uri": "keras.applications/InceptionV3", "fingerprint": "app:InceptionV3"},
        "cut": {"end": "auto-pyramid", "levels": [3, 4]},
        "inputs": [{"name": "x", "shape": [None, 299, 299, 3], "dtype": "float32"}],
        "outputs": [
            {"name": "P3", "shape": [None, 35, 35, 288], "dtype": "float32", "address": "mixed2", "channels": 288,
             "stride": None, "pyramid": {"level": 3, "stride": 8, "exact": False, "reduction": 8.05}},
            {"name": "P4", "shape": [None, None, None, 768], "dtype": "float32", "address": "mixed7",
             "channels": 768, "stride": [16, 16], "pyramid": {"level": 4, "stride": 16, "exact": True}},
        ],
        "params": {"total_source": 10, "kept": 5},
        "validation": {"passed": True},
    })
    card = model_card(manifest)
    assert "| 8 (nominal) |" in card and "| 16 |" in card and "levels" in card and "auto-pyramid" in card
