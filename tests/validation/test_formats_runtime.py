"""The ``onnx`` and ``litert`` formats: exported from the candidate, run in their own runtimes,
compared with the source by output name, and every mutation of the exported file caught.

The runtime tests need the extras (``onnxruntime``, ``tf2onnx``, ``ai_edge_litert``): they are
marked ``extras`` and skip without them (CI's extras slice fails instead). The others (the
missing-extra errors, the provider choice, name matching, ``pull --format``) need no extra.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from kerascut_core.errors import ValidationError
from kerascut_core.extras import MissingExtraError
from kerascut_core.validation.runtimes import CEILINGS, match_outputs, output_tolerance
from kerascut_core.validation.runtimes_onnx import providers
from tests.support.extras import needs

#: the cut: two outputs, named out of sorted order (tf2onnx sorts dict outputs by key)
SPEC = {"start": "c1", "end": {"C5": "c2", "C4": "bn"}}


def _source(size: int = 8):
    import keras

    inp = keras.Input((size, size, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inp)
    x = keras.layers.BatchNormalization(name="bn")(x)
    y = keras.layers.Conv2D(2, 1, name="c2", activation="relu")(x)
    model = keras.Model(inp, keras.layers.Conv2D(2, 1, name="c3")(y))
    rng = np.random.default_rng(0)
    for layer in model.layers:  # random weights and BatchNorm statistics: nothing is an identity
        layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") for w in layer.get_weights()])
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    needs("onnxruntime")
    needs("tf2onnx")
    needs("ai_edge_litert")
    from kerascut_core.surgery import cut
    from kerascut_core.surgery.export import save_candidate

    source = _source()
    directory = tmp_path_factory.mktemp("formats")
    files = save_candidate(cut(source, **SPEC), directory, ["keras", "onnx", "litert"], graph=False)
    return source, files


def _validate(candidate, source, **kwargs):
    from kerascut_core.validation import validate

    return validate(candidate, source, SPEC, samples=4, batch_size=2, **kwargs)


def _failed(report, *words):
    assert not report.passed, report.to_markdown()
    text = " ".join(report.failures)
    assert all(w in text for w in words), text


# ---------------------------------------------------------------- the runtimes, unmutated

@pytest.mark.extras
def test_exports_pass_in_their_runtimes_by_name(exported):
    onnx = needs("onnx")
    source, files = exported
    assert sorted(files) == ["model.keras", "model.onnx", "model.tflite"]
    assert [o.name for o in onnx.load(str(files["model.onnx"])).graph.output] == ["C5", "C4"]  # the candidate's order
    report = _validate(files["model.keras"], source, formats=["onnx", "litert"])
    assert report.passed, report.failures
    checks = {f.format: f for f in report.formats}
    assert set(checks) == {"keras", "onnx", "litert"}
    for fmt in ("onnx", "litert"):
        check = checks[fmt]
        assert check.origin == "artifact" and check.location == str(files["model.onnx" if fmt == "onnx" else "model.tflite"])
        assert [o.name for o in check.outputs] == ["C5", "C4"] and all(o.passed for o in check.outputs)
        assert check.max_abs_diff is not None and check.max_abs_diff < 1e-5
        assert check.weights.compared and check.weights.passed and check.weights.bitwise_equal == check.weights.tensors > 0
        for row in check.outputs:  # the artifact is the fresh export: it differs by exactly the noise
            assert row.noise == row.max_abs_diff and row.rtol == 0.0 and "noise of a fresh export" in row.tolerance_reason
            assert row.atol >= 2 * row.noise and row.passed
    assert "CPUExecutionProvider" in checks["onnx"].runtime
    assert "format `onnx` (artifact): pass" in report.to_markdown()


@pytest.mark.extras
def test_a_runtime_file_is_a_candidate_itself(exported):
    source, files = exported
    for name in ("model.onnx", "model.tflite"):
        report = _validate(files[name], source)
        assert report.passed, report.failures
        assert [o.name for o in report.outputs] == ["C5", "C4"]
        assert report.structure is None and report.weights is None  # the .keras candidate's checks
        assert [f.format for f in report.formats] == ["onnx" if name.endswith("onnx") else "litert"]


@pytest.mark.extras
def test_without_an_artifact_beside_the_candidate_it_is_exported(exported, tmp_path):
    source, files = exported
    alone = tmp_path / "model.keras"
    alone.write_bytes(files["model.keras"].read_bytes())
    report = _validate(alone, source, formats=["onnx"])
    assert report.passed, report.failures
    assert report.formats[1].origin == "exported" and [o.name for o in report.formats[1].outputs] == ["C5", "C4"]



@pytest.mark.extras
@pytest.mark.parametrize("fmt", ["onnx", "litert"])
def test_an_export_the_backend_refuses_is_a_failed_check_in_one_line(exported, tmp_path, monkeypatch, fmt):
    """The exporters hold the backend gate: under JAX (its refusal, through the gate) an export
    is not made, and validate records it as a failed check of that format, not a traceback."""
    from kerascut_core.surgery import backends, export

    source, files = exported
    alone = tmp_path / "model.keras"
    alone.write_bytes(files["model.keras"].read_bytes())
    monkeypatch.setattr(export, "require_export", lambda formats: backends.require_export(formats, backend="jax"))
    report = _validate(alone, source, formats=[fmt])
    check = report.formats[1]
    assert check.format == fmt and check.origin == "exported" and check.passed is False
    assert check.error.startswith(f"Cannot export format {fmt!r} on the Keras backend 'jax': ")
    assert "\n" not in check.error and not report.passed
    _failed(report, f"{fmt} at (not exported): Cannot export format {fmt!r}")


@pytest.mark.extras
def test_a_failed_export_is_a_failed_check_in_one_line(exported, tmp_path, monkeypatch):
    from kerascut_core.surgery import export

    source, files = exported
    alone = tmp_path / "model.keras"
    alone.write_bytes(files["model.keras"].read_bytes())

    def broken(model, names):
        raise RuntimeError("tf2onnx: Unsupported ops: OpName\nsecond line")

    monkeypatch.setattr(export, "_named", broken)
    report = _validate(alone, source, formats=["onnx"])
    check = report.formats[1]
    assert check.passed is False and check.error and "\n" not in check.error and "Unsupported ops" in check.error
    assert not report.passed


# ---------------------------------------------------------------- ONNX mutations

def _onnx_copy(files, tmp_path, change):
    onnx = needs("onnx")
    proto = onnx.load(str(files["model.onnx"]))
    change(proto, onnx)
    path = tmp_path / "model.onnx"
    onnx.save(proto, str(path))
    return path


def _bump_initializer(proto, onnx, value=None):
    """Change one element of the largest float initializer (a kernel)."""
    helper = onnx.numpy_helper
    init = max((i for i in proto.graph.initializer if i.data_type == 1), key=lambda i: np.prod(i.dims))
    array = helper.to_array(init).copy()
    array.flat[0] = array.flat[0] + 0.5 if value is None else value
    init.CopyFrom(helper.from_array(array, init.name))


@pytest.mark.extras
def test_onnx_changed_weight_is_caught(exported, tmp_path):
    source, files = exported
    _failed(_validate(_onnx_copy(files, tmp_path, _bump_initializer), source), "onnx at", "max abs diff", "exceeds")


@pytest.mark.extras
def test_onnx_nan_weight_fails(exported, tmp_path):
    source, files = exported
    path = _onnx_copy(files, tmp_path, lambda p, o: _bump_initializer(p, o, value=np.nan))
    _failed(_validate(path, source), "NaN", "never allowed")


@pytest.mark.extras
def test_onnx_swapped_outputs_are_caught(exported, tmp_path):
    source, files = exported

    def swap(proto, onnx):
        first, second = (type(o)() for o in proto.graph.output)
        first.CopyFrom(proto.graph.output[1])
        second.CopyFrom(proto.graph.output[0])
        del proto.graph.output[:]
        proto.graph.output.extend([first, second])

    _failed(_validate(_onnx_copy(files, tmp_path, swap), source), "candidate's order ['C5', 'C4']", "['C4', 'C5']")


@pytest.mark.extras
def test_onnx_lost_names_are_caught(exported, tmp_path):
    source, files = exported

    def rename(proto, onnx):
        for i, output in enumerate(proto.graph.output):
            new = "Identity:0" if i == 0 else f"Identity_{i}:0"
            for node in proto.graph.node:
                node.output[:] = [new if o == output.name else o for o in node.output]
                node.input[:] = [new if o == output.name else o for o in node.input]
            output.name = new

    _failed(_validate(_onnx_copy(files, tmp_path, rename), source), "lost the output names", "['C5', 'C4']")


@pytest.mark.extras
def test_onnx_wrong_input_shape_is_caught(exported, tmp_path):
    source, files = exported

    def widen(proto, onnx):
        proto.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 16

    _failed(_validate(_onnx_copy(files, tmp_path, widen), source), "(None, 8, 8, 4)", "(None, 16, 8, 4)",
            "exported for other inputs")


# ---------------------------------------------------------------- LiteRT mutations

@pytest.mark.extras
def test_litert_changed_weight_is_caught(exported, tmp_path):
    source, files = exported
    data = bytearray(files["model.tflite"].read_bytes())
    kernel = source.get_layer("c2").get_weights()[0]  # (1, 1, 4, 2): TFLite stores OHWI (2, 1, 1, 4)
    for layout in (kernel, np.transpose(kernel, (3, 0, 1, 2))):
        at = data.find(np.ascontiguousarray(layout).astype("<f4").tobytes())
        if at >= 0:
            break
    assert at >= 0, "the kernel's bytes are not in the flatbuffer"
    data[at : at + 4] = np.float32(np.frombuffer(data[at : at + 4], "<f4")[0] + 0.5).tobytes()
    path = tmp_path / "model.tflite"
    path.write_bytes(bytes(data))
    _failed(_validate(path, source), "litert at", "max abs diff", "exceeds")


@pytest.mark.extras
def test_litert_outputs_swapped_inside_the_file_are_caught(exported, tmp_path):
    flatbuffers = needs("flatbuffers")
    schema = needs("ai_edge_litert.schema_py_generated")
    source, files = exported
    model = schema.ModelT.InitFromPackedBuf(files["model.tflite"].read_bytes(), 0)
    outputs = model.signatureDefs[0].outputs  # name -> tensor: swap the tensors of C5 and C4
    outputs[0].tensorIndex, outputs[1].tensorIndex = outputs[1].tensorIndex, outputs[0].tensorIndex
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / "model.tflite"
    path.write_bytes(bytes(builder.Output()))
    _failed(_validate(path, source), "litert at", "output 'C")


@pytest.mark.extras
def test_litert_swapped_outputs_are_caught(exported, tmp_path):
    import keras

    from kerascut_core.surgery.export import export_litert

    source, files = exported
    model = keras.saving.load_model(files["model.keras"])
    swapped = keras.Model(model.inputs, {"C5": model.output["C4"], "C4": model.output["C5"]})
    path = export_litert(swapped, tmp_path / "model.tflite", ["C5", "C4"])
    _failed(_validate(path, source), "output 'C5'")


@pytest.mark.extras
def test_litert_wrong_input_shape_is_caught(tmp_path, exported):
    from kerascut_core.surgery import cut
    from kerascut_core.surgery.export import export_litert

    source, _ = exported
    path = export_litert(cut(_source(size=16), **SPEC), tmp_path / "model.tflite")
    _failed(_validate(path, source), "(None, 8, 8, 4)", "(None, 16, 16, 4)", "exported for other inputs")


# ---------------------------------------------------------------- no extra: one line

@pytest.mark.parametrize(("module", "fmt"), [("onnxruntime", "onnx"), ("ai_edge_litert", "litert")])
def test_a_missing_extra_is_one_line(monkeypatch, tmp_path, module, fmt):
    from kerascut_core.validation import validate

    monkeypatch.setitem(sys.modules, module, None)  # unimportable, as without the extra
    with pytest.raises(MissingExtraError) as info:
        validate(tmp_path / "model.keras", None, None, formats=[fmt])
    assert str(info.value).count("\n") == 0 and f"pip install 'kerascut[{fmt}]'" in str(info.value)
    suffix = ".onnx" if fmt == "onnx" else ".tflite"
    with pytest.raises(MissingExtraError, match=rf"kerascut\[{fmt}\]"):
        validate(tmp_path / f"model{suffix}", None, None)


@pytest.mark.parametrize(("module", "fmt"), [("tf2onnx", "onnx"), ("ai_edge_litert", "litert")])
def test_exporting_without_the_extra_writes_nothing(monkeypatch, tmp_path, module, fmt):
    from kerascut_core.surgery.export import save_candidate

    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtraError, match=rf"pip install 'kerascut\[{fmt}\]'"):
        save_candidate(object(), tmp_path, ["keras", fmt])
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- pure pieces

def test_cuda_first_only_on_a_gpu_worker_that_has_it():
    both = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert providers(both, gpu=False) == ["CPUExecutionProvider"]
    assert providers(both, gpu=True) == [
        ("CUDAExecutionProvider", {"use_tf32": "0", "cudnn_conv_algo_search": "HEURISTIC"}), "CPUExecutionProvider"]
    assert providers(["CPUExecutionProvider"], gpu=True) == ["CPUExecutionProvider"]


def test_outputs_match_by_name_and_order():
    assert match_outputs(["C4", "C5"], ["C5", "C4"], ordered=False) == ["C5", "C4"]
    assert match_outputs(["C5:0", "C4:0"], ["C5", "C4"], ordered=True) == ["C5:0", "C4:0"]
    with pytest.raises(ValidationError, match="order"):
        match_outputs(["C4", "C5"], ["C5", "C4"], ordered=True)
    with pytest.raises(ValidationError, match="lost the output names"):
        match_outputs(["output_0", "output_1"], ["C5", "C4"], ordered=False)
    with pytest.raises(ValidationError, match="renamed or dropped"):
        match_outputs(["C5"], ["C5", "C4"], ordered=False)


def test_format_tolerance_is_twice_the_noise_at_least_some_ulps_unless_the_validation_is_looser():
    atol, rtol, why = output_tolerance("onnx", 1e-6, 0.01, basis="fresh")
    assert (atol, rtol) == (2e-6, 0.0) and "2 x the noise of a fresh export" in why
    assert output_tolerance("onnx", 0.0, 2.0, basis="fresh")[:2] == (16 * 2.0**-23 * 2.0, 0.0)  # noise 0: ulps
    assert output_tolerance("litert", 0.0, 1.0, basis="self")[:2] == CEILINGS["litert"][:2]
    atol, rtol, why = output_tolerance("onnx", 0.0, 1.0, basis="ceiling", why_no_fresh="JAX cannot export")
    assert (atol, rtol) == CEILINGS["onnx"][:2] and "no fresh export to measure the noise on (JAX cannot export)" in why
    atol, rtol, why = output_tolerance("onnx", 1e-6, 1.0, basis="fresh", atol=1e-2)
    assert (atol, rtol) == (1e-2, 0.0) and why.startswith("the validation's own tolerance")


def test_config_takes_the_new_formats():
    from kerascut_core.config import BackboneConfig

    b = BackboneConfig(name="t", source="keras.applications/MobileNetV2", formats=["litert", "onnx"])
    assert b.formats == ["keras", "litert", "onnx"]


def test_the_cli_says_which_extra_in_one_line(monkeypatch, capsys, tmp_path):
    from kerascut_core.cli.app import main

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    (tmp_path / "model.onnx").write_bytes(b"x")
    assert main(["validate", str(tmp_path / "model.onnx"), "--source", "keras.applications/MobileNetV2"]) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: ") and "pip install 'kerascut[onnx]'" in errors[0]


def test_pull_one_format(tmp_path, capsys):
    from kerascut_core import open_store
    from kerascut_core.errors import ObjectNotFoundError
    from kerascut_core.publishing import commit_version, pull, stage_candidate
    from tests.publishing.test_publish import make_manifest

    store = open_store(tmp_path / "store")
    files = {}
    for name, payload in (("model.keras", b"k"), ("model.onnx", b"o"), ("model.tflite", b"t")):
        files[name] = tmp_path / name
        files[name].write_bytes(payload)
    uri = stage_candidate(store, "tiny", "v1", files)
    commit_version(store, "tiny", "v1", uri, make_manifest("tiny", "v1"))
    manifest, out = pull(f"{tmp_path / 'store'}/tiny@v1", tmp_path / "out", format="litert")
    assert {a.format for a in manifest.artifacts} == {"keras", "onnx", "litert"}
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model.tflite"]
    with pytest.raises(ObjectNotFoundError, match="'saved_model' artifact"):
        pull(f"{tmp_path / 'store'}/tiny@v1", tmp_path / "out2", format="saved_model")
    from kerascut_core.cli.app import main

    assert main(["pull", f"{tmp_path / 'store'}/tiny@v1", "--format", "onnx", "-q", "-o", str(tmp_path / "cli")]) == 0
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == ["manifest.json", "model.onnx"]


@pytest.mark.extras
def test_the_pipeline_publishes_and_pulls_each_format(tmp_path):
    needs("onnxruntime")
    needs("ai_edge_litert")
    import kerascut_core as kc
    from kerascut_core import open_store
    from kerascut_core.config import BackboneConfig
    from kerascut_core.pipeline.assemble import publish_candidate
    from kerascut_core.pipeline.candidate import cut_candidate
    from kerascut_core.pipeline.reports import validate_staged
    from kerascut_core.publishing import pull, read_manifest, stage_candidate

    source_path = tmp_path / "tiny.keras"
    _source().save(source_path)
    backbone = BackboneConfig(name="tiny", source=str(source_path), formats=["onnx", "litert"], **SPEC)
    candidate = cut_candidate(backbone, {"source": str(source_path), "options": {}}, tmp_path / "work")
    assert {"model.onnx", "model.tflite"} <= set(candidate.files)
    store = open_store(tmp_path / "store")
    uri = stage_candidate(store, "tiny", "v1", candidate.files)
    report = validate_staged(uri, backbone, {"samples": 4, "batch_size": 2})
    assert report.passed, report.failures
    assert {f.format: f.origin for f in report.formats} == {"keras": "artifact", "onnx": "artifact", "litert": "artifact"}
    publish_candidate(store, uri, backbone, "v1", "fp", candidate, report.model_dump(mode="json"))
    manifest = read_manifest(store, "tiny", "v1")
    by_format = {a.format: a for a in manifest.artifacts}
    assert by_format["onnx"].path == "model.onnx" and by_format["litert"].path == "model.tflite"
    assert len(by_format["onnx"].sha256) == 64 and len(by_format["litert"].sha256) == 64
    _, out = pull(f"{tmp_path / 'store'}/tiny@v1", tmp_path / "pulled", format="onnx")
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model.onnx"]
    assert kc.validate(out / "model.onnx", str(source_path), SPEC, samples=4, batch_size=2).passed


@pytest.mark.extras
def test_kerascut_validate_takes_an_onnx_candidate(exported, tmp_path, capsys):
    from kerascut_core.cli.app import main

    source, files = exported
    source.save(tmp_path / "source.keras")
    args = ["validate", str(files["model.onnx"]), "--source", str(tmp_path / "source.keras"), "--start", "c1",
            "--end", "C5=c2", "--end", "C4=bn", "--samples", "4", "-q"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("## kerascut validation: PASSED") and "format `onnx` (artifact): pass" in out


@pytest.mark.extras
def test_a_candidate_staged_in_s3_uses_the_file_beside_it(exported, s3_client, s3_bucket):
    source, files = exported
    for name in ("model.keras", "model.onnx"):  # no model.tflite: litert is exported from the candidate
        s3_client.upload_file(str(files[name]), s3_bucket, f"run/{name}")
    report = _validate(f"s3://{s3_bucket}/run/model.keras", source, formats=["onnx", "litert"])
    assert report.passed, report.failures
    assert {f.format: f.origin for f in report.formats} == {"keras": "artifact", "onnx": "artifact", "litert": "exported"}
