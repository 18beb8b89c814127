"""Single-weight mutations of an ONNX or LiteRT artifact, from large to tiny, are all rejected.

A changed weight is caught by comparing the file's weights with a fresh export of the validated
candidate, whatever it does to the outputs; the outputs are held to the runtime's own noise.
Sizes go down to one weight changed by a few float32 ulps, far below what the former fixed
tolerance (1e-3) could see. Needs the extras (marked ``extras``).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.extras import needs
from tests.validation.test_formats_runtime import SPEC, _source

#: (label, how many weights, relative change): one weight down to 8 ulps, a few, a whole tensor
MUTATIONS = [
    ("one weight +1%", 1, 1e-2),
    ("one weight +1e-4", 1, 1e-4),
    ("one weight +8 ulps", 1, 8 * 2.0**-23),
    ("three weights +1e-5", 3, 1e-5),
    ("a whole tensor +1e-4", None, 1e-4),
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    needs("onnxruntime")
    needs("tf2onnx")
    needs("ai_edge_litert")
    from kerascut_core.surgery import cut
    from kerascut_core.surgery.export import save_candidate

    source = _source()
    directory = tmp_path_factory.mktemp("mutations")
    files = save_candidate(cut(source, **SPEC), directory, ["keras", "onnx", "litert"], graph=False)
    return source, files


def _validate(candidate, source):
    from kerascut_core.validation import validate

    return validate(candidate, source, SPEC, samples=4, batch_size=2)


def _nudge(array, count, relative):
    """``array`` with ``count`` of its elements (all when None) scaled by ``1 + relative``."""
    out = np.array(array, dtype=np.float32, copy=True)
    flat = out.reshape(-1)
    chosen = slice(None) if count is None else slice(0, count)
    flat[chosen] = (flat[chosen].astype(np.float64) * (1 + relative)).astype(np.float32)
    assert not np.array_equal(out, array)
    return out


def _onnx_mutant(files, tmp_path, count, relative):
    onnx = needs("onnx")
    proto = onnx.load(str(files["model.onnx"]))
    helper = onnx.numpy_helper
    init = max((i for i in proto.graph.initializer if i.data_type == 1), key=lambda i: np.prod(i.dims))
    init.CopyFrom(helper.from_array(_nudge(helper.to_array(init), count, relative), init.name))
    path = tmp_path / "model.onnx"
    onnx.save(proto, str(path))
    return path, init.name


def _litert_mutant(files, tmp_path, count, relative):
    flatbuffers = needs("flatbuffers")
    schema = needs("ai_edge_litert.schema_py_generated")
    model = schema.ModelT.InitFromPackedBuf(files["model.tflite"].read_bytes(), 0)
    tensors = [t for t in model.subgraphs[0].tensors if t.type == 0 and model.buffers[t.buffer].data is not None]
    tensor = max(tensors, key=lambda t: len(model.buffers[t.buffer].data))
    buffer = model.buffers[tensor.buffer]
    values = np.frombuffer(bytes(np.asarray(buffer.data, dtype=np.uint8)), "<f4")
    buffer.data = np.frombuffer(_nudge(values, count, relative).astype("<f4").tobytes(), np.uint8)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / "model.tflite"
    path.write_bytes(bytes(builder.Output()))
    return path, tensor.name.decode()


@pytest.mark.extras
@pytest.mark.parametrize("fmt", ["onnx", "litert"])
@pytest.mark.parametrize(("label", "count", "relative"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_a_changed_weight_is_rejected_at_every_size(exported, tmp_path, fmt, label, count, relative):
    source, files = exported
    mutate = _onnx_mutant if fmt == "onnx" else _litert_mutant
    path, tensor = mutate(files, tmp_path, count, relative)
    report = _validate(path, source)
    assert not report.passed, f"{fmt}, {label}: {report.to_markdown()}"
    check = report.formats[0]
    assert check.weights is not None and check.weights.compared and not check.weights.passed
    assert check.weights.differing == [tensor] and check.weights.max_abs_diff > 0
    assert check.weights.reference == "a fresh export of the source's cut"
    text = " ".join(report.failures)
    assert f"{fmt} at {path}: 1 weight tensor(s) differ from a fresh export" in text and repr(tensor) in text


@pytest.mark.extras
@pytest.mark.parametrize("fmt", ["onnx", "litert"])
def test_the_former_fixed_tolerance_could_not_see_a_small_change(exported, tmp_path, fmt):
    """A weight changed by 1e-4 moves the outputs far less than 1e-3, the former fixed tolerance;
    the fresh export's noise is smaller still, and the weights differ: rejected."""
    source, files = exported
    mutate = _onnx_mutant if fmt == "onnx" else _litert_mutant
    path, _ = mutate(files, tmp_path, 1, 1e-4)
    report = _validate(path, source)
    rows = report.formats[0].outputs
    assert max(r.max_abs_diff for r in rows) < 1e-3 and not report.passed
    assert all(r.noise is not None and r.noise <= r.max_abs_diff for r in rows)


