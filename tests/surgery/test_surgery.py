"""cut / plan_cut / cut_points on tiny hand-built graphs: exact numbers, inputs, errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kerascut_core import CutError, CutSpec
from kerascut_core.surgery import CutPlan, cut, cut_points, graph_view, plan_cut
from tests.fixtures import models
from tests.fixtures.models import random_input, reference_activations

pytestmark = pytest.mark.jax  # also in CI's JAX slice (KERAS_BACKEND=jax)

ALL = sorted(models.BUILDERS)
FLAT = ["branch_merge", "chain", "multi_input", "residual"]


def _np(values):
    values = keras.tree.flatten(values)
    return [np.asarray(v) for v in values]


def _same(a, b):
    a, b = _np(a), _np(b)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.shape == y.shape
        assert np.max(np.abs(x - y)) == 0.0


def _brute_force_cut_points(model, end=None):
    """Every tensor whose single-start cut plans without CutError (the definition)."""
    view = graph_view(model)
    ends = view.outputs if end is None else [view.resolve(end)]
    valid = []
    for t in sorted(view.ancestors(ends) - set(ends)):
        try:
            plan_cut(model, start=view.tensors[t].address, end=end)
        except CutError:
            continue
        valid.append(view.tensors[t].address)
    return valid


# ---------------------------------------------------------------------------------- basics


def test_chain_cut_matches_plain_keras():
    model = models.chain()
    data = random_input(model)
    a, b = reference_activations(model, ["a", "b"], data)
    part = cut(model, start="a", end="b")
    assert [t.name for t in part.inputs] == ["a"]
    assert [layer.name for layer in part.layers] == ["a", "b"]
    assert part.name == "chain_cut"
    _same(part(a), b)


@pytest.mark.parametrize("name", ALL)
def test_full_cut_reproduces_the_model(name):
    model = models.BUILDERS[name]()
    data = random_input(model)
    _same(cut(model)(data), model(data))


@pytest.mark.parametrize("name", ALL)
def test_cut_points_agree_with_brute_force(name):
    model = models.BUILDERS[name]()
    assert cut_points(model) == _brute_force_cut_points(model)


def test_cut_points_for_a_chosen_end():
    model = models.residual()
    assert cut_points(model, end="block2_conv2") == [
        "x", "stem", "block1_add", "block1_out", "block2_conv1", "block2_bn"
    ]
    assert cut_points(model, end="block2_conv2") == _brute_force_cut_points(model, "block2_conv2")


@pytest.mark.parametrize("name", ALL)
def test_every_cut_point_to_every_output_is_exact(name):
    """Probe the source for (start, output), then run the cut from the probed start."""
    model = models.BUILDERS[name]()
    data = random_input(model)
    for point in cut_points(model):
        plan = plan_cut(model, start=point)
        probe = cut(model, end=plan.inputs + list(plan.outputs.values()))
        values = _np(probe(data))
        part = cut(model, start=point)
        _same(part(values[0]), values[1:])


@pytest.mark.parametrize("name", FLAT)
def test_probes_match_plain_keras(name):
    model = models.BUILDERS[name]()
    data = random_input(model)
    names = [a for a in cut_points(model) if a not in {"x", "img", "meta"}]
    probe = cut(model, end=names)
    _same(probe(data), reference_activations(model, names, data))


# ------------------------------------------------------------------------ structure of cuts


def test_residual_extra_inputs_auto_adds_the_skip_tensor():
    model = models.residual()
    plan = plan_cut(model, start="block2_conv1", end="block2_out", extra_inputs="auto")
    assert plan.inputs == ["block2_conv1", "block1_out"]
    assert plan.extra_inputs == ["block1_out"]
    assert plan.input_names == ["block2_conv1", "block1_out"]
    part = cut(model, start="block2_conv1", end="block2_out", extra_inputs="auto")
    assert [t.name for t in part.inputs] == ["block2_conv1", "block1_out"]
    data = random_input(model)
    conv1, skip, out = reference_activations(model, ["block2_conv1", "block1_out", "block2_out"], data)
    _same(part([conv1, skip]), out)


def test_several_starts_on_a_multi_input_model():
    model = models.multi_input()
    data = random_input(model)
    part = cut(model, start=["img_dense2", "meta_dense"])
    assert [t.name for t in part.inputs] == ["img_dense2", "meta_dense"]
    i, m, head = reference_activations(model, ["img_dense2", "meta_dense", "head"], data)
    _same(part([i, m]), head)


def test_end_on_one_branch_keeps_only_the_inputs_it_needs():
    model = models.multi_input()
    part = cut(model, end="img_dense2")
    assert [t.name for t in part.inputs] == ["img"]
    plan = plan_cut(model, start="img_dense", extra_inputs="auto")
    assert plan.inputs == ["img_dense", "meta_dense"]


def test_dict_outputs_are_kept_and_dict_ends_name_outputs():
    model = models.multi_output()
    data = random_input(model)
    part = cut(model, start="trunk")
    assert plan_cut(model, start="trunk").outputs == {"box": "box_head", "cls": "cls_head"}
    (trunk,) = reference_activations(model, ["trunk"], data)
    got = part(trunk)
    assert set(got) == {"box", "cls"}
    _same(got, model(data))
    pyramid = cut(model, end={"P1": "trunk", "P2": "cls_head"})
    out = pyramid(data)
    assert set(out) == {"P1", "P2"}
    _same([out["P1"], out["P2"]], reference_activations(model, ["trunk", "cls_head"], data))


def test_list_ends_give_list_outputs_and_str_end_a_tensor():
    model = models.chain()
    data = random_input(model)
    assert isinstance(cut(model, end=["a", "c"])(data), list)
    assert not isinstance(cut(model, end="c")(data), (list, dict))


def test_probe_may_name_an_original_input():
    model = models.chain()
    data = random_input(model)
    probe = cut(model, end=["x", "b"])
    x, b = _np(probe(data))
    np.testing.assert_array_equal(x, data)
    _same(b, reference_activations(model, ["b"], data))


def test_shared_layer_cut_keeps_sharing_and_renames_a_clashing_input():
    model = models.shared_layer()
    data = random_input(model)
    plan = plan_cut(model, start="shared@0")
    assert plan.input_names == ["shared_input"]
    part = cut(model, start="relu")
    assert [layer.name for layer in part.layers] == ["relu", "shared", "head"]
    probe = cut(model, end=["relu", "head"])
    relu, head = _np(probe(data))
    _same(part(relu), head)
    # The kept call and the dropped call share one kernel.
    kernel = model.get_layer("shared").kernel
    assert part.get_layer("shared").kernel is kernel


def test_split_outputs_and_nested_paths():
    model = models.split_op()
    plan = plan_cut(model, start="split:0", extra_inputs="auto")
    assert (plan.inputs, plan.input_names) == (["split:0", "right"], ["split", "right"])
    part = cut(model, start=["split:0", "split:1"])
    assert [t.name for t in part.inputs] == ["split", "split_1"]
    nested = models.functional_in_functional()
    data = random_input(nested)
    part = cut(nested, start="inner/dense_1")
    assert [layer.name for layer in part.layers] == ["dense_1", "dense_2", "post"]
    probe = cut(nested, end=["inner/dense_1", "post"])
    d1, post = _np(probe(data))
    _same(part(d1), post)
    inner = nested.get_layer("inner")
    pre = nested.get_layer("pre")(data)
    d1_ref = keras.Model(inner.inputs, inner.get_layer("dense_1").output)(pre)
    _same(d1, d1_ref)


def test_nested_training_flag_survives_cut_and_reload(tmp_path):
    keras.utils.set_random_seed(0)
    xi = keras.Input((4,), name="xi")
    h = keras.layers.Dense(4, name="d")(xi)
    h = keras.layers.BatchNormalization(name="bn")(h)
    base = keras.Model(xi, h, name="base")
    x = keras.Input((4,), name="x")
    model = keras.Model(x, keras.layers.Dense(2, name="head")(base(x, training=False)))
    bn = base.get_layer("bn")
    bn.moving_mean.assign(np.full((4,), 0.3, "float32"))
    data = np.random.default_rng(1).standard_normal((8, 4)).astype("float32")
    part = cut(model)
    for training in (None, False, True):
        _same(part(data, training=training), model(data, training=training))
    part.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    _same(again(data), model(data))


def test_drop_first_starts_after_the_nth_layer():
    model = models.chain()
    plan = plan_cut(model, drop_first=2)
    assert plan.inputs == ["b"]
    assert plan.spec == CutSpec(drop_first=2)
    assert [layer.name for layer in cut(model, drop_first=1).layers] == ["a", "b", "c"]


def test_plan_counts_layers_and_params():
    model = models.chain()
    plan = plan_cut(model, start="a")
    assert isinstance(plan, CutPlan)
    assert (plan.kept_layers, plan.dropped_layers) == (2, 1)
    assert plan.kept_params == 72 + 36
    assert plan.kept_params + plan.dropped_params == model.count_params()
    assert plan.kept == ["b", "c"]
    assert plan.to_dict()["spec"]["start"] == "a"
    part = cut(model, start="a")
    assert part.cut_plan == plan
    assert part.cut_plan.source == "chain"
    assert part.count_params() == plan.kept_params


# ------------------------------------------------------------------- the source stays as is


def test_a_hundred_cuts_leave_the_source_as_it_was():
    model = models.residual()
    config = model.get_config()
    nodes = {layer.name: (len(layer._inbound_nodes), len(layer._outbound_nodes)) for layer in model.layers}
    points = cut_points(model)
    for i in range(100):
        start = points[1 + i % (len(points) - 1)]
        cut(model, start=start, copy=(i % 10 == 0))
    assert model.get_config() == config
    assert {layer.name: (len(layer._inbound_nodes), len(layer._outbound_nodes)) for layer in model.layers} == nodes
    data = random_input(model)
    _same(cut(model)(data), model(data))


def test_weights_are_shared_by_default_and_copied_on_request():
    model = models.chain()
    data = random_input(model)
    (a,) = reference_activations(model, ["a"], data)
    shared = cut(model, start="a")
    copied = cut(model, start="a", copy=True)
    _same(shared(a), copied(a))
    assert shared.get_layer("b").kernel is model.get_layer("b").kernel
    assert copied.get_layer("b").kernel is not model.get_layer("b").kernel
    kernel = model.get_layer("b").kernel
    kernel.assign(kernel * 2.0)
    (c,) = reference_activations(model, ["c"], data)
    _same(shared(a), c)
    assert np.max(np.abs(np.asarray(copied(a)) - c)) > 0


@pytest.mark.parametrize("name", ALL)
def test_save_and_reload_round_trip(name, tmp_path):
    model = models.BUILDERS[name]()
    points = cut_points(model)
    start = points[len(points) // 2] if points else None
    plan = plan_cut(model, start=start, extra_inputs="auto")
    probe = cut(model, end=plan.inputs + list(plan.outputs.values()))
    values = _np(probe(random_input(model)))
    n = len(plan.inputs)
    feed = values[0] if n == 1 else values[:n]
    part = cut(model, start=start, extra_inputs="auto")
    path = tmp_path / "cut.keras"
    part.save(path)
    again = keras.saving.load_model(path)
    _same(again(feed), values[n:])
    assert [t.name for t in again.inputs] == plan.input_names


def test_renamed_clash_between_nested_models_saves(tmp_path):
    keras.utils.set_random_seed(0)
    one, two = models._inner_block("one"), models._inner_block("two")
    x = keras.Input((8,), name="x")
    model = keras.Model(x, two(one(x)), name="twice")
    data = random_input(model)
    part = cut(model, start="one/dense_1")
    names = [layer.name for layer in part.layers]
    assert len(set(names)) == len(names)
    # one/dense_2 and two/dense_2 clash: the later is named after its address; the new input
    # cannot be "dense_1" (two/dense_1 is kept), so it is "dense_1_input".
    assert names == ["dense_1_input", "dense_2", "dense_1", "two_dense_2"]
    part.save(tmp_path / "m.keras")
    probe = cut(model, end=["one/dense_1", "two/dense_2"])
    d1, out = _np(probe(data))
    _same(keras.saving.load_model(tmp_path / "m.keras")(d1), out)


# ---------------------------------------------------------------------------------- errors


def _error(model, **kwargs) -> str:
    with pytest.raises(CutError) as info:
        cut(model, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_crossing_skip_names_layers_and_nearest_points():
    message = _error(models.residual(), start="block2_conv1")
    assert "'block1_out' -> 'block2_add'" in message
    assert "'block1_out' (before)" in message
    assert "'block2_add' (after)" in message
    assert "extra_inputs='auto'" in message
    assert "cut_points" in message and "kerascut inspect" in message


def test_raw_op_residual_crossing_names_the_raw_add():
    message = _error(models.raw_ops(), start="b")
    assert "'a' -> 'add'" in message
    assert "'a' (before)" in message and "'add' (after)" in message


def test_unknown_names_suggest_up_to_three():
    message = _error(models.residual(), start="block1_ad")
    assert "Did you mean 'block1_add'" in message
    assert message.count("', '") <= 2
    message = _error(models.residual(), end="headd")
    assert "`end`" in message and "'head'" in message


def test_start_after_end_and_empty_results():
    model = models.chain()
    assert "come after the start" in _error(model, start="b", end="a")
    assert "at least one layer" in _error(model, start="b", end="b")
    assert "on a path to the end" in _error(model, start=["a", "b"], end="c")


def test_start_and_drop_first_are_exclusive():
    assert "not both" in _error(models.chain(), start="a", drop_first=1)


def test_drop_first_out_of_range():
    assert "less than the number of layers" in _error(models.chain(), drop_first=3)


def test_same_start_twice():
    assert "different tensor" in _error(models.chain(), start=["a", "a"])


def test_bad_extra_inputs_value():
    assert "extra_inputs" in _error(models.chain(), start="a", extra_inputs="yes")


def test_cut_error_is_a_value_error():
    with pytest.raises(ValueError):
        cut(models.chain(), start="nope")


def test_output_structure_of_the_source_is_kept():
    keras.utils.set_random_seed(0)
    x = keras.Input((4,), name="x")
    model = keras.Model(x, [keras.layers.Dense(2, name="d")(x)])
    part = cut(model)
    assert isinstance(part._outputs_struct, list)
    assert type(part(np.ones((1, 4), "float32"))) is type(model(np.ones((1, 4), "float32")))


def test_bad_model_name():
    assert "without '/'" in _error(models.chain(), name="a/b")


def test_nested_model_called_twice():
    keras.utils.set_random_seed(0)
    enc = models._inner_block("enc")
    a, b = keras.Input((8,), name="a"), keras.Input((8,), name="b")
    merged = keras.layers.Subtract(name="diff")([enc(a), enc(b)])
    model = keras.Model([a, b], merged, name="siamese")
    view = graph_view(model)
    assert "enc@0/dense_1" in view.addresses and "enc@1/dense_2" in view.addresses
    data = random_input(model)
    part = cut(model, start=["enc@0/dense_1", "enc@1/dense_1"])
    assert [t.name for t in part.inputs] == ["dense_1", "dense_1_input"]
    # One layer object for both calls, sharing the source's kernel.
    assert [layer.name for layer in part.layers].count("dense_2") == 1
    assert part.get_layer("dense_2").kernel is enc.get_layer("dense_2").kernel
    probe = cut(model, end=["enc@0/dense_1", "enc@1/dense_1", "diff"])
    x0, x1, out = _np(probe(data))
    _same(part([x0, x1]), out)
    _same(out, model(data))


def test_sequential_source_and_drop_first():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(6, name="l1"), keras.layers.Dense(6, name="l2"),
         keras.layers.Dense(2, name="l3")],
        name="seq",
    )
    assert cut_points(model)[1:] == ["l1", "l2"]
    data = random_input(model)
    part = cut(model, drop_first=2)
    assert [t.name for t in part.inputs] == ["l2"]
    probe = cut(model, end=["l2", "l3"])
    l2, l3 = _np(probe(data))
    _same(part(l2), l3)
    _same(l3, model(data))
