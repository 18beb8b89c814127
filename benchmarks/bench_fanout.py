"""Fan-out: six stale backbones prepared by one CPU worker against two, as a wall-clock ratio.

One run, on a real Prefect server (``prefect server start``, SQLite) with process workers on
``kerascut-cpu`` and a config with ``prepare: {deployment: prepare-backbone/cpu}`` and
``concurrency: 6`` (so the workers, not the refresh, are the bound). Sources are MobileNetV2
files (96x96, seeded random weights) cut at six different blocks: six distinct versions, each a
real fetch, cut, save, stage, validate and publish in its own flow run process.

1. **warm-up**: one backbone into a throwaway store (disk caches, the server's first queries);
2. **two workers**: ``worker-a`` and ``worker-b`` (``--limit 1``: one flow run at a time each)
   refresh the six backbones into store B;
3. **one worker**: both are stopped; ``worker-solo`` alone (``--limit 1``) refreshes the same
   six into store A (the same versions, a fresh store: all stale again). It runs second, so warm
   caches favour it, not the figure.

**How the cores are split** (this machine has ``os.cpu_count()`` cores, recorded in the
result): with two workers each gets half, through TensorFlow's thread settings in the worker's
environment, inherited by its flow run processes: ``TF_NUM_INTRAOP_THREADS=cores/2``,
``TF_NUM_INTEROP_THREADS=1``, ``OMP_NUM_THREADS=cores/2``; the single worker gets all the
cores (``TF_NUM_INTRAOP_THREADS=cores``). Goal (issue 14): two workers take at most 0.7x the
time of one.

    python -m benchmarks.run fanout            # six backbones
    python -m benchmarks.run fanout --quick    # four
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["run"]

_ENDS = ["block_5_expand_relu", "block_8_expand_relu", "block_11_expand_relu",
         "block_13_expand_relu", "block_15_expand_relu", "out_relu"]


def _make_sources(tmp: Path) -> list[Path]:
    import keras

    paths = []
    for i in range(2):
        keras.backend.clear_session()
        keras.utils.set_random_seed(200 + i)
        path = tmp / f"mnv2-{i}.keras"
        keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3)).save(path)
        paths.append(path)
    keras.backend.clear_session()
    return paths


def _config(store: Path, sources: list[Path], n: int) -> dict[str, Any]:
    backbones = [{"name": f"mnv2-{i:02d}", "source": str(sources[i % 2]), "end": _ENDS[i % len(_ENDS)]}
                 for i in range(n)]
    return {"store": str(store), "concurrency": n, "prepare": {"deployment": "prepare-backbone/cpu"},
            "validation": {"samples": 4, "batch_size": 4}, "backbones": backbones}


def _threads(n: int) -> dict[str, str]:
    return {"TF_NUM_INTRAOP_THREADS": str(n), "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": str(n)}


def _wait_online(world: Any, names: set[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    with world.client() as client:
        while time.monotonic() < deadline:
            online = {w.name for w in client.read_workers_for_work_pool("kerascut-cpu") if w.status == "ONLINE"}
            if names <= online:
                return
            time.sleep(0.5)
    raise RuntimeError(f"workers {sorted(names)} did not come online:\n{world.logs()}")


def _refresh(world: Any, config: dict[str, Any], n: int) -> float:
    from kerascut.flows.refresh_backbones import refresh_backbones

    started = time.perf_counter()
    with world.settings():
        summary = refresh_backbones(config=config)
    seconds = time.perf_counter() - started
    if summary["published"] != n:
        raise RuntimeError(f"expected {n} published, got {summary}")
    return seconds


def run(quick: bool = False) -> list[dict[str, Any]]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for key in ("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL",
                "PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL"):
        os.environ.setdefault(key, "CRITICAL")
    from tests.reliability.prefect_world import prefect_world

    n = 4 if quick else 6
    cores = os.cpu_count() or 2
    half = max(1, cores // 2)
    with tempfile.TemporaryDirectory(prefix="kerascut-bench-fanout-") as tmp_name:
        tmp = Path(tmp_name)
        sources = _make_sources(tmp)
        with prefect_world(tmp) as world:
            world.deploy(_config(tmp / "warm", sources, 1))
            world.start_worker("worker-a", env=_threads(half), limit=1)
            world.start_worker("worker-b", env=_threads(half), limit=1)
            _wait_online(world, {"worker-a", "worker-b"})
            _refresh(world, _config(tmp / "warm", sources, 1), 1)
            two_s = _refresh(world, _config(tmp / "two", sources, n), n)

            for name in ("worker-a", "worker-b"):
                world.stop_worker(name)
            world.start_worker("worker-solo", env=_threads(cores), limit=1)
            _wait_online(world, {"worker-solo"})
            one_s = _refresh(world, _config(tmp / "one", sources, n), n)
    ratio = two_s / one_s
    split = (f"{cores} cores: two workers with TF_NUM_INTRAOP_THREADS={half} (OMP_NUM_THREADS={half}) each, "
             f"the single worker with {cores}; TF_NUM_INTEROP_THREADS=1; --limit 1 per worker")
    return [
        {"case": f"{n} stale backbones, one worker", "metric": "time", "value": round(one_s, 2), "unit": "s"},
        {"case": f"{n} stale backbones, two workers", "metric": "time", "value": round(two_s, 2), "unit": "s"},
        {"case": "two workers / one worker", "metric": "ratio", "value": round(ratio, 3), "unit": "x",
         "goal": "<= 0.7x", "ok": ratio <= 0.7, "cores_split": split},
    ]
