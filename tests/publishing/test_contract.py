"""The contract of a cut (issue 13 item 1): channels, stride, what each input replaces, the
source's preprocessing and the in-graph preprocessing a cut keeps or drops.

- ``channels`` / ``stride`` are pure and checked on hand-computed values;
- on a tiny hand-built graph and on ResNet50, MobileNetV2 and ConvNeXtTiny cuts (weights=None,
  64x64; each built once, the session cleared between) the contract matches the values worked
  out by hand from the architectures' strides;
- an EfficientNetB0 cut that starts after its Rescaling/Normalization records a warning in the
  manifest, and ``kerascut cut``, ``kerascut config check`` and ``kerascut run`` print such a
  warning as one ``warning:`` line on stderr;
- the preprocessing table agrees with the keras.applications sources installed.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from kerascut_core.pipeline import build_manifest
from kerascut_core.pipeline.candidate import Candidate, candidate_contract, cut_candidate
from kerascut_core.sources.preprocessing import (
    APPLICATION_PREPROCESSING,
    application_preprocessing,
    model_preprocessing,
    resolve_function,
    source_preprocessing,
)
from kerascut_core.surgery.contract import channels, stride

# --- pure ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "output", "fmt", "expected"),
    [
        ([None, 224, 224, 3], [None, 7, 7, 2048], "channels_last", [32, 32]),
        ([None, 64, 64, 3], [None, 2, 2, 2048], "channels_last", [32, 32]),
        ([None, 64, 48, 3], [None, 16, 6, 8], "channels_last", [4, 8]),
        ([None, 65, 65, 3], [None, 33, 33, 8], "channels_last", None),  # "same" padding on odd sizes
        ([None, 64, 64, 3], [None, 6, 16, 8], "channels_last", [None, 4]),
        ([None, None, None, 3], [None, None, None, 8], "channels_last", None),  # free spatial sizes
        ([None, 7, 7, 3], [None, 14, 14, 3], "channels_last", None),  # upsampled: not a stride
        ([None, 3, 224, 224], [None, 512, 28, 28], "channels_first", [8, 8]),
        ([None, 100, 3], [None, 25, 64], "channels_last", [4]),  # 1-D
        ([None, 16], [None, 4], "channels_last", None),  # no spatial axis
        ([None, 64, 64, 3], [None, 4, 256], "channels_last", None),  # ranks differ
    ],
)
def test_stride(source, output, fmt, expected):
    assert stride(source, output, fmt) == expected


def test_channels():
    assert channels([None, 7, 7, 2048]) == 2048
    assert channels([None, 2048, 7, 7], "channels_first") == 2048
    assert channels([None, 7, 7, None]) is None
    assert channels([None]) is None


# --- the preprocessing table -----------------------------------------------------------------

_KERAS = Path(importlib.util.find_spec("keras").origin).parent  # found without importing Keras


def _exported_architectures() -> dict[str, str]:
    """Architecture -> its module under keras/src/applications, from keras.applications' API file."""
    text = (_KERAS / "applications" / "__init__.py").read_text()
    return dict(
        (name, module)
        for module, name in re.findall(r"from keras\.src\.applications\.(\w+) import \(?\s*([A-Z]\w*) as \2", text)
    )


def _mode_in_source(module: str) -> str:
    text = (_KERAS / "src" / "applications" / f"{module}.py").read_text()
    body = text.split("def preprocess_input(", 1)[1].split("\ndef ", 1)[0].split("\n@keras_export", 1)[0]
    found = re.search(r'mode="(\w+)"', body)
    if found:
        return found.group(1)
    assert "does nothing" in body, f"{module}.preprocess_input neither has a mode nor says it does nothing"
    return "in_graph"


def test_the_table_covers_every_architecture_keras_exports():
    exported = _exported_architectures()
    assert len(exported) >= 40, exported
    assert sorted(set(exported) - set(APPLICATION_PREPROCESSING)) == []
    assert sorted(set(APPLICATION_PREPROCESSING) - set(exported)) == []


