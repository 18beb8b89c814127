"""keras-hub backbones: presets as sources, cuts at ``pyramid_outputs``, the model's own tensors.

Tiny random-weight backbones (ResNet, CSPNet, DenseNet, DINOv2, MiT) are saved offline with
``save_to_preset`` and used as sources: a local preset directory, an ``s3://`` copy of one, and
(error paths only) ``kaggle://`` handles. Each is cut at its ``pyramid_outputs`` from Python
(the dict of tensors), from a config (``end: pyramid_outputs``) and from the CLI, and the cut,
saved and reloaded, gives exactly the source's pyramid. A MiT cut, whose keras-hub layer does
not reload, is refused at cut time with that cause.

Tests that need keras-hub are marked ``extras`` (CI's extras slice); the rest run everywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import kerascut_core as kc
from kerascut_core.errors import CutError, SourceError
from tests.support.extras import needs

ROOT = Path(__file__).resolve().parents[2]
PYRAMIDS = ["resnet", "cspnet", "densenet", "dinov2"]
hub = pytest.mark.extras


def _tiny_backbones(keras_hub: Any) -> dict[str, Any]:
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
        "dinov2": lambda: m.DINOV2Backbone(
            patch_size=14, num_layers=2, hidden_dim=8, num_heads=2, intermediate_dim=16,
            image_shape=(28, 28, 3), position_embedding_shape=(28, 28, 3)),
        "mit": lambda: m.MiTBackbone(
            layerwise_depths=[1, 1], num_layers=2, layerwise_num_heads=[1, 1], layerwise_sr_ratios=[2, 1],
            max_drop_path_rate=0.0, layerwise_patch_sizes=[3, 3], layerwise_strides=[2, 2],
            image_shape=(32, 32, 3), hidden_dims=[4, 8]),
    }


@pytest.fixture(scope="module")
def presets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One preset directory per tiny backbone, saved offline with random weights."""
    keras_hub = needs("keras_hub")
    import keras

    root = tmp_path_factory.mktemp("presets")
    out = {}
    for name, build in _tiny_backbones(keras_hub).items():
        keras.utils.set_random_seed(0)
        build().save_to_preset(str(root / name))
        out[name] = root / name
    keras.backend.clear_session()
    return out


def _images(model: Any, n: int = 2) -> np.ndarray:
    return np.random.default_rng(0).random((n, *model.input_shape[1:])).astype("float32")


def _pyramid(source: Any, x: np.ndarray) -> dict[str, np.ndarray]:
    import keras

    return {k: np.asarray(v) for k, v in keras.Model(source.inputs, source.pyramid_outputs)(x).items()}


def _exact(model: Any, expected: dict[str, np.ndarray], x: np.ndarray) -> dict[str, bool]:
    got = model(x)
    assert isinstance(got, dict) and set(got) == set(expected)
    return {k: bool(np.array_equal(np.asarray(got[k]), expected[k])) for k in expected}


# --- the model's own tensors (no keras-hub needed) --------------------------------------------


def _small() -> Any:
    import keras

    x = keras.Input((8,), name="x")
    a = keras.layers.Dense(8, name="a")(x)
    b = keras.layers.Dense(8, name="b")(a)
    left, right = keras.ops.split(b, 2, axis=-1)
    return keras.Model(x, [left, keras.layers.Dense(2, name="c")(right)], name="small")


def test_tensors_resolve_to_addresses_recorded_in_the_plan() -> None:
    model = _small()
    a, b = model.get_layer("a").output, model.get_layer("b").output
    split = model.outputs[0]
    plan = kc.plan_cut(model, end={"P3": a, "P4": split})
    assert plan.outputs == {"P3": "a", "P4": "split:0"}  # the dict's keys, the view's addresses
    assert plan.spec.end == {"P3": "a", "P4": "split:0"}
    listed = kc.plan_cut(model, start=a, end=[b, model.outputs[1]])
    assert listed.inputs == ["a"] and listed.outputs == {"b": "b", "c": "c"}
    assert kc.plan_cut(model, end=b).outputs == {"b": "b"}
    cut = kc.cut(model, end={"P3": a, "P4": split})
    assert isinstance(cut.output, dict) and list(cut.output) == ["P3", "P4"]


