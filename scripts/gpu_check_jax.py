"""The JAX-backend GPU check: cut and validate one zoo model on the GPU, with TensorFlow blocked.

Run by ``scripts/gpu_check_jax.sh`` (which installs keras and kerascut's pure-Python
dependencies from the wheels in ``.gpu-wheels/``) on a machine with JAX+CUDA and no TensorFlow;
``--cpu-ok`` runs the same steps on a CPU (the dry run CI's tests use). Steps, each timed:

1. ``KERAS_BACKEND=jax``, ``import tensorflow`` blocked: the check proves the core needs none;
2. build the source offline (``weights: none``), cut it, save ``model.keras``;
3. ``validate(..., require_gpu=True)``: the device the report names, the verdict, max abs diff,
   and (on a GPU) kerascut's throughput rows;
4. the candidate's items/s through kerascut's forward (one ``jax.jit``) against
   ``model.predict`` at the same batch size.

Prints the report and a summary, and writes ``gpu_check_jax.json`` to ``--out`` (default
``$OUT`` when set, else the current directory). Exit status 0 when validation passed.

    KERAS_BACKEND=jax python scripts/gpu_check_jax.py --cpu-ok --size 96 --samples 4  # a CPU dry run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CUTS = {
    "MobileNetV2": {"start": "block_3_expand_relu", "end": {"C4": "block_13_expand_relu", "C5": "out_relu"}},
    "ResNet50": {"end": {"C3": "conv3_block4_out", "C4": "conv4_block6_out", "C5": "conv5_block3_out"}},
}


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(CUTS), default="ResNet50")
    parser.add_argument("--size", type=int, default=224, help="input height and width (default 224)")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--atol", type=float, default=0.0, help="tolerance; 0 (exact) on one device")
    parser.add_argument("--cpu-ok", action="store_true", help="validate on CPU when there is no GPU (dry run)")
    parser.add_argument("--out", default=os.environ.get("OUT") or ".", help="folder for gpu_check_jax.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    os.environ["KERAS_BACKEND"] = "jax"
    sys.modules["tensorflow"] = None  # type: ignore[assignment]  # `import tensorflow` now fails
    sys.path.insert(0, str(ROOT))
    times: dict[str, float] = {}
    started = time.perf_counter()

    import jax
    import numpy as np

    import kerascut_core as kc
    from kerascut_core.validation import device
    from kerascut_core.validation.forward import forward_fn, probe_model, run_batched
    from kerascut_core.validation.inputs import random_inputs

    times["import"] = time.perf_counter() - started
    print(f"jax {jax.__version__}, devices {jax.devices()}, GPUs {device.accelerators('jax')}", flush=True)
    device.prepare(require_gpu=not args.cpu_ok)  # a CPU-only machine stops here, before any build
    spec = CUTS[args.model]
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        source = kc.load_model(f"keras.applications/{args.model}", weights="none",
                               input_shape=(args.size, args.size, 3))
        path = Path(tmp) / "model.keras"
        kc.cut(source, **spec).save(path)
        times["build and cut"] = time.perf_counter() - t

        t = time.perf_counter()
        report = kc.validate(path, source, spec, samples=args.samples, batch_size=args.batch_size,
                             atol=args.atol, require_gpu=not args.cpu_ok)
        times["validate"] = time.perf_counter() - t
        print(report.to_markdown(), flush=True)

        t = time.perf_counter()
        candidate = __import__("keras").saving.load_model(path, compile=False)
        plan = kc.plan_cut(source, **spec)
        probe, index = probe_model(source, plan)
        inputs = random_inputs(source, args.batch_size, seed=0)
        starts = [run_batched(forward_fn(probe), inputs, args.batch_size)[index[a]] for a in plan.inputs]
        ours = forward_fn(candidate, names=list(plan.outputs))
        predict = lambda arrays: candidate.predict(arrays[0], batch_size=args.batch_size, verbose=0)  # noqa: E731
        rates = {
            "kerascut forward (jax.jit)": device.measure_throughput(ours, starts, batch_size=args.batch_size),
            "model.predict": device.measure_throughput(
                lambda a: [np.asarray(x) for x in jax.tree_util.tree_leaves(predict(a))], starts,
                batch_size=args.batch_size),
        }
        times["throughput"] = time.perf_counter() - t
    times["total"] = time.perf_counter() - started
    info = report.device
    summary = {
        "passed": report.passed,
        "max_abs_diff": report.max_abs_diff,
        "failures": report.failures,
        "device": info.model_dump() if info else None,
        "model": args.model, "size": args.size, "samples": args.samples, "batch_size": args.batch_size,
        "validate_throughput": [r.model_dump() for r in report.throughput],
        "candidate_items_per_s": rates,
        "vs_predict": rates["kerascut forward (jax.jit)"] / rates["model.predict"],
        "tensorflow_imported": sys.modules.get("tensorflow") is not None,
        "seconds": times,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check_jax.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(f"device: {info.kind.upper() if info else '?'} {info.name if info else '?'} "
          f"(backend {info.backend if info else '?'}, {info.gpu_count if info else 0} GPU)")
    for label, rate in rates.items():
        print(f"candidate items/s at batch {args.batch_size}: {rate:10.1f}  {label}")
    print(f"kerascut forward / model.predict: {summary['vs_predict']:.2f}x")
    print("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in times.items()))
    print("PASSED" if report.passed else f"FAILED: {report.failures}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