@pytest.mark.parametrize("architecture", sorted(APPLICATION_PREPROCESSING))
def test_the_table_agrees_with_the_installed_sources(architecture):
    mode, module = APPLICATION_PREPROCESSING[architecture]
    assert _exported_architectures()[architecture] == module
    assert _mode_in_source(module) == mode
    text = (_KERAS / "src" / "applications" / f"{module}.py").read_text()
    assert f'"keras.applications.{module}.preprocess_input"' in text  # the name the manifest records is exported


def test_the_contract_of_a_few_sources():
    assert application_preprocessing("ResNet50") == {
        "mode": "caffe", "function": "keras.applications.resnet.preprocess_input", "scale": None, "offset": None, "note": None,
    }
    assert application_preprocessing("VGG19")["mode"] == "caffe"
    assert application_preprocessing("MobileNetV3Small")["function"] is None  # in the graph (Rescaling)
    assert application_preprocessing("InceptionV3")["function"] == "keras.applications.inception_v3.preprocess_input"
    assert source_preprocessing("keras.applications/NoSuchNet")["mode"] == "unknown"
    assert source_preprocessing("/models/detector.keras")["mode"] == "unknown"


def test_a_keras_hub_model_gives_its_image_converter():
    converter = type("Converter", (), {"scale": 1 / 255, "offset": [-0.5, -0.5, -0.5]})()
    preprocessor = type("Preprocessor", (), {"image_converter": converter})()
    model = type("ResNetImageClassifier", (), {"__module__": "keras_hub.src.models.resnet", "preprocessor": preprocessor})()
    assert model_preprocessing(model) == {
        "mode": "scale_offset", "function": None, "scale": 1 / 255, "offset": [-0.5, -0.5, -0.5], "note": None,
    }
    bare = type("Backbone", (), {"__module__": "keras_hub.src.models.backbone"})()
    assert model_preprocessing(bare)["mode"] == "unknown"
    assert model_preprocessing(object()) is None
    assert source_preprocessing("/models/hub.keras", model)["mode"] == "scale_offset"


def test_the_function_is_resolved_from_its_name():
    import keras

    assert resolve_function("keras.applications.resnet.preprocess_input") is keras.applications.resnet.preprocess_input
    from kerascut_core.errors import SourceError

    with pytest.raises(SourceError, match=r"'keras\.applications\.nope\.preprocess_input'"):
        resolve_function("keras.applications.nope.preprocess_input")


# --- a tiny hand-built graph -----------------------------------------------------------------


def _tiny():
    import keras

    keras.backend.clear_session()
    x = keras.Input((32, 32, 3), name="image")
    h = keras.layers.Rescaling(1 / 255, name="scale")(x)
    c1 = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="c1")(h)  # 16x16x8: stride 2
    c2 = keras.layers.Conv2D(16, 3, strides=2, padding="same", name="c2")(c1)  # 8x8x16: stride 4
    c3 = keras.layers.Conv2D(32, 3, strides=(2, 1), padding="same", name="c3")(c2)  # 4x8x32: 8 x 4
    c4 = keras.layers.Conv2D(4, 3, padding="valid", name="c4")(c2)  # 6x6x4: 32 / 6 is not whole
    return keras.Model(x, [c3, c4], name="tiny")


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "tiny.keras"
    _tiny().save(path)
    return path


def _cut(path, workdir, **cut):
    backbone = {"name": "tiny", "source": str(path), **cut}
    return cut_candidate(backbone, {"source": str(path), "options": {}}, workdir)


def test_a_tiny_graph_whole(tiny_file, tmp_path):
    import hashlib

    # dict outputs, keys not sorted: Keras orders model.outputs by key, the contract by the config
    candidate = _cut(tiny_file, tmp_path, end={"Z": "c1", "A": "c3", "M": "c4"})
    assert [(o.name, o.address, o.shape, o.channels, o.stride) for o in candidate.outputs] == [
        ("Z", "c1", [None, 16, 16, 8], 8, [2, 2]),
        ("A", "c3", [None, 4, 8, 32], 32, [8, 4]),
        ("M", "c4", [None, 6, 6, 4], 4, None),
    ]
    assert [(i.name, i.shape, i.replaces) for i in candidate.inputs] == [("image", [None, 32, 32, 3], "image")]
    pre = candidate.preprocessing
    assert (pre.mode, pre.function, pre.applies_to_inputs) == ("unknown", None, True)
    assert [(x.address, x.type, x.kept) for x in pre.layers] == [("scale", "Rescaling", True)]
    assert candidate.warnings == []
    assert candidate.source_sha256 == hashlib.sha256(tiny_file.read_bytes()).hexdigest()
    assert candidate.keras_backend == "tensorflow"


