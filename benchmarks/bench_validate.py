"""Validation time against one source forward plus one candidate forward, at the same batch.

Goal (issue #4): a whole ``validate()`` call, reloading the candidate from its bytes, costs at
most 1.3x what running the source once and the candidate once costs. The one-pass probe is
what makes that possible: the source runs once and yields the start and end activations
together, instead of once up to the start and once more up to the end.

Rows, per case (the fastest of interleaved repeats, all in one run):

- ``validate / (source + candidate)``: the goal;
- ``probe / source``: the probe pass against a plain source forward (about 1x, less when the
  cut ends before the head);
- ``validate less reload / (source + candidate)``: the same without ``keras.saving.load_model``
  of the candidate, a fixed cost that the issue requires (the artifact is checked from its
  bytes) and that no number of samples changes;
- ``fixed overhead``: seconds of the call not spent in the two forwards (reload from bytes,
  plan, probe model, weights). It does not grow with ``samples``, so the ratio falls towards 1
  as the number of samples grows; on a small CPU it is mostly ``keras.saving.load_model``.

    python -m benchmarks.run validate           # MobileNetV2 at 224 (128 samples), ResNet50 at 160 (64)
    python -m benchmarks.run validate --quick   # MobileNetV2 at 160, 32 samples: a smoke run
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

GOAL = 1.3

CASES = {
    "MobileNetV2": {
        "start": "block_3_expand_relu",
        "end": {"C4": "block_13_expand_relu", "C5": "out_relu"},
    },
    "ResNet50": {"end": {"C3": "conv3_block4_out", "C4": "conv4_block6_out", "C5": "conv5_block3_out"}},
}


def _timed(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _case(name: str, size: int, samples: int, batch_size: int, repeats: int) -> list[dict]:
    import keras

    import kerascut_core as kc
    from kerascut_core.validation.forward import forward_fn, probe_model, run_batched
    from kerascut_core.validation.inputs import random_inputs

    keras.backend.clear_session()
    spec = CASES[name]
    source = kc.load_model(f"keras.applications/{name}", weights="none", input_shape=(size, size, 3))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        kc.cut(source, **spec).save(path)
        candidate = keras.saving.load_model(path, compile=False)
        inputs = random_inputs(source, samples, seed=0)
        plan = kc.plan_cut(source, **spec)
        probe, index = probe_model(source, plan)
        starts = [run_batched(forward_fn(probe), inputs, batch_size)[index[a]] for a in plan.inputs]

        source_fwd = forward_fn(source)
        candidate_fwd = forward_fn(candidate, names=list(plan.outputs))
        probe_fwd = forward_fn(probe)
        # warm up every path once (first calls allocate and pick kernels)
        source_fwd([a[:batch_size] for a in inputs])
        probe_fwd([a[:batch_size] for a in inputs])
        candidate_fwd([a[:batch_size] for a in starts])

        t_source, t_candidate, t_probe, t_validate, t_reload = [], [], [], [], []
        for _ in range(repeats):  # interleaved, so machine noise hits every measurement alike
            t_source.append(_timed(lambda: run_batched(source_fwd, inputs, batch_size)))
            t_candidate.append(_timed(lambda: run_batched(candidate_fwd, starts, batch_size)))
            t_probe.append(_timed(lambda: run_batched(probe_fwd, inputs, batch_size)))
            report = None

            def run() -> None:
                nonlocal report
                report = kc.validate(path, source, spec, samples=samples, batch_size=batch_size)

            t_validate.append(_timed(run))
            assert report is not None and report.passed, report and report.failures
            t_reload.append(report.timings.reload)

    # the fastest of the repeats: on a shared machine noise only ever adds time
    src, cand, val, prb = min(t_source), min(t_candidate), min(t_validate), min(t_probe)
    reload = statistics.median(t_reload)
    case = f"{name} {size}x{size}, {samples} samples, batch {batch_size}"
    ratio = val / (src + cand)
    keras.backend.clear_session()
    return [
        {"case": case, "metric": "validate / (source + candidate)", "value": round(ratio, 3),
         "unit": "x", "goal": f"<= {GOAL}x", "ok": ratio <= GOAL},
        {"case": case, "metric": "probe / source", "value": round(prb / src, 3), "unit": "x"},
        {"case": case, "metric": "validate", "value": round(val, 3), "unit": "s"},
        {"case": case, "metric": "source + candidate forward", "value": round(src + cand, 3), "unit": "s"},
        {"case": case, "metric": "validate less reload / (source + candidate)",
         "value": round((val - reload) / (src + cand), 3), "unit": "x"},
        {"case": case, "metric": "reload candidate from bytes", "value": round(reload, 3), "unit": "s"},
        {"case": case, "metric": "fixed overhead", "value": round(val - prb - cand, 3), "unit": "s"},
    ]


def run(quick: bool) -> list[dict]:
    """Benchmark rows (see the module docstring)."""
    if quick:
        return _case("MobileNetV2", 160, samples=32, batch_size=16, repeats=1)
    return _case("MobileNetV2", 224, samples=128, batch_size=32, repeats=2) + _case(
        "ResNet50", 160, samples=64, batch_size=32, repeats=2
    )
