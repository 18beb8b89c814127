"""keras-hub backbones: their hand-written ``pyramid_outputs`` against the auto-pyramid.

Tiny ResNet, CSPNet, DenseNet and EfficientNet backbones (small configs, random weights, built
once) give the agreement table ``kerascut inspect --stages`` shows. ResNet and CSPNet agree on
every level. DenseNet's hand-written taps are each stage's last concatenation; the rule takes
the transition's 1x1 convolution after it (still at that stride, and later). EfficientNet's
hand-written taps are block outputs; the rule takes the next stage's expansion activation
(the latest tensor before the strided depthwise convolution) and agrees on P5.
``end: pyramid_outputs`` keeps meaning the backbone's own taps. Marked ``extras``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kerascut_core.surgery import cut, plan_cut
from kerascut_core.surgery.feature_pyramid import compare_pyramid_outputs
from tests.support.cli import kerascut
from tests.support.extras import needs

pytestmark = pytest.mark.extras


def _backbones(keras_hub: Any) -> dict[str, Any]:
    m = keras_hub.models
    return {
        "resnet": lambda: m.ResNetBackbone(
            input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 8, 8, 8],
            stackwise_num_blocks=[1, 1, 1, 1], stackwise_num_strides=[1, 2, 2, 2],
            block_type="basic_block", image_shape=(32, 32, 3)),
        "cspnet": lambda: m.CSPNetBackbone(
            stem_filters=8, stem_kernel_size=3, stem_strides=2, stackwise_depth=[1, 1, 1, 1],
            stackwise_strides=2, stackwise_num_filters=[8, 8, 8, 8], block_type="dark_block",
            stage_type="dark", image_shape=(32, 32, 3)),
        "densenet": lambda: m.DenseNetBackbone(
            stackwise_num_repeats=[1, 1, 1, 1], growth_rate=4, image_shape=(32, 32, 3)),
        "efficientnet": lambda: m.EfficientNetBackbone(
            width_coefficient=0.1, depth_coefficient=0.1, stackwise_kernel_sizes=[3, 3, 5, 3, 5, 5, 3],
            stackwise_num_repeats=[1] * 7, stackwise_input_filters=[32, 16, 24, 40, 80, 112, 192],
            stackwise_output_filters=[16, 24, 40, 80, 112, 192, 320],
            stackwise_expansion_ratios=[1, 6, 6, 6, 6, 6, 6], stackwise_squeeze_and_excite_ratios=[0.25] * 7,
            stackwise_strides=[1, 2, 2, 2, 1, 2, 1], stackwise_block_types=["v1"] * 7, image_shape=(32, 32, 3)),
    }


#: key -> (hand-written, auto-pyramid), per backbone
EXPECTED = {
    "resnet": {f"P{k}": (f"stack{k - 2}_block0_out",) * 2 for k in range(2, 6)},
    "cspnet": {f"P{k}": (f"stage_{k - 2}_block_0_dark_block_add",) * 2 for k in range(2, 6)},
    "densenet": {
        "P2": ("stack1_block1_concat", "transition1_conv"),
        "P3": ("stack2_block1_concat", "transition2_conv"),
        "P4": ("stack3_block1_concat", "transition3_conv"),
        "P5": ("stack4_block1_concat", "relu"),
    },
    "efficientnet": {
        "P1": ("block1a_add", "block2a_expand_activation"),
        "P2": ("block2a_project_bn", "block3a_expand_activation"),
        "P3": ("block3a_project_bn", "block4a_expand_activation"),
        "P4": ("block5a_add", "block6a_expand_activation"),
        "P5": ("top_activation", "top_activation"),
    },
}


@pytest.fixture(scope="module")
def backbones() -> dict[str, Any]:
    keras_hub = needs("keras_hub")
    import keras

    built = {}
    for name, build in _backbones(keras_hub).items():
        keras.utils.set_random_seed(0)
        built[name] = build()
    return built


@pytest.mark.parametrize("name", list(EXPECTED))
def test_agreement_with_hand_written_pyramid_outputs(backbones: dict[str, Any], name: str) -> None:
    rows = compare_pyramid_outputs(backbones[name])
    assert {r["key"]: (r["hand_written"], r["auto"]) for r in rows} == EXPECTED[name]
    for r in rows:
        assert r["agree"] == (r["hand_written"] == r["auto"])
        assert r["hand_written_stride"] == 2 ** int(r["key"][1:])  # their keys name their strides


@pytest.mark.parametrize("name", list(EXPECTED))
def test_auto_pyramid_cuts_exactly_and_pyramid_outputs_keeps_its_meaning(backbones: dict[str, Any],
                                                                         name: str) -> None:
    model = backbones[name]
    own = plan_cut(model, end="pyramid_outputs").outputs
    assert own == {k: hand for k, (hand, _) in EXPECTED[name].items()}
    part = cut(model, end="auto-pyramid")
    x = np.random.default_rng(0).random((1, 32, 32, 3)).astype("float32")
    ends = part.cut_plan.outputs
    probe = cut(model, end=list(ends.values()))(x)
    got = part(x)
    for key, expected in zip(ends, probe, strict=True):
        assert np.array_equal(np.asarray(got[key]), np.asarray(expected)), key


def test_inspect_stages_shows_the_agreement_table(backbones: dict[str, Any], tmp_path: Path) -> None:
    preset = tmp_path / "densenet"
    backbones["densenet"].save_to_preset(str(preset))
    out = kerascut("inspect", preset, "--stages")
    assert out.returncode == 0, out.stderr
    assert "pyramid_outputs (hand-written) against auto-pyramid:" in out.stdout
    row = next(line.split() for line in out.stdout.splitlines() if line.startswith("P2 ") and "concat" in line)
    assert row == ["P2", "stack1_block1_concat", "4", "transition1_conv", "no"]
    assert "0 of 4 keys agree." in out.stdout
