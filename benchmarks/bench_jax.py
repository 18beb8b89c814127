"""Validation of the same cut on the JAX backend against the TensorFlow backend.

Goal (issue #15): ``validate()`` under ``KERAS_BACKEND=jax`` takes at most 1.5x the time it
takes under ``KERAS_BACKEND=tensorflow``, on the same cut, machine and inputs.

Each measurement is a fresh subprocess with ``KERAS_BACKEND`` set (a backend is chosen once per
process), as ``kerascut validate`` and a Prefect task run: it builds the source (``weights:
none``), cuts and saves it, then times the process's first ``validate()`` (``cold``, what the CLI
pays: JAX's compilation included) and a second one (``warm``). Each case has its own
``KERASCUT_CACHE_DIR``, so JAX's persistent compilation cache (validation/forward.py) is empty
for the first JAX run and holds that cut's compiled forwards for the second. Rows, per case:

- ``jax / tensorflow (the same cut again: compile cache warm)``: the goal, as a refresh or a
  rerun validates; ``(first validation of the cut: cache empty)``: the goal too, the worst case;
- ``jax eager / tensorflow (before the fix)``: JAX's op-by-op eager forwards, the code before
  the jit (``forward._jax_jit`` bypassed), for the record; and the seconds behind them.

Measured on two shared cores (benchmarks/results/jax.json), cache warm / empty / eager before:
MobileNetV2 at 224, 8 samples: 1.39x / 2.45x / 4.9x; ResNet50 at 160: 1.05x / 1.49x / 2.2x;
MobileNetV2 at 224, 32 samples: 2.07x / 2.32x / 4.3x (7.4-8.5x eager on a busier run). The
cause of the eager gap was compiling every op at every shape. What is left is XLA:CPU's kernels,
slower than TensorFlow's oneDNN ones (a 3x3 depthwise convolution on 16x56x56x144: 170 ms
against 6 ms, which is why MobileNetV2 with more samples stays at 2x), and, with an empty
cache, one compile each of the probe and the candidate (0.5-1.8 s).

    python -m benchmarks.run jax            # MobileNetV2 at 224 and ResNet50 at 160: 8 samples (the
                                            # CLI default); MobileNetV2 with 32
    python -m benchmarks.run jax --quick    # MobileNetV2 at 160, 8 samples
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 1.5

CUTS = {
    "MobileNetV2": {"start": "block_3_expand_relu", "end": {"C4": "block_13_expand_relu", "C5": "out_relu"}},
    "ResNet50": {"end": {"C3": "conv3_block4_out", "C4": "conv4_block6_out", "C5": "conv5_block3_out"}},
}
BACKENDS = {"tensorflow": "tensorflow", "jax": "jax", "jax-eager": "jax"}


def _worker(mode: str, name: str, size: int, samples: int, batch_size: int) -> dict:
    """One measurement, in this (fresh) process: cold and warm ``validate()`` seconds."""
    import kerascut_core as kc

    if mode == "jax-eager":  # the code before the fix: no jax.jit, op-by-op eager dispatch
        from kerascut_core.validation import forward

        forward._jax_jit = lambda model, pack, call: call  # type: ignore[attr-defined]
    spec = CUTS[name]
    source = kc.load_model(f"keras.applications/{name}", weights="none", input_shape=(size, size, 3))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        kc.cut(source, **spec).save(path)
        seconds = []
        for _ in range(2):
            started = time.perf_counter()
            report = kc.validate(path, source, spec, samples=samples, batch_size=batch_size)
            seconds.append(time.perf_counter() - started)
            if not report.passed:
                raise SystemExit(f"validation failed under {mode}: {report.failures}")
    return {"cold": seconds[0], "warm": seconds[1], "device": report.device.model_dump() if report.device else None}


def _measure(mode: str, name: str, size: int, samples: int, batch_size: int, cache: str) -> dict:
    env = dict(os.environ, KERAS_BACKEND=BACKENDS[mode], TF_CPP_MIN_LOG_LEVEL="2", KERASCUT_CACHE_DIR=cache)
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    code = f"from benchmarks.bench_jax import _worker; import json; print(json.dumps(_worker({mode!r}, {name!r}, {size}, {samples}, {batch_size})))"
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"the {mode} worker failed: {out.stderr[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _case(name: str, size: int, samples: int, batch_size: int, repeats: int = 2) -> list[dict]:
    runs: dict[str, list[dict]] = {mode: [] for mode in BACKENDS}
    with tempfile.TemporaryDirectory() as cache:  # JAX's compilation cache: empty for the first run
        for _ in range(repeats):  # interleaved, so machine noise hits every backend alike
            for mode in BACKENDS:
                runs[mode].append(_measure(mode, name, size, samples, batch_size, cache))
    tf = min(r["cold"] for r in runs["tensorflow"])
    first, again = runs["jax"][0]["cold"], min(r["cold"] for r in runs["jax"][1:])
    eager = min(r["cold"] for r in runs["jax-eager"])
    case = f"{name} {size}x{size} {'+'.join(CUTS[name]['end'])}, {samples} samples, batch {batch_size}"
    rows = [
        {"case": case, "metric": "jax / tensorflow (the same cut again: compile cache warm)",
         "value": round(again / tf, 3), "unit": "x", "goal": f"<= {GOAL}x", "ok": again / tf <= GOAL},
        {"case": case, "metric": "jax / tensorflow (first validation of the cut: cache empty)",
         "value": round(first / tf, 3), "unit": "x", "goal": f"<= {GOAL}x", "ok": first / tf <= GOAL},
        {"case": case, "metric": "jax eager / tensorflow (before the fix)", "value": round(eager / tf, 3), "unit": "x"},
        {"case": case, "metric": "validate tensorflow", "value": round(tf, 3), "unit": "s"},
        {"case": case, "metric": "validate jax, cache empty", "value": round(first, 3), "unit": "s"},
        {"case": case, "metric": "validate jax, cache warm", "value": round(again, 3), "unit": "s"},
        {"case": case, "metric": "validate jax eager", "value": round(eager, 3), "unit": "s"},
        {"case": case, "metric": "device (jax)", "value": runs["jax"][0]["device"]["name"], "unit": ""},
    ]
    return rows


def run(quick: bool) -> list[dict]:
    """Benchmark rows (see the module docstring)."""
    if quick:
        return _case("MobileNetV2", 160, samples=8, batch_size=8)
    return (
        _case("MobileNetV2", 224, samples=8, batch_size=8)
        + _case("ResNet50", 160, samples=8, batch_size=8)
        + _case("MobileNetV2", 224, samples=32, batch_size=16)
    )
