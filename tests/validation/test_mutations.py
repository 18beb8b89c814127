"""Mutation tests: validation must fail on every corrupted candidate, for the right reason.

Each mutation takes a correct candidate (cut, saved and reloaded from its bytes, so it shares
nothing with the source) and corrupts one thing: a weight by one ulp, two kernel channels, a
BatchNorm statistic, the cut point, the pyramid order, the dtype, the SavedModel, the file
itself, a variable too many or too few, a NaN, the input shape, an activation. ``validate``
must fail on each (the kill rate must be 100%), and the failure must name the check that
caught it. ``test_kill_rate`` prints the rate for the closing note.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SPEC = {"start": "stem", "end": {"P2": "block2_out", "P3": "block3_out"}}


def _source() -> Any:
    """A small residual backbone: stem, three conv/BN/add blocks, a top conv and a head.

    Block convs follow real backbones: ``conv1`` has no bias (a BatchNorm follows), ``conv2``
    has one (all zeros, as initialised). BatchNorm statistics are set to non-trivial values.
    """
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(7)
    x = keras.Input((12, 12, 3), name="image")
    h = keras.layers.Conv2D(8, 3, padding="same", name="stem")(x)
    for i in (1, 2, 3):
        r = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name=f"block{i}_conv1")(h)
        r = keras.layers.BatchNormalization(name=f"block{i}_bn")(r)
        r = keras.layers.ReLU(name=f"block{i}_relu")(r)
        r = keras.layers.Conv2D(8, 3, padding="same", name=f"block{i}_conv2")(r)
        h = keras.layers.Add(name=f"block{i}_add")([h, r])
        h = keras.layers.ReLU(name=f"block{i}_out")(h)
    h = keras.layers.Conv2D(8, 1, name="top_conv")(h)
    h = keras.layers.GlobalAveragePooling2D(name="pool")(h)
    model = keras.Model(x, keras.layers.Dense(3, name="head")(h), name="tiny_backbone")
    rng = np.random.default_rng(0)
    for i in (1, 2, 3):
        bn = model.get_layer(f"block{i}_bn")
        bn.moving_mean.assign(rng.normal(0, 0.1, 8).astype("float32"))
        bn.moving_variance.assign(rng.uniform(0.5, 1.5, 8).astype("float32"))
    return model


@pytest.fixture(scope="module")
def source() -> Any:
    return _source()


# ---------------------------------------------------------------------------------------------
# building blocks for mutations


def _save_cut(source: Any, path: Path, **spec: Any) -> Path:
    from kerascut_core.surgery import cut

    cut(source, **(spec or SPEC)).save(path)
    return path


def _reloaded(path: Path) -> Any:
    import keras

    return keras.saving.load_model(path, compile=False)


def _edit_weights(source: Any, tmp: Path, layer: str, fn: Callable[[list[np.ndarray]], None]) -> Path:
    """Save a correct candidate, change the weights of one of its layers with ``fn``, save again."""
    model = _reloaded(_save_cut(source, tmp / "good.keras"))
    weights = [w.copy() for w in model.get_layer(layer).get_weights()]
    fn(weights)
    model.get_layer(layer).set_weights(weights)
    model.save(tmp / "model.keras")
    return tmp / "model.keras"


def _rebuild(source: Any, tmp: Path, edit: Callable[[dict[str, Any]], None], cast: str | None = None) -> Path:
    """Rebuild a correct candidate from an edited config and copy over every weight that fits.

    Variables the edit adds keep their initial values (zeros for a bias), so only the weight
    check can tell the difference.
    """
    import keras

    model = _reloaded(_save_cut(source, tmp / "good.keras"))
    config = copy.deepcopy(model.get_config())
    for layer in config["layers"]:
        edit(layer)
    rebuilt = keras.Model.from_config(config)
    for layer in rebuilt.layers:
        old = {w.name: w for w in model.get_layer(layer.name).weights}
        for var in layer.weights:
            if var.name in old and tuple(old[var.name].shape) == tuple(var.shape):
                value = np.asarray(old[var.name].numpy())
                var.assign(value.astype(cast) if cast else value)
    rebuilt.save(tmp / "model.keras")
    return tmp / "model.keras"


def _set(layer_name: str, **changes: Any) -> Callable[[dict[str, Any]], None]:
    def edit(layer: dict[str, Any]) -> None:
        if layer["config"].get("name") == layer_name:
            layer["config"].update(changes)

    return edit


# ---------------------------------------------------------------------------------------------
# the mutations


def tiny_weight_change(source: Any, tmp: Path) -> tuple[Path, dict]:
    def bump(w: list[np.ndarray]) -> None:
        w[0].flat[5] = np.nextafter(w[0].flat[5], np.float32(np.inf))  # one ulp

    return _edit_weights(source, tmp, "block2_conv2", bump), {}


def kernel_channels_swapped(source: Any, tmp: Path) -> tuple[Path, dict]:
    def swap(w: list[np.ndarray]) -> None:
        w[0][..., [0, 1]] = w[0][..., [1, 0]]

    return _edit_weights(source, tmp, "block1_conv1", swap), {}


def bn_moving_variance_changed(source: Any, tmp: Path) -> tuple[Path, dict]:
    def change(w: list[np.ndarray]) -> None:
        w[3][2] *= 1.01  # gamma, beta, moving_mean, moving_variance

    return _edit_weights(source, tmp, "block3_bn", change), {}


def nan_injected(source: Any, tmp: Path) -> tuple[Path, dict]:
    def inject(w: list[np.ndarray]) -> None:
        w[0].flat[0] = np.nan

    return _edit_weights(source, tmp, "block2_conv2", inject), {}


def end_one_layer_earlier(source: Any, tmp: Path) -> tuple[Path, dict]:
    return _save_cut(source, tmp / "model.keras", start="stem",
                     end={"P2": "block2_add", "P3": "block3_out"}), {}


def end_one_layer_later(source: Any, tmp: Path) -> tuple[Path, dict]:
    return _save_cut(source, tmp / "model.keras", start="stem",
                     end={"P2": "block2_out", "P3": "top_conv"}), {}


def start_one_layer_earlier(source: Any, tmp: Path) -> tuple[Path, dict]:
    return _save_cut(source, tmp / "model.keras", start="image", end=SPEC["end"]), {}


def extra_output(source: Any, tmp: Path) -> tuple[Path, dict]:
    return _save_cut(source, tmp / "model.keras", start="stem",
                     end=["block2_out", "block3_out", "block1_out"]), {}


def pyramid_order_swapped(source: Any, tmp: Path) -> tuple[Path, dict]:
    return _save_cut(source, tmp / "model.keras", start="stem",
                     end={"P2": "block3_out", "P3": "block2_out"}), {}


def dtype_float16(source: Any, tmp: Path) -> tuple[Path, dict]:
    def to_half(layer: dict[str, Any]) -> None:
        if "dtype" in layer["config"] and layer["class_name"] != "InputLayer":
            layer["config"]["dtype"] = "float16"

    return _rebuild(source, tmp, to_half, cast="float16"), {}


def saved_model_from_other_model(source: Any, tmp: Path) -> tuple[Path, dict]:
    """The right .keras, and beside it a SavedModel exported from a differently seeded model."""
    from kerascut_core.surgery import cut

    good = _save_cut(source, tmp / "model.keras")
    other = _source()  # same architecture ...
    other.get_layer("block1_conv1").kernel.assign(other.get_layer("block1_conv1").kernel * 1.5)
    cut(other, **SPEC).export(str(tmp / "saved_model"), format="tf_saved_model", verbose=False)
    return good, {"formats": ("keras", "saved_model")}


def truncated_keras_file(source: Any, tmp: Path) -> tuple[Path, dict]:
    good = _save_cut(source, tmp / "good.keras")
    data = good.read_bytes()
    (tmp / "model.keras").write_bytes(data[: len(data) // 2])
    return tmp / "model.keras", {}


def extra_variable(source: Any, tmp: Path) -> tuple[Path, dict]:
    # a zero bias the source's conv does not have: same numbers, one variable too many
    return _rebuild(source, tmp, _set("block2_conv1", use_bias=True)), {}


def missing_variable(source: Any, tmp: Path) -> tuple[Path, dict]:
    # the source's bias is all zeros, so dropping it keeps the numbers: one variable too few
    return _rebuild(source, tmp, _set("block3_conv2", use_bias=False)), {}


def wrong_input_shape(source: Any, tmp: Path) -> tuple[Path, dict]:
    def loosen(layer: dict[str, Any]) -> None:
        if layer["class_name"] == "InputLayer":
            layer["config"]["batch_shape"] = [None, None, None, 8]

    return _rebuild(source, tmp, loosen), {}


def activation_changed(source: Any, tmp: Path) -> tuple[Path, dict]:
    return _rebuild(source, tmp, _set("block2_out", negative_slope=0.1)), {}


@dataclass(frozen=True)
class Mutation:
    make: Callable[[Any, Path], tuple[Path, dict]]
    reason: str  # a fragment of the failure that must catch it

    @property
    def name(self) -> str:
        return self.make.__name__


MUTATIONS = [
    Mutation(tiny_weight_change, "not bitwise equal"),
    Mutation(kernel_channels_swapped, "not bitwise equal"),
    Mutation(bn_moving_variance_changed, "not bitwise equal"),
    Mutation(nan_injected, "NaN"),
    Mutation(end_one_layer_earlier, "max abs diff"),
    Mutation(end_one_layer_later, "outside the cut"),
    Mutation(start_one_layer_earlier, "input 'stem'"),
    Mutation(pyramid_order_swapped, "output 'P2': max abs diff"),
    Mutation(extra_output, "not in the cut spec"),
    Mutation(dtype_float16, "dtype policy"),
    Mutation(saved_model_from_other_model, "saved_model"),
    Mutation(truncated_keras_file, "could not be reloaded"),
    Mutation(extra_variable, "no counterpart"),
    Mutation(missing_variable, "missing from the candidate"),
    Mutation(wrong_input_shape, "input 'stem'"),
    Mutation(activation_changed, "max abs diff"),
]


@pytest.fixture(scope="module")
def outcomes(source: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every mutation's report (or the error validate raised), computed once."""
    from kerascut_core import validate

    results: dict[str, Any] = {}
    for mutation in MUTATIONS:
        tmp = tmp_path_factory.mktemp(mutation.name)
        candidate, kwargs = mutation.make(source, tmp)
        try:
            results[mutation.name] = validate(candidate, source, SPEC, **kwargs)
        except Exception as exc:  # recorded, and the test below says it is not a kill
            results[mutation.name] = exc
    return results


