"""Real-world-shaped models (``tests/support/realworld_models.py``) through the CLI, the API and a run.

- custom layers in a user module, brought in with ``--import`` (inspect, cut, validate) and
  ``imports:`` (config check, ``kerascut run``), and named with the fix when they are missing;
- a candidate that does not reload is never written, and a validation whose candidate did not
  reload says "not run", never "DIFFERS";
- a Sequential text model (integer ids, Embedding, LSTMs), a Keras 2 style ``.h5`` and a
  ``Cropping1D`` model whose inputs must be longer than 10,000 steps, cut and validated exactly;
- what ``drop_first`` counts.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import kerascut_core as kc
from kerascut_core.errors import CutError, SourceError, ValidationError
from kerascut_core.sources.imports import import_modules
from tests.support import realworld_models as rw

ROOT = Path(__file__).resolve().parents[2]


def _kerascut(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: int = 300) -> Any:
    base = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, "-m", "kerascut_core", *args], cwd=cwd, capture_output=True, text=True,
        timeout=timeout, env={**base, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
    )


def _error_lines(out: Any) -> list[str]:
    return [line for line in out.stderr.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The custom-layer source saved in ``work/`` (beside a copy of kc_layers.py), with a cut."""
    tmp = tmp_path_factory.mktemp("realworld")
    work = tmp / "work"
    rw.install_user_module(work)
    source = rw.custom_layer_model()
    source.save(work / "custom.keras")
    kc.cut(source, start="proj", end="ffn").save(work / "custom_cut.keras")
    (tmp / "elsewhere").mkdir()
    return {"work": work, "elsewhere": tmp / "elsewhere", "source": work / "custom.keras",
            "cut": work / "custom_cut.keras"}


# --- import_modules --------------------------------------------------------------------------


def test_import_modules_finds_a_module_beside_the_config_and_leaves_sys_path(tmp_path: Path) -> None:
    (tmp_path / "kc_beside_config.py").write_text("VALUE = 7\n")
    before = list(sys.path)
    assert import_modules(["kc_beside_config", "kc_beside_config"], search=[tmp_path]) == ["kc_beside_config"]
    assert sys.modules["kc_beside_config"].VALUE == 7
    assert sys.path == before


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (None, ["'kc_nowhere'", "no module named 'kc_nowhere'", "PYTHONPATH"]),
        ("import kc_not_installed_dep\n", ["'kc_needs_dep'", "'kc_not_installed_dep'", "not installed"]),
        ("x = 1\nraise RuntimeError('no licence file')\n", ["'kc_raises'", "RuntimeError: no licence file", "kc_raises.py:2"]),
        ("def broken(:\n", ["'kc_syntax'", "SyntaxError", "kc_syntax.py:1"]),
    ],
    ids=["missing", "missing-dependency", "raises", "syntax-error"],
)
def test_a_module_that_fails_to_import_is_one_line_naming_it_and_the_cause(
    tmp_path: Path, source: str | None, expected: list[str]
) -> None:
    name = expected[0].strip("'")
    if source is not None:
        (tmp_path / f"{name}.py").write_text(source)
    with pytest.raises(SourceError) as caught:
        import_modules([name], search=[tmp_path])
    message = str(caught.value)
    assert "\n" not in message
    for part in expected:
        assert part in message, message


def test_a_file_name_is_refused_with_the_module_name_to_use() -> None:
    for name in ("layers/kc_layers.py", "kc_layers.py"):
        with pytest.raises(SourceError, match=re.escape(f"Received {name!r}; write it as 'kc_layers'")):
            import_modules([name])


# --- custom layers through the CLI -----------------------------------------------------------


def test_missing_custom_layer_names_the_class_its_module_and_the_import(corpus: dict[str, Path]) -> None:
    """Saved with kc_layers imported, loaded in a fresh process that did not import it."""
    out = _kerascut("inspect", str(corpus["source"]), cwd=corpus["elsewhere"])
    assert out.returncode == 1, out.stdout + out.stderr
    (line,) = _error_lines(out)
    assert "'Scale'" in line and "'kerascut_tests>Scale'" in line and "'kc_layers'" in line
    assert "--import kc_layers" in line and "imports: [kc_layers]" in line
    assert "__keras_tensor__" not in line and "Traceback" not in out.stderr


