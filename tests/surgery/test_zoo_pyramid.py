"""``end="auto-pyramid"`` on every keras.applications architecture (the zoo suite).

CI runs a slice (``-m "zoo and not slow"``): ResNet50 (the known taps), EfficientNetB0,
MobileNetV2 and InceptionV3 (nominal strides: ``valid`` padding). The whole zoo is
``.venv/bin/python -m pytest tests/surgery/test_zoo_pyramid.py -m zoo``. Each model is built once
(without its classifier, free input size, as a backbone source is) and the session is cleared
between models. For each: the pyramid resolves (NASNet: only P5, see ``NO_MIDDLE``), each tap is a valid cut point, no later valid
cut point has the tap's stride, the levels' strides double, and the cut is exact against the
source, and again after save and reload (in the slice: MobileNetV2; in the whole zoo: every
model under 300 operations).
"""

from __future__ import annotations

import gc

import keras
import numpy as np
import pytest

from kerascut_core.errors import CutError
from kerascut_core.sources import application_names
from kerascut_core.surgery import cut, cut_points, graph_view, pyramid_taps, stages
from kerascut_core.surgery.strides import reductions

pytestmark = pytest.mark.zoo

FAST = ("ResNet50", "EfficientNetB0", "MobileNetV2", "InceptionV3")
ALL = tuple(application_names())
#: architectures that need a fixed input size without their classifier
FIXED = {"NASNetMobile": 224, "NASNetLarge": 331}
#: probe data size: Inception-style stems need at least 75 pixels
DATA = {"InceptionV3": 96, "InceptionResNetV2": 96, "Xception": 96, "NASNetMobile": 224, "NASNetLarge": 331}
#: NASNet's cells each read the two previous cells' outputs: between its stem and its last cell no
#: single tensor is a valid cut point, so only P5 (its output) has one, and the default levels
#: are refused with the stages named
NO_MIDDLE = {"NASNetMobile", "NASNetLarge"}
RESNET50 = {"P2": "conv2_block3_out", "P3": "conv3_block4_out", "P4": "conv4_block6_out", "P5": "conv5_block3_out"}


@pytest.fixture(scope="module", params=[
    pytest.param(name, id=name, marks=() if name in FAST else (pytest.mark.slow,)) for name in ALL
])
def zoo(request):
    name = request.param
    keras.backend.clear_session()
    gc.collect()
    keras.utils.set_random_seed(20260101)
    size = FIXED.get(name)
    model = getattr(keras.applications, name)(
        weights=None, include_top=False, input_shape=(size, size, 3) if size else None
    )
    yield name, model
    del model
    keras.backend.clear_session()
    gc.collect()


def _levels(name: str) -> list[int] | None:
    return [5] if name in NO_MIDDLE else None


def test_the_pyramid_follows_the_rule(zoo):
    name, model = zoo
    if name in NO_MIDDLE:
        with pytest.raises(CutError, match="level 2 its stage at stride 4 has no valid cut point"):
            pyramid_taps(model)
    taps = pyramid_taps(model, _levels(name))
    view = graph_view(model)
    found = reductions(view)
    points = [*cut_points(model), view.tensors[view.outputs[0]].address]
    levels = [t.level for t in taps.values()]
    assert levels == list(range(levels[0], levels[-1] + 1)) and levels[-1] >= 4, taps
    assert levels[0] == (5 if name in NO_MIDDLE else 2)
    assert [t.stride for t in taps.values()] == [2**k for k in levels]
    for tap in taps.values():
        assert tap.address in points
        later = points[points.index(tap.address) + 1:]
        same = [p for p in later if (r := found[view.resolve(p)]) is not None and r.level == tap.level
                and (r.exact or not tap.exact)]
        assert same == [], (tap, same)
    if name == "ResNet50":
        assert {k: t.address for k, t in taps.items()} == RESNET50
        assert all(t.exact for t in taps.values())
    if name == "InceptionV3":
        assert not any(t.exact for t in taps.values())  # valid padding: nominal strides
        assert [s.level for s in stages(model)][-1] == 5


def test_the_pyramid_cut_is_exact_after_save_and_reload(zoo, tmp_path):
    name, model = zoo
    size = DATA.get(name, 64)
    data = np.random.default_rng(0).standard_normal((1, size, size, 3)).astype("float32")
    part = cut(model, end="auto-pyramid", levels=_levels(name))
    ends = part.cut_plan.outputs
    probe = keras.tree.flatten(cut(model, end=list(ends.values()))(data))  # one end: one tensor
    expected = dict(zip(ends, (np.asarray(p) for p in probe), strict=True))
    got = part(data)
    for key in ends:
        assert np.array_equal(np.asarray(got[key]), expected[key]), key
    if name == "MobileNetV2" or (name not in FAST and len(graph_view(model).ops) < 300):
        path = tmp_path / "p.keras"
        part.save(path)
        again = keras.saving.load_model(path)(data)
        for key in ends:
            assert np.array_equal(np.asarray(again[key]), expected[key]), key