def test_a_tiny_graph_cut_after_its_rescaling(tiny_file, tmp_path):
    candidate = _cut(tiny_file, tmp_path, start="c1", end="c2")
    assert [(i.name, i.shape, i.replaces) for i in candidate.inputs] == [("c1", [None, 16, 16, 8], "c1")]
    assert [(o.channels, o.stride) for o in candidate.outputs] == [(16, [4, 4])]  # against the source's input
    assert candidate.preprocessing.applies_to_inputs is False
    assert [(x.address, x.kept) for x in candidate.preprocessing.layers] == [("scale", False)]
    (warning,) = candidate.warnings
    assert "drops the in-graph preprocessing" in warning and "scale (Rescaling)" in warning and "(c1)" in warning


# --- keras.applications: each model built once, the session cleared between --------------------

RESNET_ENDS = {"C2": "conv2_block3_out", "C3": "conv3_block4_out", "C4": "conv4_block6_out", "C5": "conv5_block3_out"}
CONVNEXT_ENDS = {
    "stem": "convnext_tiny_stem/convnext_tiny_stem_conv",
    "s8": "convnext_tiny_downsampling_block_0/convnext_tiny_downsampling_conv_0",
    "s16": "convnext_tiny_downsampling_block_1/convnext_tiny_downsampling_conv_1",
    "s32": "convnext_tiny_downsampling_block_2/convnext_tiny_downsampling_conv_2",
}

# Worked out by hand at 64x64: ResNet50's conv1 (/2) and pool (/2), then /2 per stage from
# conv3; MobileNetV2's Conv1 and blocks 1, 3, 6 and 13 stride 2, the expand layers before them;
# ConvNeXt's 4x4 stem (/4), then a /2 downsampling conv per stage.
CASES = {
    "ResNet50": (
        {"end": RESNET_ENDS},
        [("C2", 256, 4, 16), ("C3", 512, 8, 8), ("C4", 1024, 16, 4), ("C5", 2048, 32, 2)],
        ("caffe", "keras.applications.resnet.preprocess_input", True, []),
    ),
    "MobileNetV2": (
        {"start": "block_3_expand_relu", "end": {"s8": "block_6_expand_relu", "s16": "block_13_expand_relu", "s32": "out_relu"}},
        [("s8", 192, 8, 8), ("s16", 576, 16, 4), ("s32", 1280, 32, 2)],
        ("tf", "keras.applications.mobilenet_v2.preprocess_input", False, []),
    ),
    "ConvNeXtTiny": (
        {"end": CONVNEXT_ENDS},
        [("stem", 96, 4, 16), ("s8", 192, 8, 8), ("s16", 384, 16, 4), ("s32", 768, 32, 2)],
        ("in_graph", None, True, [("convnext_tiny_prestem_normalization", "Normalization", True)]),
    ),
}


@pytest.mark.parametrize("architecture", sorted(CASES))
def test_applications(architecture):
    import keras

    from kerascut_core.surgery import plan_cut

    cut, outputs, (mode, function, applies, layers) = CASES[architecture]
    keras.backend.clear_session()
    model = getattr(keras.applications, architecture)(weights=None, include_top=False, input_shape=(64, 64, 3))
    try:
        contract = candidate_contract(f"keras.applications/{architecture}", model, plan_cut(model, **cut))
    finally:
        del model
        keras.backend.clear_session()
    assert [(o.name, o.channels, o.stride, o.shape) for o in contract.outputs] == [
        (name, c, [s, s], [None, size, size, c]) for name, c, s, size in outputs
    ]
    ends = cut["end"]
    assert [o.address for o in contract.outputs] == list(ends.values())
    assert [i.replaces for i in contract.inputs] == [cut.get("start", "input_layer")]
    pre = contract.preprocessing
    assert (pre.mode, pre.function, pre.applies_to_inputs) == (mode, function, applies)
    assert [(x.address, x.type, x.kept) for x in pre.layers] == layers
    assert contract.warnings == []