def test_missing_class_of_an_uninstalled_package_names_it_and_the_package() -> None:
    """Keras's own wording when the class's parent module (keras_hub here) cannot be imported."""
    from kerascut_core.sources.load_errors import describe_load_error

    exc = TypeError(
        "Could not deserialize class 'DINOV2Embedding' because its parent module "
        "keras_hub.src.models.dinov2.dinov2_layers cannot be imported. Full object config: "
        "{'module': 'keras_hub.src.models.dinov2.dinov2_layers', 'class_name': 'DINOV2Embedding', "
        "'config': {'name': 'embeddings', 'inbound_nodes': [{'args': [{'class_name': "
        "'__keras_tensor__', 'config': {'shape': [None, 224, 224, 3]}}]}]}, "
        "'registered_name': 'keras_hub>DINOV2Embedding'}"
    )
    line = describe_load_error("dino.keras", TypeError("Functional could not be deserialized"))
    assert "custom class" in line
    outer = TypeError("<class 'Functional'> could not be deserialized properly. config={'class_name': "
                      "'__keras_tensor__'}")
    outer.__cause__ = exc
    line = describe_load_error("dino.keras", outer)
    assert "'DINOV2Embedding'" in line and "keras_hub.src.models.dinov2.dinov2_layers" in line
    assert "pip install keras-hub" in line and "--import keras_hub" in line
    assert "__keras_tensor__" not in line


def test_inspect_cut_and_validate_with_import(corpus: dict[str, Path]) -> None:
    work = corpus["work"]
    out = _kerascut("inspect", "custom.keras", "--import", "kc_layers", "--json", cwd=work)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads(out.stdout)["layers"]
    assert {"scale": "Scale", "mix": "TokenMix"}.items() <= {r["name"]: r["type"] for r in rows}.items()

    out = _kerascut("cut", "custom.keras", "--import", "kc_layers", "--start", "proj", "--end", "ffn",
                    "-o", "cli_cut.keras", cwd=work)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (work / "cli_cut.keras").is_file()

    out = _kerascut("validate", "cli_cut.keras", "--source", "custom.keras", "--import", "kc_layers",
                    "--start", "proj", "--end", "ffn", "--json", "-q", cwd=work)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["passed"] and report["max_abs_diff"] == 0.0 and report["sample_dim"] == 64


def test_config_check_imports_modules_beside_the_config(corpus: dict[str, Path], tmp_path: Path) -> None:
    rw.install_user_module(tmp_path / "cfg")
    backbone = {"name": "custom", "source": str(corpus["source"]), "start": "proj", "end": "ffn"}
    with_imports = tmp_path / "cfg" / "kerascut.yaml"
    with_imports.write_text(json.dumps({"store": str(tmp_path / "store"), "imports": ["kc_layers"],
                                        "backbones": [backbone]}))
    without = tmp_path / "cfg" / "plain.yaml"
    without.write_text(json.dumps({"store": str(tmp_path / "store"), "backbones": [backbone]}))
    # the imports of the file; --import for a file without them; neither: the fix is named
    outs = [
        _kerascut("config", "check", *args, cwd=corpus["elsewhere"])
        for args in ([str(with_imports)], [str(without), "--import", "kc_layers"], [str(without)])
    ]
    assert [out.returncode for out in outs] == [0, 0, 2], [out.stdout + out.stderr for out in outs]
    assert "ok  custom: inputs proj -> outputs ffn" in outs[0].stdout
    (line,) = _error_lines(outs[2])
    assert "backbones[0].source" in line and "--import kc_layers" in line


