"""The plain-Keras failures issue #2 starts from, and what kerascut does instead.

Each test first shows plain Keras 3 failing the way a new user meets it, then cuts the same
place with kerascut and checks the numbers exactly.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kerascut_core import CutError
from kerascut_core.surgery import cut, cut_points, graph_view, plan_cut

pytestmark = pytest.mark.zoo


def _build(name: str, size: int = 32, **kwargs):
    keras.backend.clear_session()
    keras.utils.set_random_seed(5)
    return getattr(keras.applications, name)(
        weights=None, input_shape=(size, size, 3), include_top=False, **kwargs
    )


def _data(size: int = 32):
    return np.random.default_rng(3).standard_normal((2, size, size, 3)).astype("float32")


def _exact(a, b):
    a = [np.asarray(v) for v in keras.tree.flatten(a)]
    b = [np.asarray(v) for v in keras.tree.flatten(b)]
    assert len(a) == len(b)
    assert all(float(np.max(np.abs(x - y))) == 0.0 for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(
    "name, start, before, after",
    [
        ("MobileNetV2", "block_2_expand_relu", "block_1_project_BN", "block_2_add"),
        ("ResNet50", "conv2_block2_1_relu", "conv2_block1_out", "conv2_block2_add"),
    ],
)
def test_residual_crossing_the_cut(name, start, before, after):
    model = _build(name)
    # Plain Keras: a bare "not connected" error, no hint of the skip or of a working point.
    with pytest.raises(ValueError, match="not connected to `inputs`"):
        keras.Model(model.get_layer(start).output, model.output)
    # kerascut: the crossing skip and the nearest valid points, by name.
    with pytest.raises(CutError) as info:
        cut(model, start=start)
    message = str(info.value)
    assert f"'{before}' (before)" in message and f"'{after}' (after)" in message
    assert before in cut_points(model) and after in cut_points(model)
    # ... and with extra_inputs="auto" the crossing tensor becomes a named input.
    plan = plan_cut(model, start=start, extra_inputs="auto")
    assert plan.inputs[0] == start and len(plan.inputs) == 2
    values = cut(model, end=plan.inputs + list(plan.outputs.values()))(_data())
    part = cut(model, start=start, extra_inputs="auto")
    assert [t.name for t in part.inputs] == plan.input_names
    _exact(part([values[0], values[1]]), values[2])
    _exact(values[2], model(_data()))


def test_cut_inside_a_nested_application():
    net = _build("MobileNetV2")
    model = keras.Sequential([
        keras.Input((32, 32, 3)), net,
        keras.layers.GlobalAveragePooling2D(name="gap"), keras.layers.Dense(3, name="cls"),
    ])
    inner = net.get_layer("block_6_expand_relu")
    # Plain Keras: the inner layer's output belongs to the nested model's own graph.
    with pytest.raises(AttributeError, match="has never been called"):
        keras.Model(inner.output, model.output)
    start = f"{net.name}/block_6_expand_relu"
    assert start in cut_points(model)
    part = cut(model, start=start)
    assert part.inputs[0].name == "block_6_expand_relu"
    probe = cut(model, end=[start, "cls"])
    mid, out = probe(_data())
    _exact(part(mid), out)
    _exact(out, model(_data()))
    # The mid activation equals the nested model's own, computed by plain Keras.
    _exact(mid, keras.Model(net.input, inner.output)(_data()))


def test_cut_at_a_raw_op():
    model = _build("ConvNeXtTiny")
    view = graph_view(model)
    adds = [op.address for op in view.ops if op.type == "Add"]
    assert adds, "ConvNeXt's residuals are raw keras.ops.add nodes"
    start = next(a for a in adds if a in cut_points(model))
    # Plain Keras: a raw op is not a layer.
    with pytest.raises(ValueError, match="No such layer"):
        model.get_layer(start)
    part = cut(model, start=start)
    assert part.inputs[0].name == start
    probe = cut(model, end=[start, *[view.tensors[t].address for t in view.outputs]])
    mid, out = probe(_data())
    _exact(part(mid), out)
    _exact(out, model(_data()))
