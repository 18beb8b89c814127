"""Each published format: its export time and its validation time, against keras-only validation.

Issue 15 asks, for each format, for the export plus validation time against the ``keras``-only
validation of the same cut. The cut is MobileNetV2 at 96x96 (``weights="none"``), from
``block_3_expand_relu`` to ``{C4: block_13_expand_relu, C5: out_relu}``. With random weights
the BatchNorm statistics (mean 0, variance 1) shrink the activations layer after layer (to
~1e-10 at ``out_relu``), which would make any absolute difference look tiny; so each
BatchNorm's statistics are first set to those of a batch of random inputs (one training-mode
call, momentum 0), which keeps the activations O(1), as with trained weights. Rows, per format:

- ``export``: seconds to write the format from the cut (``save_candidate``; for ``keras`` the
  save and the reload check, for the others the export alone);
- ``validate``: a whole ``kc.validate(formats=[fmt])`` call (the keras checks included), and
  ``format check`` the part spent on the format (export-free: the file is beside the candidate);
- ``(export + validate) / keras-only validate``: the cost of publishing the format, in units of
  the validation every version already pays;
- ``max abs diff vs source`` and the format's tolerance, and that difference over the largest
  |activation| of the outputs (the elementwise relative difference is unbounded: a 0 activation
  comes back from the runtimes as a tiny non-zero);
- for ``onnx`` and ``litert``: the runtime's noise (a fresh export of the candidate against the
  source), the tolerance it gives, the weights bitwise equal to the fresh export's, and one
  weight of the file changed by 1e-4 (relative): whether validation rejects it, and how far it
  moves the outputs (against the noise).

    python -m benchmarks.run formats           # 64 samples, batch 16, best of 2
    python -m benchmarks.run formats --quick   # 16 samples, one repeat
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SPEC = {"start": "block_3_expand_relu", "end": {"C4": "block_13_expand_relu", "C5": "out_relu"}}
FORMATS = ("keras", "saved_model", "onnx", "litert")


def _timed(fn: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def _case(size: int, samples: int, batch_size: int, repeats: int) -> list[dict]:
    import keras

    import kerascut_core as kc
    from kerascut_core.surgery.export import save_candidate

    keras.backend.clear_session()
    source = _calibrated(kc.load_model("keras.applications/MobileNetV2", weights="none", input_shape=(size, size, 3)))
    model = kc.cut(source, **SPEC)
    case = f"MobileNetV2 {size}x{size}, {samples} samples, batch {batch_size}"
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        exports: dict[str, float] = {}
        for fmt in FORMATS:  # each format into its own directory, timed alone
            directory = Path(tmp) / fmt
            directory.mkdir()
            keras_only, _ = _timed(lambda d=directory: save_candidate(model, d, ["keras"], graph=False))
            if fmt == "keras":
                exports[fmt] = keras_only
                continue
            both, _ = _timed(lambda d=directory, f=fmt: save_candidate(model, d, ["keras", f], graph=False))
            exports[fmt] = max(both - keras_only, 0.0)  # the format's own export
        best: dict[str, tuple[float, Any]] = {}
        for _ in range(repeats):  # interleaved, so machine noise hits every format alike
            for fmt in FORMATS:
                path = Path(tmp) / fmt / "model.keras"
                formats = [] if fmt == "keras" else [fmt]
                seconds, report = _timed(lambda p=path, f=formats: kc.validate(
                    p, source, SPEC, samples=samples, batch_size=batch_size, formats=f))
                if not report.passed:
                    raise RuntimeError(f"{fmt}: validation failed: {report.failures}")
                if fmt not in best or seconds < best[fmt][0]:
                    best[fmt] = (seconds, report)
        mutants = {
            fmt: _mutant(fmt, Path(tmp) / fmt / name, Path(tmp) / f"mutant-{name}")
            for fmt, name in (("onnx", "model.onnx"), ("litert", "model.tflite"))
        }
        keras_validate = best["keras"][0]
        scale = _scale(source, samples)
        rows += _rows(case, best, exports, keras_validate, scale, mutants, source, samples, batch_size)
    keras.backend.clear_session()
    return rows


def _rows(case: str, best: dict, exports: dict, keras_validate: float, scale: float, mutants: dict,
          source: Any, samples: int, batch_size: int) -> list[dict]:
    rows: list[dict] = []
    for fmt in FORMATS:
        seconds, report = best[fmt]
        check = next(f for f in report.formats if f.format == fmt)
        label = f"{case}: {fmt}"
        rows += [
            {"case": label, "metric": "export", "value": round(exports[fmt], 3), "unit": "s"},
            {"case": label, "metric": "validate", "value": round(seconds, 3), "unit": "s"},
            {"case": label, "metric": "format check", "value": round(report.timings.formats, 3), "unit": "s"},
            {"case": label, "metric": "(export + validate) / keras-only validate",
             "value": round((exports[fmt] + seconds) / keras_validate, 3), "unit": "x"},
        ]
        diff = check.max_abs_diff_vs_source if check.max_abs_diff_vs_source is not None else check.max_abs_diff
        rows.append({"case": label, "metric": "max abs diff vs source", "value": diff, "unit": "",
                     "goal": f"<= atol {check.atol:g}" if check.atol is not None else "exact",
                     "ok": bool(check.passed)})
        if fmt in ("onnx", "litert"):
            rows.append({"case": label, "metric": "max abs diff / max |source|", "value": diff / scale, "unit": ""})
            rows += _noise_rows(label, check)
            rows += _mutation_rows(label, fmt, mutants[fmt], source, samples, batch_size)
    return rows


def _noise_rows(label: str, check: Any) -> list[dict]:
    """The runtime's noise, the tolerance it gives, and the weights against the fresh export."""
    w = check.weights
    return [
        {"case": label, "metric": "noise (fresh export vs source)", "value": max(o.noise for o in check.outputs), "unit": ""},
        {"case": label, "metric": "tolerance from the noise (atol)", "value": max(o.atol for o in check.outputs), "unit": ""},
        {"case": label, "metric": "weight tensors bitwise equal to a fresh export", "value": w.bitwise_equal,
         "unit": f"of {w.tensors}", "ok": bool(w.passed)},
    ]