def test_a_tensor_of_another_model_is_one_line_pointing_at_the_listing() -> None:
    import keras

    model = _small()
    stranger = keras.layers.Dense(3)(keras.Input((8,)))
    with pytest.raises(CutError) as info:
        kc.cut(model, end={"P3": stranger})
    message = str(info.value)
    assert "\n" not in message and "not in the model" in message
    assert "cut_points(model)" in message and "kerascut inspect" in message
    with pytest.raises(CutError, match="KerasTensor of the model"):
        kc.cut(model, end=[3])


def test_pyramid_outputs_on_a_model_without_them_names_the_attribute_and_the_model() -> None:
    with pytest.raises(CutError) as info:
        kc.cut(_small(), end="pyramid_outputs")
    message = str(info.value)
    assert "\n" not in message and "`pyramid_outputs` attribute" in message
    assert "'small'" in message and "Functional" in message


def test_a_preset_without_keras_hub_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kerascut_core.extras import MissingExtraError

    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "metadata.json").write_text(json.dumps({"keras_hub_version": "0.32.0"}))
    monkeypatch.setitem(sys.modules, "keras_hub", None)  # import keras_hub -> ModuleNotFoundError
    with pytest.raises(MissingExtraError) as info:
        kc.load_model(tmp_path)
    assert "pip install 'kerascut[hub]'" in str(info.value) and "preset" in str(info.value)


def test_hub_handles_parse_and_pin_their_version() -> None:
    from kerascut_core.uris import parse_uri

    handle = "kaggle://keras/resnetv2/keras/resnet50_v2_imagenet/2"
    assert parse_uri(handle).kind == "hub"
    assert kc.fingerprint(handle).startswith(handle + "?keras_hub=")
    with pytest.raises(SourceError, match="pinned to a version"):
        kc.fingerprint("kaggle://keras/resnetv2/keras/resnet50_v2_imagenet")
    with pytest.raises(SourceError, match="preset handle"):
        parse_uri("hf://")
    with pytest.raises(SourceError, match="keras-hub downloads"):
        kc.fetch(handle)


# --- presets as sources, cut at pyramid_outputs -----------------------------------------------


@hub
@pytest.mark.parametrize("name", PYRAMIDS)
def test_pyramid_outputs_cut_is_exact_after_save_and_reload(
    name: str, presets: dict[str, Path], tmp_path: Path
) -> None:
    import keras

    from kerascut_core.surgery import save_candidate

    source = kc.load_model(presets[name])  # the preset directory is the source
    x = _images(source)
    expected = _pyramid(source, x)
    cut = kc.cut(source, end=source.pyramid_outputs)
    assert list(cut.cut_plan.outputs) == list(source.pyramid_outputs)
    assert all(isinstance(a, str) for a in cut.cut_plan.outputs.values())
    files = save_candidate(cut, tmp_path, ["keras"], graph=False)  # reloaded before it is kept
    reloaded = keras.saving.load_model(files["model.keras"])
    assert _exact(reloaded, expected, x) == dict.fromkeys(expected, True)
    keras.backend.clear_session()


@hub
def test_list_and_single_tensor_ends_and_a_tensor_start(presets: dict[str, Path]) -> None:
    source = kc.load_model(presets["resnet"])
    pyramid = source.pyramid_outputs
    x = _images(source)
    expected = _pyramid(source, x)
    listed = kc.cut(source, end=list(pyramid.values()))
    assert list(listed.cut_plan.outputs.values()) == list(kc.plan_cut(source, end=pyramid).outputs.values())
    points = kc.cut_points(source, end=pyramid["P5"])  # the discover function takes tensors too
    assert points == kc.cut_points(source, end=kc.plan_cut(source, end=pyramid).outputs["P5"])
    assert kc.cut_points(source, end="pyramid_outputs") == kc.cut_points(source, end=pyramid)
    tail = kc.cut(source, start=pyramid["P4"], end=pyramid["P5"])
    assert tail.cut_plan.inputs == [kc.plan_cut(source, end=pyramid).outputs["P4"]]
    assert np.array_equal(np.asarray(tail(expected["P4"])), expected["P5"])


