"""The JAX backend: no TensorFlow needed, its own devices, exact cuts, exports gated, versions
valid across backends (kerascut_core/surgery/backends.py says why).

The subprocess tests run under ``KERAS_BACKEND=jax`` whatever backend this process has (a
backend is chosen once per process); the rest are pure functions. CI's JAX slice runs this file
under ``KERAS_BACKEND=jax`` as well (``pytest -m jax``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from kerascut_core.errors import CutError
from kerascut_core.surgery import backends

pytestmark = pytest.mark.jax

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, backend: str, timeout: int = 300, **extra: str) -> dict:
    """Run ``code`` in a fresh interpreter on ``backend``; return the JSON of its last line."""
    pytest.importorskip(backend)
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2", JAX_PLATFORMS="cpu", **extra)
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_jax_cuts_and_validates_exactly_without_tensorflow(tmp_path):
    """``import kerascut_core``, cut, save, validate and the device report, TensorFlow blocked."""
    result = _python(f"""
        import json, sys
        sys.modules["tensorflow"] = None  # any `import tensorflow` now raises ImportError
        import kerascut_core as kc
        from tests.fixtures.models import BUILDERS
        source = BUILDERS["residual"]()
        spec = {{"start": "block1_out", "end": {{"C2": "block2_out", "C3": "block3_out"}}}}
        kc.cut(source, **spec).save({str(tmp_path / "model.keras")!r})
        report = kc.validate({str(tmp_path / "model.keras")!r}, source, spec, samples=6, batch_size=4)
        device = next(l for l in report.to_markdown().splitlines() if l.startswith("- device:"))
        try:
            kc.validate({str(tmp_path / "model.keras")!r}, source, spec, formats=["saved_model"])
        except kc.ValidationError as exc:
            refused = str(exc)
        onnx = None  # no onnx.keras beside it: the export is refused, a failed check in one line
        if __import__("importlib.util").util.find_spec("onnxruntime"):
            checked = kc.validate({str(tmp_path / "model.keras")!r}, source, spec, formats=["onnx"],
                                  samples=2, batch_size=2)
            onnx = [checked.passed, checked.formats[1].format, checked.formats[1].error]
        print(json.dumps({{"onnx": onnx, "passed": report.passed, "diff": report.max_abs_diff, "backend": report.device.backend,
                          "tf": sys.modules["tensorflow"] is None, "line": device, "refused": refused,
                          "jax_cache": __import__("jax").config.jax_compilation_cache_dir}}))
    """, "jax", KERASCUT_CACHE_DIR=str(tmp_path / "cache"))
    assert result["passed"] and result["diff"] == 0.0, result
    # compiled forwards (those that took >= 0.2 s) are kept for the next validation of the cut
    assert result["jax_cache"] == str(tmp_path / "cache" / "jax-compilation")
    assert result["backend"] == "jax" and result["tf"] is True  # never imported
    assert "Keras backend jax" in result["line"] and "TensorFlow" not in result["line"]
    assert result["refused"].startswith("Cannot check format 'saved_model' on the Keras backend 'jax': ")
    if result["onnx"] is not None:
        passed, fmt, error = result["onnx"]
        assert not passed and fmt == "onnx" and "\n" not in error, result["onnx"]
        assert error.startswith("Cannot export format 'onnx' on the Keras backend 'jax': "), error


def test_the_compilation_cache_can_be_turned_off(tmp_path):
    result = _python("""
        import json, os
        import kerascut_core as kc
        from kerascut_core.validation.forward import forward_fn
        from tests.fixtures.models import BUILDERS, random_input
        model = BUILDERS["chain"]()
        forward_fn(model)([random_input(model)])
        print(json.dumps({"cached": os.path.exists(os.environ["KERASCUT_CACHE_DIR"] + "/jax-compilation")}))
    """, "jax", KERASCUT_CACHE_DIR=str(tmp_path / "cache"), KERASCUT_JAX_CACHE="0")
    assert result["cached"] is False


def test_require_gpu_under_jax_names_jax(tmp_path):
    result = _python("""
        import json, sys
        sys.modules["tensorflow"] = None
        from kerascut_core import validate, DeviceError
        try:
            validate("missing.keras", "keras.applications/ResNet50", {}, require_gpu=True)
        except DeviceError as exc:
            print(json.dumps({"error": str(exc)}))
    """, "jax")
    assert "Received a machine where JAX sees no GPU" in result["error"]
    assert "JAX_PLATFORMS='cpu' hides every GPU" in result["error"]  # _python sets it
    assert "\n" not in result["error"]


def test_export_gate_per_format_and_backend():
    for fmt in ("keras", "saved_model", "onnx", "litert"):
        assert backends.export_supported(fmt, "tensorflow") is None
    assert backends.export_supported("keras", "jax") is None
    for fmt in ("onnx", "litert"):
        reason = backends.export_supported(fmt, "jax")
        assert reason and reason.startswith(f"Cannot export format {fmt!r} on the Keras backend 'jax': ")
        assert "KERAS_BACKEND=tensorflow" in reason and "\n" not in reason
    assert "only from the backends ['tensorflow', 'jax']" in str(backends.export_supported("onnx", "torch"))
    with pytest.raises(CutError, match="'litert' on the Keras backend 'jax'"):
        backends.require_export(["keras", "litert"], backend="jax")
    backends.require_export(["keras", "saved_model", "onnx", "litert"], backend="tensorflow")


def test_saved_model_from_jax_is_refused_as_not_exact(monkeypatch):
    """jax2tf works, but TensorFlow's kernels differ from JAX's (6e-8 on a tiny model)."""
    reason = backends.export_supported("saved_model", "jax")
    assert reason and "jax2tf" in reason and "cannot be validated exactly" in reason
    monkeypatch.setattr(backends, "importable", lambda module: module != "tensorflow")
    assert "needs TensorFlow (not installed here)" in str(backends.export_supported("saved_model", "jax"))
    check = backends.export_supported("saved_model", "jax", action="check")
    assert check and check.startswith("Cannot check format 'saved_model' on the Keras backend 'jax': ")


def test_save_candidate_refuses_litert_on_jax_before_writing(tmp_path):
    result = _python(f"""
        import json, os
        from kerascut_core.errors import CutError
        from kerascut_core.surgery.export import save_candidate
        from tests.fixtures.models import BUILDERS
        try:
            save_candidate(BUILDERS["chain"](), {str(tmp_path)!r}, ["keras", "litert"], graph=False)
        except CutError as exc:
            print(json.dumps({{"error": str(exc), "files": os.listdir({str(tmp_path)!r})}}))
    """, "jax")
    assert result["error"].startswith("Cannot export format 'litert' on the Keras backend 'jax'")
    assert result["files"] == []


def test_cross_backend_note():
    assert backends.cross_backend_note("jax", "jax") is None
    assert backends.cross_backend_note(None, "jax") is None  # manifests from before the field
    note = backends.cross_backend_note("tensorflow", "jax")
    assert note and "'tensorflow'" in note and "'jax'" in note and "not bit for bit" in note


def test_a_version_published_on_one_backend_loads_on_the_other(tmp_path):
    """Decision: valid on both backends, the recorded one shown, numbers within round-off."""
    import keras

    import kerascut_core as kc
    from kerascut_core import load_backbone, open_store
    from kerascut_core.publishing import commit_version, stage_candidate, update_latest
    from kerascut_core.publishing.manifest import software_versions
    from tests.fixtures.models import BUILDERS, random_input
    from tests.publishing.test_publish import make_manifest

    here = keras.config.backend()
    other = "jax" if here == "tensorflow" else "tensorflow"
    source = BUILDERS["residual"]()
    candidate = kc.cut(source, start="block1_out", end="block3_out")
    candidate.save(tmp_path / "model.keras")
    data = random_input(candidate, batch=4)
    np.save(tmp_path / "x.npy", np.asarray(data))
    np.save(tmp_path / "y.npy", keras.ops.convert_to_numpy(candidate(data, training=False)))
    store = open_store(str(tmp_path / "store"))
    uri = stage_candidate(store, "tiny", "v1", {"model.keras": tmp_path / "model.keras"})
    manifest = make_manifest("tiny", "v1", software=software_versions(here))
    commit_version(store, "tiny", "v1", uri, manifest)
    update_latest(store, "tiny", "v1")
    assert load_backbone(str(tmp_path / "store" / "tiny"), cache_dir=tmp_path / "c0") is not None

    result = _python(f"""
        import json, warnings
        import numpy as np, keras
        from kerascut_core import load_backbone
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            model = load_backbone({str(tmp_path / "store" / "tiny")!r}, cache_dir={str(tmp_path / "c1")!r})
        y = keras.ops.convert_to_numpy(model(np.load({str(tmp_path / "x.npy")!r}), training=False))
        expected = np.load({str(tmp_path / "y.npy")!r})
        print(json.dumps({{"notes": [str(w.message) for w in seen if "Keras backend" in str(w.message)],
                          "diff": float(np.abs(y - expected).max()), "scale": float(np.abs(expected).max())}}))
    """, other)
    assert len(result["notes"]) == 1 and f"exactly on Keras backend {here!r}" in result["notes"][0]
    assert "/tiny@v1: built and validated" in result["notes"][0] and f"running on {other!r}" in result["notes"][0]
    assert result["diff"] <= 1e-5 * max(1.0, result["scale"]), result


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND") != "jax", reason="the jax.jit forward runs under KERAS_BACKEND=jax")
def test_jax_forward_is_jitted_and_falls_back_to_eager_for_a_model_that_does_not_trace():
    import keras

    from kerascut_core.validation.forward import forward_fn

    class HostRound(keras.layers.Layer):  # reads its input on the host: cannot be traced
        def call(self, x):
            return keras.ops.convert_to_tensor(np.round(keras.ops.convert_to_numpy(x), 1))

        def compute_output_shape(self, shape):
            return shape

    inputs = keras.Input((3,), name="x")
    dense = keras.layers.Dense(3, name="dense")(inputs)
    traced = keras.Model(inputs, dense)
    untraced = keras.Model(inputs, HostRound(name="host")(dense))
    data = [np.linspace(-1, 1, 6, dtype="float32").reshape(2, 3)]
    expected = keras.ops.convert_to_numpy(traced(data[0], training=False))
    np.testing.assert_array_equal(forward_fn(traced)(data)[0], expected)
    np.testing.assert_array_equal(forward_fn(untraced)(data)[0], np.round(expected, 1))
