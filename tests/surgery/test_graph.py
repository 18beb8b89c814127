"""The graph view: addresses, order, nesting, raw ops, shared layers, refusals."""

from __future__ import annotations

import keras
import pytest

from kerascut_core import CutError
from kerascut_core.surgery import graph_view
from tests.fixtures import models

pytestmark = pytest.mark.jax  # also in CI's JAX slice (KERAS_BACKEND=jax)


def test_chain_addresses_follow_model_layers():
    model = models.chain()
    view = graph_view(model)
    assert view.addresses == ["x", "a", "b", "c"]
    assert [op.type for op in view.ops] == ["InputLayer", "Dense", "Dense", "Dense"]
    assert view.inputs == [0]
    assert view.outputs == [3]
    assert view.output_names == ["c"]
    assert view.consumers[1] == [2]


def test_order_is_topological_everywhere():
    for build in models.BUILDERS.values():
        view = graph_view(build())
        for op in view.ops:
            assert all(view.tensors[t].op < op.index for t in op.inputs), op.address
            assert all(view.tensors[t].op == op.index for t in op.outputs)


def test_shared_layer_calls_are_numbered_in_call_order():
    view = graph_view(models.shared_layer())
    assert view.addresses == ["x", "shared@0", "relu", "shared@1", "head"]
    first, second = view.ops[1], view.ops[3]
    assert first.operation is second.operation
    with pytest.raises(CutError, match=r"'shared@0', 'shared@1'"):
        view.resolve("shared", role="start")


def test_nested_functional_is_inlined_with_paths():
    view = graph_view(models.functional_in_functional())
    assert view.addresses == ["x", "pre", "inner/dense_1", "inner/dense_2", "post"]
    # The nested model's name and its input layer are aliases of real tensors.
    assert view.resolve("inner") == view.resolve("inner/dense_2")
    assert view.resolve("inner/inner_in") == view.resolve("pre")


def test_nested_sequential_is_inlined_with_paths():
    view = graph_view(models.sequential_in_functional())
    assert view.addresses == ["x", "pre", "seq/s1", "seq/drop", "seq/s2", "post"]


def test_nested_training_flag_is_carried_to_inner_layers():
    keras.utils.set_random_seed(0)
    base = models._inner_block("base")
    x = keras.Input((8,), name="x")
    y = base(x, training=False)
    view = graph_view(keras.Model(x, y))
    inner = [op for op in view.ops if op.address.startswith("base/")]
    assert inner and all(op.context == {"training": False} for op in inner)


def test_sequential_wrapping_an_application():
    keras.utils.set_random_seed(0)
    net = keras.applications.MobileNetV2(
        weights=None, include_top=False, input_shape=(32, 32, 3)
    )
    model = keras.Sequential(
        [keras.Input((32, 32, 3)), net, keras.layers.GlobalAveragePooling2D(name="gap"),
         keras.layers.Dense(2, name="cls")]
    )
    view = graph_view(model)
    assert f"{net.name}/block_6_expand_relu" in view.addresses
    assert view.addresses[-2:] == ["gap", "cls"]
    assert view.resolve(net.name) == view.resolve(f"{net.name}/out_relu")
    # A bare inner name is not an address, but the error points at the full path.
    with pytest.raises(CutError, match=rf"Did you mean '{net.name}/block_6_expand_relu'"):
        view.resolve("block_6_expand_relu", role="start")


def test_raw_ops_are_operations():
    view = graph_view(models.raw_ops())
    types = {op.address: op.type for op in view.ops}
    assert types["add"] == "Add"
    assert types["multiply"] == "Multiply"
    assert types["mean"] == "Mean"


def test_multi_output_op_addresses():
    view = graph_view(models.split_op())
    assert "split:0" in view.addresses and "split:1" in view.addresses
    with pytest.raises(CutError, match=r"'split:0', 'split:1'"):
        view.resolve("split", role="end")


def test_multi_input_and_dict_outputs():
    view = graph_view(models.multi_input())
    assert [view.tensors[t].address for t in view.inputs] == ["img", "meta"]
    view = graph_view(models.multi_output())
    assert view.output_names == ["box", "cls"]
    assert [view.tensors[t].address for t in view.outputs] == ["box_head", "cls_head"]


def test_unknown_name_suggests_close_names():
    view = graph_view(models.residual())
    with pytest.raises(CutError) as info:
        view.resolve("block2_ad", role="start")
    message = str(info.value)
    assert "block2_add" in message
    assert "cut_points" in message and "kerascut inspect" in message
    assert "\n" not in message


def test_subclassed_model_is_refused_with_advice():
    class Net(keras.Model):
        def __init__(self):
            super().__init__(name="net")
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    net = Net()
    net(keras.ops.ones((1, 3)))
    with pytest.raises(CutError, match=r"subclassed model.*functional API"):
        graph_view(net)


def test_unbuilt_sequential_is_refused():
    with pytest.raises(CutError, match=r"keras\.Input"):
        graph_view(keras.Sequential([keras.layers.Dense(2)]))


def test_view_is_cached_and_leaves_model_alone():
    model = models.residual()
    before = [len(layer._inbound_nodes) for layer in model.layers]
    assert graph_view(model) is graph_view(model)
    assert [len(layer._inbound_nodes) for layer in model.layers] == before


def test_a_viewed_and_cut_model_can_be_freed():
    """Views are cached on the model, not in a global table that would keep every source alive."""
    import gc
    import weakref

    import keras

    from kerascut_core.surgery import cut, cut_points
    from tests.fixtures.models import residual

    model = residual()
    cut_points(model)
    cut(model, start=cut_points(model)[2])
    model_ref = weakref.ref(model)
    variable_ref = weakref.ref(model.layers[1].weights[0])
    del model
    keras.backend.clear_session()
    gc.collect()
    assert model_ref() is None and variable_ref() is None
