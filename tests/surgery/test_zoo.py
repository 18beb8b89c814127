"""The keras.applications zoo: every architecture, weights=None, a fixed seed, small inputs.

CI runs a representative slice (``-m "zoo and not slow"``): MobileNetV2, ResNet50,
ConvNeXtTiny, EfficientNetB0 and DenseNet121. The full zoo is one command:

    .venv/bin/python -m pytest tests/surgery/test_zoo.py -m zoo

Each model is built once per module (a module-scoped fixture) and the session is cleared
between models. Every numeric check is exact (max abs diff 0 on CPU): a cut computes the same
operations on the same values as the source.
"""

from __future__ import annotations

import gc
import random

import keras
import numpy as np
import pytest

from kerascut_core import CutError
from kerascut_core.sources import application_names
from kerascut_core.surgery import cut, cut_points, graph_view, plan_cut

pytestmark = pytest.mark.zoo

FAST = ("MobileNetV2", "ResNet50", "ConvNeXtTiny", "EfficientNetB0", "DenseNet121")
ALL = tuple(application_names())
# Smallest convenient inputs; Inception-style stems need at least 75 (Xception 71).
SHAPES = {"InceptionV3": 75, "InceptionResNetV2": 75, "Xception": 75}
PAIRS = 4  # random (start, end) pairs per model


def _params() -> list:
    return [
        pytest.param(name, id=name, marks=() if name in FAST else (pytest.mark.slow,))
        for name in ALL
    ]


def test_the_zoo_is_complete():
    assert len(ALL) == 40
    assert set(FAST) <= set(ALL)


@pytest.fixture(scope="module", params=_params())
def zoo(request):
    name = request.param
    keras.backend.clear_session()
    gc.collect()
    keras.utils.set_random_seed(20260101)
    size = SHAPES.get(name, 64)
    model = getattr(keras.applications, name)(
        weights=None, input_shape=(size, size, 3), classes=10
    )
    data = np.random.default_rng(0).standard_normal((2, size, size, 3)).astype("float32")
    nodes = [len(layer._inbound_nodes) for layer in model.layers]
    yield model, data
    # Whatever the tests did, the source's graph is as it was.
    assert [len(layer._inbound_nodes) for layer in model.layers] == nodes
    del model
    keras.backend.clear_session()
    gc.collect()


def _np(values) -> list[np.ndarray]:
    return [np.asarray(v) for v in keras.tree.flatten(values)]


def _assert_exact(got, expected) -> None:
    got, expected = _np(got), _np(expected)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape
        assert float(np.max(np.abs(g - e))) == 0.0


def _plain_keras_probe(model, addresses, data) -> list[np.ndarray]:
    """Activations computed by plain Keras from the source's own tensors (top level only)."""
    view = graph_view(model)
    tensors = [view.tensors[view.resolve(a)].keras_tensor for a in addresses]
    return _np(keras.Model(model.inputs[0], tensors)(data))


def _reachable_without(view, banned: int, ends: list[int]) -> bool:
    """Can an end be reached from an input when tensor ``banned`` is removed? (BFS)"""
    stack = [t for t in view.inputs if t != banned]
    seen = set(stack)
    while stack:
        t = stack.pop()
        for op in view.consumers[t]:
            for out in view.ops[op].outputs:
                if out != banned and out not in seen:
                    seen.add(out)
                    stack.append(out)
    return any(e in seen for e in ends)


def test_cut_points_agree_with_brute_force(zoo):
    model, _ = zoo
    view = graph_view(model)
    points = cut_points(model)
    assert points, "every single-input application has cut points"
    ends = view.outputs
    candidates = sorted(view.ancestors(ends) - set(ends))
    expected = [view.tensors[t].address for t in candidates if not _reachable_without(view, t, ends)]
    assert points == expected
    # plan_cut agrees: cut points plan, others raise CutError naming a valid point.
    rng = random.Random(7)
    others = [view.tensors[t].address for t in candidates if view.tensors[t].address not in points]
    for start in rng.sample(points, min(5, len(points))):
        plan_cut(model, start=start)
    for start in rng.sample(others, min(5, len(others))):
        with pytest.raises(CutError) as info:
            plan_cut(model, start=start)
        assert any(f"'{p}'" in str(info.value) for p in points)


def test_random_cuts_are_exact(zoo):
    model, data = zoo
    view = graph_view(model)
    rng = random.Random(model.name)
    every = [t.address for t in view.tensors if not view.ops[t.op].is_input]
    for _ in range(PAIRS):
        end = rng.choice(every[len(every) // 4:])
        starts = [p for p in cut_points(model, end=end) if p not in {view.tensors[i].address for i in view.inputs}]
        if not starts:
            continue
        start = rng.choice(starts)
        probe = cut(model, end=[start, end])
        start_value, end_value = _np(probe(data))
        _assert_exact(cut(model, start=start, end=end)(start_value), end_value)
        if "/" not in start + end:  # plain Keras cannot reach inside nested models
            _assert_exact([start_value, end_value], _plain_keras_probe(model, [start, end], data))


def test_crossing_cuts_with_extra_inputs_are_exact(zoo):
    model, data = zoo
    view = graph_view(model)
    points = set(cut_points(model))
    rng = random.Random(f"{model.name}-auto")
    inside = [
        t.address for t in view.tensors[len(view.tensors) // 5: -len(view.tensors) // 5]
        if t.address not in points
    ]
    if not inside:
        pytest.skip("every tensor is a cut point")
    start = rng.choice(inside)
    with pytest.raises(CutError, match="extra_inputs='auto'"):
        cut(model, start=start)
    plan = plan_cut(model, start=start, extra_inputs="auto")
    assert len(plan.inputs) >= 2
    values = _np(cut(model, end=plan.inputs + list(plan.outputs.values()))(data))
    n = len(plan.inputs)
    part = cut(model, start=start, extra_inputs="auto")
    assert [t.name for t in part.inputs] == plan.input_names
    _assert_exact(part(values[:n]), values[n:])


def test_pyramid_and_round_trip(zoo, tmp_path):
    model, data = zoo
    points = cut_points(model)
    if len(points) < 4:
        pytest.skip("too few cut points for a pyramid")
    start, *levels = points[len(points) // 4], points[len(points) // 2], points[-1]
    ends = {f"P{i}": a for i, a in enumerate(levels, start=3)}
    probe_values = _np(cut(model, end=[start, *levels])(data))
    part = cut(model, start=start, end=ends)
    got = part(probe_values[0])
    assert set(got) == set(ends)
    _assert_exact([got[k] for k in ends], probe_values[1:])
    if model.name.split("_")[0] in {n.lower() for n in FAST} or len(graph_view(model).ops) < 300:
        path = tmp_path / "cut.keras"
        part.save(path)
        again = keras.saving.load_model(path)
        _assert_exact([again(probe_values[0])[k] for k in ends], probe_values[1:])