@hub
def test_the_cli_cuts_a_preset_at_pyramid_outputs(presets: dict[str, Path], tmp_path: Path) -> None:
    import keras
    from click.testing import CliRunner

    from kerascut_core.cli.app import app

    out = tmp_path / "dino.keras"
    result = CliRunner().invoke(app, ["cut", str(presets["dinov2"]), "--end", "pyramid_outputs", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "  output stem: (None, 5, 8)" in result.output and "output stage2" in result.output
    source = kc.load_model(presets["dinov2"])
    x = _images(source)
    expected = _pyramid(source, x)
    assert all(_exact(keras.saving.load_model(out), expected, x).values())


@hub
def test_inspect_lists_cut_points_for_pyramid_outputs(presets: dict[str, Path]) -> None:
    import json

    from click.testing import CliRunner

    from kerascut_core.cli.app import app

    result = CliRunner().invoke(app, ["inspect", str(presets["resnet"]), "--end", "pyramid_outputs", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["layers"]
    points = [r["name"] for r in rows if r["cut_point"]]
    everything = CliRunner().invoke(app, ["inspect", str(presets["resnet"]), "--json"])
    all_points = [r["name"] for r in json.loads(everything.output)["layers"] if r["cut_point"]]
    # Cut points for the pyramid lie before its first level: fewer than for the final output.
    assert points and len(points) < len(all_points)
    assert set(points) <= set(all_points) | {r["name"] for r in rows}


@hub
def test_a_mit_cut_is_refused_at_cut_time_with_the_real_cause(presets: dict[str, Path], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from kerascut_core.cli.app import app

    out = tmp_path / "mit.keras"
    result = CliRunner().invoke(app, ["cut", str(presets["mit"]), "--end", "pyramid_outputs", "-o", str(out)])
    assert result.exit_code != 0 and isinstance(result.exception, CutError), result.output
    message = str(result.exception)  # `kerascut` prints it as one "error:" line
    assert "\n" not in message and "Nothing was written" in message
    assert "Unrecognized keyword arguments passed to HierarchicalTransformerEncoder" in message
    assert "wrote" not in result.output and list(tmp_path.iterdir()) == []


@hub
def test_a_config_cuts_and_validates_a_preset_at_pyramid_outputs(presets: dict[str, Path], tmp_path: Path) -> None:
    """The pipeline's core steps (fetch, cut and stage, validate) with ``end: pyramid_outputs``."""
    from kerascut_core.config import BackboneConfig
    from kerascut_core.pipeline.candidate import cut_candidate, fetch_source

    backbone = BackboneConfig(name="resnet-fpn", source=str(presets["cspnet"]), end="pyramid_outputs")
    fetched = fetch_source(backbone)
    candidate = cut_candidate(backbone, fetched, tmp_path / "work")
    assert [o.name for o in candidate.outputs] == ["P2", "P3", "P4", "P5"]
    assert all(o.address.startswith("stage_") for o in candidate.outputs)
    report = kc.validate(candidate.files["model.keras"], backbone.source, backbone.cut_spec(),
                         samples=2, batch_size=2)
    assert report.passed and report.max_abs_diff == 0.0, report.failures


@hub
def test_plan_fingerprints_a_preset_directory_without_keras_hub_or_tensorflow(
    presets: dict[str, Path], tmp_path: Path
) -> None:
    config = tmp_path / "kerascut.yaml"
    config.write_text(json.dumps({"store": str(tmp_path / "store"), "backbones": [
        {"name": "resnet-fpn", "source": str(presets["resnet"]), "end": "pyramid_outputs"}]}))
    code = (
        "import json, sys; from kerascut_core.cli.app import main; "
        "code = main(['plan', sys.argv[1], '--json']); "
        "print('\\nHEAVY=' + json.dumps(sorted(m for m in ('keras_hub', 'tensorflow', 'keras') if m in sys.modules))); "
        "sys.exit(code)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(config)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    body, _, heavy = out.stdout.rpartition("\nHEAVY=")
    assert out.returncode in (0, 3) and json.loads(heavy) == [], out.stdout + out.stderr
    (entry,) = json.loads(body)["backbones"]
    from kerascut_core.config import BackboneConfig

    backbone = BackboneConfig(name="resnet-fpn", source=str(presets["resnet"]), end="pyramid_outputs")
    fingerprint = kc.fingerprint(presets["resnet"])  # the sha256 of the directory's files
    assert fingerprint.startswith("sha256-dir:")
    assert entry["status"] == "new" and entry["version"] == kc.backbone_version(backbone, fingerprint)


@hub
def test_an_s3_preset_directory_is_fingerprinted_fetched_and_cached(
    presets: dict[str, Path], s3_client: Any, s3_bucket: str, tmp_path: Path
) -> None:
    local = presets["densenet"]
    for file in sorted(local.iterdir()):
        s3_client.upload_file(str(file), s3_bucket, f"presets/densenet/{file.name}")
    uri = f"s3://{s3_bucket}/presets/densenet/"
    first = kc.fingerprint(uri)
    assert first == kc.fingerprint(uri) and "listing=sha256:" in first
    source = kc.load_model(uri, cache_dir=tmp_path / "cache")
    x = _images(source)
    assert all(
        np.array_equal(v, _pyramid(kc.load_model(local), x)[k]) for k, v in _pyramid(source, x).items()
    )
    (cached,) = [p for p in (tmp_path / "cache").rglob("config.json")]
    assert kc.fetch(uri, cache_dir=tmp_path / "cache") == cached.parent  # a hit: one LIST
    s3_client.put_object(Bucket=s3_bucket, Key="presets/densenet/extra.txt", Body=b"x")
    assert kc.fingerprint(uri) != first
    with pytest.raises(SourceError, match="ends in '/'"):
        kc.fingerprint(uri.rstrip("/"))


def _renamed_preset(source: Path, into: Path) -> Path:
    """A copy of ``source`` whose backbone class is ``kc_test_missing>TinyDense`` (registered nowhere)."""
    import shutil

    shutil.copytree(source, into)
    config = json.loads((into / "config.json").read_text())
    config.update(module="kc_test_missing", class_name="TinyDense", registered_name="kc_test_missing>TinyDense")
    (into / "config.json").write_text(json.dumps(config))
    return into


@hub
def test_a_preset_of_an_unregistered_class_names_the_import_and_loads_with_custom_objects(
    presets: dict[str, Path], tmp_path: Path
) -> None:
    keras_hub = needs("keras_hub")
    preset = _renamed_preset(presets["densenet"], tmp_path / "renamed")
    with pytest.raises(SourceError) as info:
        kc.load_model(preset)
    message = str(info.value)
    assert "\n" not in message and "'TinyDense'" in message and "kc_test_missing>TinyDense" in message
    assert "--import" in message and "imports:" in message and "custom_objects" in message
    # the caller's custom_objects reach from_preset (by registered name, as keras-hub looks it up)
    backbone = kc.load_model(preset, custom_objects={"kc_test_missing>TinyDense": keras_hub.models.DenseNetBackbone})
    x = _images(backbone)
    assert all(
        np.array_equal(v, _pyramid(kc.load_model(presets["densenet"]), x)[k])
        for k, v in _pyramid(backbone, x).items()
    )


def test_keras_version_reads_any_package_without_importing_it() -> None:
    from importlib import metadata

    from kerascut_core.sources.fingerprints import keras_version

    assert keras_version() == ".".join(metadata.version("keras").split(".")[:2])
    assert keras_version("no-such-package-kc") == "unknown"
    assert keras_version("no-such-package-kc", missing="none") == "none"


@hub
def test_a_hub_handle_offline_is_one_line_with_the_way_around() -> None:
    needs("keras_hub")
    with pytest.raises(SourceError) as info:
        kc.load_model("kaggle://keras/no_such_model_kc/keras/tiny/1")
    message = str(info.value)
    assert "\n" not in message and "network access" in message and "save_to_preset" in message


@hub
def test_kerascut_run_publishes_a_preset_cut_at_pyramid_outputs(
    presets: dict[str, Path], tmp_path: Path, prefect_harness: None
) -> None:
    """The whole local pipeline once, from a config with ``end: pyramid_outputs`` (~20 s)."""
    from prefect.settings import PREFECT_API_URL

    store = tmp_path / "store"
    config = tmp_path / "kerascut.yaml"
    config.write_text(json.dumps({
        "store": str(store),
        "validation": {"samples": 2, "batch_size": 2},
        "backbones": [{"name": "resnet-fpn", "source": str(presets["resnet"]), "end": "pyramid_outputs"}],
    }))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-m", "kerascut_core", "run", str(config), "--quiet"], cwd=tmp_path,
        capture_output=True, text=True, timeout=600,
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "3", "PREFECT_API_URL": PREFECT_API_URL.value(),
             "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (manifest_path,) = store.glob("resnet-fpn/*/manifest.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["validation"]["passed"] and manifest["validation"]["max_abs_diff"] == 0.0
    assert manifest["source"]["fingerprint"] == kc.fingerprint(presets["resnet"])
    assert [o["name"] for o in manifest["outputs"]] == ["P2", "P3", "P4", "P5"]