def test_kerascut_run_imports_the_config_modules_and_records_them(
    corpus: dict[str, Path], tmp_path: Path, prefect_harness: None
) -> None:
    """The whole pipeline (cut, stage, validate, publish) with a custom-layer source (~20 s)."""
    from prefect.settings import PREFECT_API_URL

    rw.install_user_module(tmp_path / "cfg")
    config = tmp_path / "cfg" / "kerascut.yaml"
    store = tmp_path / "store"
    config.write_text(json.dumps({
        "store": str(store),
        "imports": ["kc_layers"],
        "validation": {"samples": 2, "batch_size": 2},
        "backbones": [{"name": "custom", "source": str(corpus["source"]), "start": "proj", "end": "ffn"}],
    }))
    out = _kerascut("run", str(config), "--quiet", cwd=corpus["elsewhere"], timeout=600,
                    env={"PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stdout + out.stderr
    (manifest_path,) = store.glob("custom/*/manifest.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["source"]["imports"] == ["kc_layers"]
    assert manifest["validation"]["passed"] and manifest["validation"]["max_abs_diff"] == 0.0


# --- a candidate that does not reload --------------------------------------------------------


def test_a_cut_that_does_not_reload_is_never_written(tmp_path: Path) -> None:
    from kerascut_core.surgery import save_candidate

    source = rw.broken_config_model()
    with pytest.raises(CutError) as caught:
        save_candidate(kc.cut(source, start="a"), tmp_path, ["keras", "saved_model"])
    message = str(caught.value)
    assert "Unrecognized keyword arguments passed to BrokenConfig" in message
    assert "Nothing was written" in message and "\n" not in message
    assert list(tmp_path.iterdir()) == []


def test_a_candidate_that_did_not_reload_reads_not_run(tmp_path: Path) -> None:
    source = rw.broken_config_model()
    kc.cut(source, start="a").save(tmp_path / "broken.keras")  # plain save: no reload check
    report = kc.validate(tmp_path / "broken.keras", source, {"start": "a"}, samples=2)
    assert not report.passed and report.structure is None and report.weights is None
    assert any("Unrecognized keyword arguments passed to BrokenConfig" in f for f in report.failures)
    text = report.to_markdown()
    assert "- structure: not run" in text and "- weights: not run" in text
    assert "DIFFERS" not in text
    assert json.loads(report.model_dump_json())["structure"] is None


# --- text, legacy .h5, long inputs, drop_first -----------------------------------------------


def test_text_lstm_on_integer_ids_cuts_and_validates_exactly(tmp_path: Path) -> None:
    source = rw.text_lstm()
    path = tmp_path / "text.keras"
    source.save(path)
    for spec in ({"end": "lstm1"}, {"start": "embed", "end": "lstm2"}):
        kc.cut(source, **spec).save(tmp_path / "cut.keras")
        report = kc.validate(tmp_path / "cut.keras", path, spec, samples=4, batch_size=2)
        assert report.passed, report.failures
        assert report.max_abs_diff == 0.0 and report.sample_dim == 64


def test_legacy_h5_with_an_old_optimizer_config_cuts_and_validates_exactly(tmp_path: Path) -> None:
    path = rw.legacy_h5(tmp_path / "legacy.h5")
    source = kc.load_model(path)
    assert [layer.name for layer in source.layers][:2] == ["image", "conv1"]
    spec = {"start": "pool1", "end": "gap"}
    kc.cut(source, **spec).save(tmp_path / "cut.keras")
    report = kc.validate(tmp_path / "cut.keras", path, spec, samples=4)
    assert report.passed, report.failures
    assert report.max_abs_diff == 0.0 and report.sample_dim is None  # no unknown dimension


def test_long_crop_validates_at_the_size_shape_inference_finds(tmp_path: Path) -> None:
    source = rw.long_crop()
    kc.cut(source, start="c1", end="c2").save(tmp_path / "cut.keras")
    report = kc.validate(tmp_path / "cut.keras", source, {"start": "c1", "end": "c2"}, samples=2, batch_size=2)
    assert report.passed, report.failures
    assert report.sample_dim == 16384 and report.max_abs_diff == 0.0  # 64 ... 8192 are too short
    with pytest.raises(ValidationError) as caught:
        kc.validate(tmp_path / "cut.keras", source, {"start": "c1", "end": "c2"}, samples=2, sample_dim=64)
    message = str(caught.value)
    assert "layer 'crop' (Cropping1D)" in message and "--sample-dim" in message and "--data" in message


def test_long_crop_with_a_too_small_sample_dim_fails_with_the_hint(tmp_path: Path) -> None:
    source = rw.long_crop()
    source.save(tmp_path / "crop.keras")
    kc.cut(source, start="c1", end="c2").save(tmp_path / "cut.keras")
    args = ["validate", "cut.keras", "--source", "crop.keras", "--start", "c1", "--end", "c2",
            "--samples", "2", "-q"]
    out = _kerascut(*args, "--sample-dim", "100", cwd=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    (line,) = _error_lines(out)
    assert "layer 'crop' (Cropping1D)" in line and "--sample-dim N" in line and "--data" in line
    assert "Traceback" not in out.stderr


def test_drop_first_counts_model_layers_without_input_layers_or_raw_ops() -> None:
    import keras

    x = keras.Input((4,), name="x")
    a = keras.layers.Dense(4, name="a")(x)
    mixed = a + keras.ops.ones_like(a)  # a raw op: not a layer, not counted
    b = keras.layers.Dense(4, name="b")(mixed)
    model = keras.Model(x, keras.layers.Dense(2, name="c")(b))
    assert kc.plan_cut(model, drop_first=1).inputs == ["a"]
    assert kc.plan_cut(model, drop_first=2).inputs == ["b"]
    assert "InputLayers not counted" in _help("cut")


def _help(command: str) -> str:
    from click.testing import CliRunner

    from kerascut_core.cli.app import app

    return " ".join(CliRunner().invoke(app, [command, "--help"]).output.split())