def _mutation_rows(label: str, fmt: str, path: Path, source: Any, samples: int, batch_size: int) -> list[dict]:
    """One weight of ``path`` changed by 1e-4: rejected? and how far the outputs moved."""
    import kerascut_core as kc

    report = kc.validate(path, source, SPEC, samples=samples, batch_size=batch_size)
    check = report.formats[0]
    moved = max(o.max_abs_diff for o in check.outputs)
    noise = max(o.noise for o in check.outputs)
    return [
        {"case": label, "metric": "one weight +1e-4: rejected", "value": not report.passed, "unit": "",
         "ok": not report.passed},
        {"case": label, "metric": "one weight +1e-4: max abs diff / noise", "value": round(moved / noise, 2) if noise else None,
         "unit": "x"},
    ]


def _mutant(fmt: str, path: Path, target: Path) -> Path:
    """``path`` with the first value of its largest float weight changed by 1e-4 (relative)."""
    import numpy as np

    if fmt == "onnx":
        import onnx

        proto = onnx.load(str(path))
        init = max((i for i in proto.graph.initializer if i.data_type == 1), key=lambda i: np.prod(i.dims))
        array = onnx.numpy_helper.to_array(init).copy()
        array.flat[0] = np.float32(array.flat[0] * (1 + 1e-4))
        init.CopyFrom(onnx.numpy_helper.from_array(array, init.name))
        onnx.save(proto, str(target))
        return target
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    tensors = [t for t in model.subgraphs[0].tensors if t.type == 0 and model.buffers[t.buffer].data is not None]
    buffer = model.buffers[max(tensors, key=lambda t: len(model.buffers[t.buffer].data)).buffer]
    values = np.frombuffer(bytes(np.asarray(buffer.data, dtype=np.uint8)), "<f4").copy()
    values[0] = np.float32(values[0] * (1 + 1e-4))
    buffer.data = np.frombuffer(values.astype("<f4").tobytes(), np.uint8)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    target.write_bytes(bytes(builder.Output()))
    return target


def _calibrated(source: Any) -> Any:
    """``source`` with each BatchNorm's statistics those of one batch of random inputs."""
    import keras
    import numpy as np

    x = np.random.default_rng(1).uniform(-1, 1, (32, *source.input_shape[1:])).astype("float32")
    for layer in source.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    source(x, training=True)  # moving statistics <- this batch's (momentum 0)
    return source


def _scale(source: Any, samples: int) -> float:
    """The largest |activation| of the cut's outputs on the validation's inputs."""
    import numpy as np

    import kerascut_core as kc
    from kerascut_core.validation.inputs import random_inputs

    probe = kc.cut(source, end=list(SPEC["end"].values()))
    outputs = probe(random_inputs(source, samples, seed=0)[0], training=False)
    return float(max(np.abs(np.asarray(o)).max() for o in outputs))


def run(quick: bool) -> list[dict]:
    """Benchmark rows (see the module docstring)."""
    if quick:
        return _case(96, samples=16, batch_size=16, repeats=1)
    return _case(96, samples=64, batch_size=16, repeats=2)