def test_the_unmutated_candidate_passes(source, tmp_path):
    from kerascut_core import validate

    report = validate(_save_cut(source, tmp_path / "model.keras"), source, SPEC,
                      formats=("keras", "saved_model"))
    assert report.passed, report.failures
    assert report.max_abs_diff == 0.0


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_mutation_is_killed_for_the_right_reason(mutation, outcomes):
    report = outcomes[mutation.name]
    assert not isinstance(report, Exception), f"validate raised instead of failing: {report!r}"
    assert report.passed is False
    assert any(mutation.reason in failure for failure in report.failures), report.failures
    json.dumps(report.model_dump(mode="json"), allow_nan=False)  # still a valid manifest entry


def test_kill_rate(outcomes, capsys):
    killed = [
        name for name, report in outcomes.items()
        if not isinstance(report, Exception) and report.passed is False
    ]
    with capsys.disabled():
        print(f"\nmutation kill rate: {len(killed)}/{len(MUTATIONS)} "
              f"({100 * len(killed) / len(MUTATIONS):.0f}%)")
        for name, report in outcomes.items():
            first = report.failures[0] if not isinstance(report, Exception) else repr(report)
            print(f"  {name:32s} {'killed' if name in killed else 'SURVIVED'}: {first[:90]}")
    assert len(MUTATIONS) >= 10
    assert len(killed) == len(MUTATIONS)