def test_an_efficientnet_cut_that_drops_its_preprocessing_is_warned_of():
    import keras

    from kerascut_core.surgery import plan_cut

    keras.backend.clear_session()
    model = keras.applications.EfficientNetB0(weights=None, include_top=False, input_shape=(64, 64, 3))
    try:
        dropping = candidate_contract("keras.applications/EfficientNetB0", model, plan_cut(model, start="stem_conv", end="top_activation"))
        keeping = candidate_contract("keras.applications/EfficientNetB0", model, plan_cut(model, end="top_activation"))
    finally:
        del model
        keras.backend.clear_session()
    assert [(o.channels, o.stride) for o in dropping.outputs] == [(1280, [32, 32])]
    assert dropping.preprocessing.mode == "in_graph"
    assert [(x.address, x.type, x.kept) for x in dropping.preprocessing.layers] == [
        ("rescaling", "Rescaling", False), ("normalization", "Normalization", False),
    ]
    (warning,) = dropping.warnings
    assert warning.startswith("the cut drops the in-graph preprocessing of keras.applications/EfficientNetB0 (rescaling (Rescaling), normalization (Normalization))")
    assert [x.kept for x in keeping.preprocessing.layers] == [True, True] and keeping.warnings == []

    # the pipeline records it in the manifest
    candidate = Candidate(files={}, bytes=0, params={"total_source": 1, "kept": 1}, **dropping.model_dump())
    backbone = {"name": "effnet", "source": "keras.applications/EfficientNetB0", "weights": "none",
                "input_shape": [64, 64, 3], "start": "stem_conv", "end": "top_activation"}
    manifest = build_manifest(backbone, "v1", "fp", candidate, {"passed": True, "max_abs_diff": 0.0})
    assert manifest.warnings == [warning]
    assert [x.address for x in manifest.preprocessing.dropped] == ["rescaling", "normalization"]


# --- the commands print it: one warning: line on stderr --------------------------------------


def _warnings(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("warning:")]


def test_kerascut_cut_prints_the_warning(tiny_file, tmp_path, capsys):
    from kerascut_core.cli.app import main

    assert main(["cut", str(tiny_file), "--start", "c1", "--end", "c2", "-o", str(tmp_path / "a.keras")]) == 0
    err = capsys.readouterr().err
    assert len(_warnings(err)) == 1 and "scale (Rescaling)" in err
    assert main(["cut", str(tiny_file), "--end", "c2", "-o", str(tmp_path / "b.keras")]) == 0
    assert _warnings(capsys.readouterr().err) == []


def test_kerascut_config_check_prints_the_warning(tiny_file, tmp_path, capsys):
    from kerascut_core.cli.app import main

    config = tmp_path / "kc.yaml"
    config.write_text(
        f"store: {tmp_path / 'store'}\nbackbones:\n"
        f"  - {{name: cut-late, source: {tiny_file}, start: c1, end: c2}}\n"
        f"  - {{name: whole, source: {tiny_file}, end: c2}}\n"
    )
    assert main(["config", "check", str(config)]) == 0
    out, err = capsys.readouterr()
    assert "ok  cut-late:" in out and "ok  whole:" in out
    (line,) = _warnings(err)
    assert line.startswith(f"warning: {config}: cut-late: the cut drops the in-graph preprocessing")


def test_kerascut_run_prints_the_warning(capsys):
    from rich.console import Console

    from kerascut.flows.cli import _ProgressPrinter

    for quiet in (False, True):
        printer = _ProgressPrinter(Console(stderr=True), quiet=quiet)
        printer("effnet", "warning", {"message": "the cut drops the in-graph\npreprocessing \x1b[2J"})
        assert _warnings(capsys.readouterr().err) == ["warning: effnet: the cut drops the in-graph preprocessing \\x1b[2J"]
