"""Memory across models: one worker refreshing 10 large backbones stays near the largest alone.

Each backbone is first refreshed alone, in its own ``kerascut run`` subprocess (fetch, cut,
stage, validate, publish: the real flow), then all of them are refreshed by one ``kerascut
run`` process with ``concurrency: 1``, the way one worker goes through a config. The peak
resident memory of each process is sampled with psutil every 20 ms (the process itself only;
Prefect's ephemeral API server runs beside it) and cross-checked with the kernel's
``ru_maxrss`` from ``wait4``.

Goal (the reliability issue): peak(all 10 in one process) <= 1.3 x max(peak of each alone).

    python -m benchmarks.run memory            # 10 large zoo models, 160x160 inputs (~15 min)
    python -m benchmarks.run memory --quick    # 4 small models, 64x64 inputs
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

__all__ = ["LARGE", "SMALL", "run"]

REPO = Path(__file__).resolve().parents[1]

LARGE = [
    "ResNet152", "ResNet152V2", "DenseNet201", "InceptionResNetV2", "Xception",
    "EfficientNetB5", "EfficientNetV2M", "ConvNeXtBase", "VGG19", "InceptionV3",
]
SMALL = ["MobileNetV2", "ResNet50", "DenseNet121", "EfficientNetB0"]
GOAL = 1.3


def _config(models: list[str], shape: int, store: Path) -> dict:
    return {
        "store": str(store),
        "concurrency": 1,
        "validation": {"samples": 2, "batch_size": 2, "atol": 0.0},
        "backbones": [
            {"name": m.lower(), "source": f"keras.applications/{m}", "weights": "none",
             "input_shape": [shape, shape, 3]}
            for m in models
        ],
    }


def _peak_rss(argv: list[str], env: dict[str, str], cwd: Path, timeout: float) -> tuple[int, int, float]:
    """Run ``argv``; return (psutil peak RSS bytes, ru_maxrss bytes, seconds)."""
    import psutil

    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        try:
            handle = psutil.Process(proc.pid)
            while not stop.is_set():
                peak = max(peak, handle.memory_info().rss)
                time.sleep(0.02)
        except psutil.Error:
            pass

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                raise TimeoutError(f"{argv} ran past {timeout}s")
            time.sleep(0.05)
    finally:
        stop.set()
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(f"kerascut run failed ({proc.returncode}): {err.strip().splitlines()[-3:]}")
    return peak, usage.ru_maxrss * 1024, time.perf_counter() - started


def _refresh(models: list[str], shape: int, work: Path, env: dict[str, str], timeout: float) -> tuple[int, int, float]:
    tag = "all" if len(models) > 1 else models[0].lower()
    config = work / f"{tag}.yaml"
    config.write_text(yaml.safe_dump(_config(models, shape, work / f"store-{tag}")))
    argv = [sys.executable, "-m", "kerascut_core", "run", str(config)]
    return _peak_rss(argv, env, work, timeout)


def run(quick: bool) -> list[dict]:
    models, shape = (SMALL, 64) if quick else (LARGE, 160)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="kc-bench-memory-") as tmp:
        work = Path(tmp)
        env = dict(os.environ, PYTHONPATH=str(REPO), PREFECT_HOME=str(work / "prefect"),
                   TF_CPP_MIN_LOG_LEVEL="2")
        env.pop("PREFECT_API_URL", None)
        alone = {}
        for model in models:
            peak, maxrss, seconds = _refresh([model], shape, work, env, timeout=1800)
            alone[model] = peak
            rows.append({"case": f"{model} alone", "metric": "peak_rss", "value": round(peak / 2**20),
                         "unit": "MiB", "ru_maxrss_mib": round(maxrss / 2**20), "seconds": round(seconds, 1)})
        peak, maxrss, seconds = _refresh(models, shape, work, env, timeout=3600)
        rows.append({"case": f"{len(models)} in one process", "metric": "peak_rss", "value": round(peak / 2**20),
                     "unit": "MiB", "ru_maxrss_mib": round(maxrss / 2**20), "seconds": round(seconds, 1)})
        largest = max(alone, key=alone.get)
        ratio = peak / alone[largest]
        rows.append({"case": f"{len(models)} in one / {largest} alone", "metric": "peak_rss_ratio",
                     "value": round(ratio, 3), "unit": "x", "goal": f"<= {GOAL}x", "ok": ratio <= GOAL})
    return rows


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