@pytest.mark.extras
def test_the_artifact_beside_a_keras_candidate_is_held_to_its_fresh_export(exported, tmp_path):
    """Beside a .keras candidate, the fresh export is made from the reloaded candidate itself."""
    source, files = exported
    (tmp_path / "model.keras").write_bytes(files["model.keras"].read_bytes())
    _onnx_mutant(files, tmp_path, 1, 1e-4)  # writes tmp_path / model.onnx
    from kerascut_core.validation import validate

    report = validate(tmp_path / "model.keras", source, SPEC, samples=4, batch_size=2, formats=["onnx"])
    onnx = report.formats[1]
    assert onnx.origin == "artifact" and not onnx.passed and not report.passed
    assert onnx.weights.reference == "a fresh export of the validated .keras candidate"
    assert "weights vs a fresh export of the validated .keras candidate" in report.to_markdown()
    assert report.formats[0].passed  # the .keras candidate itself is fine


@pytest.mark.extras
def test_a_one_ulp_difference_is_rounding_and_left_to_the_outputs(exported, tmp_path):
    """Constant folding on another CPU may round a folded weight one ulp differently: reported as
    rounding, not as a changed weight; the outputs, held to the noise, decide."""
    source, files = exported
    path, tensor = _onnx_mutant(files, tmp_path, 1, 2.0**-23)
    report = _validate(path, source)
    weights = report.formats[0].weights
    assert weights.passed and weights.within_rounding == [tensor] and not weights.differing
    assert "1 within rounding" in weights.summary()
    assert report.passed == all(r.passed for r in report.formats[0].outputs)


@pytest.mark.extras
def test_the_report_gives_noise_tolerance_and_weights_per_format_and_output(exported):
    source, files = exported
    from kerascut_core.validation import validate

    report = validate(files["model.keras"], source, SPEC, samples=4, batch_size=2, formats=["onnx", "litert"])
    assert report.passed, report.failures
    text = report.to_markdown()
    for check in report.formats[1:]:
        assert check.weights.summary() in text.replace("\\", "")
        for row in check.outputs:
            assert row.noise is not None and row.atol is not None and row.tolerance_reason
            assert f"output {row.name}: max abs diff" in text
    dumped = report.model_dump(mode="json")["formats"][1]
    assert set(dumped["outputs"][0]) >= {"noise", "atol", "rtol", "tolerance_reason", "max_abs_diff"}
    assert dumped["weights"]["bitwise_equal"] == dumped["weights"]["tensors"] > 0


@pytest.mark.extras
@pytest.mark.parametrize("fmt", ["onnx", "litert"])
def test_without_a_fresh_export_the_file_is_held_to_the_ceiling(exported, monkeypatch, fmt):
    """Where this Keras backend cannot export (JAX, simulated here), the weights are not compared,
    the report says why, and the outputs are held to the format's ceiling."""
    from kerascut_core.surgery import backends, export
    from kerascut_core.validation.runtimes import CEILINGS

    source, files = exported
    monkeypatch.setattr(export, "require_export", lambda formats: backends.require_export(formats, backend="jax"))
    report = _validate(files["model.onnx" if fmt == "onnx" else "model.tflite"], source)
    assert report.passed, report.failures
    check = report.formats[0]
    assert not check.weights.compared and check.weights.reason.startswith(f"Cannot export format {fmt!r}")
    assert "weights not compared (Cannot export format" in check.weights.summary()
    for row in check.outputs:
        assert (row.atol, row.rtol) == CEILINGS[fmt][:2] and row.noise is None
        assert row.tolerance_reason.startswith("no fresh export to measure the noise on (Cannot export")
