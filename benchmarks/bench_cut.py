"""Cutting the largest keras.applications models: kerascut against plain Keras, in one run.

For each model (NASNetLarge and EfficientNetV2L; MobileNetV2 and ResNet50 with ``--quick``):

- ``cut_points`` cold (no cached graph view) and warm; goal: under 20 ms cold;
- ``cut(model, start=S)`` against plain ``keras.Model(S_tensor, model.output)`` (the same cut,
  the way plain Keras does it, leaving its nodes on the source) and against
  ``keras.models.clone_model(model)`` (the other plain way to get a model that does not touch
  the source); goal: cut within 1.5x plain Keras;
- peak Python allocations (tracemalloc) while cutting, for kerascut and plain Keras.

Times are the best of several repeats; S is a cut point a quarter of the way in.

    python -m benchmarks.run cut            # NASNetLarge, EfficientNetV2L
    python -m benchmarks.run cut --quick    # MobileNetV2, ResNet50
"""

from __future__ import annotations

import gc
import os
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__all__ = ["run"]

FULL = ("NASNetLarge", "EfficientNetV2L")
QUICK = ("MobileNetV2", "ResNet50")
CUT_POINTS_GOAL_MS = 20.0
CUT_RATIO_GOAL = 1.5


def _best(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def _peak_mib(fn: Callable[[], Any]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20


def _row(case: str, metric: str, value: float, unit: str, goal: str | None = None,
         ok: bool | None = None) -> dict[str, Any]:
    return {"case": case, "metric": metric, "value": round(value, 4), "unit": unit,
            "goal": goal, "ok": ok}


def _bench_model(name: str, quick: bool) -> list[dict[str, Any]]:
    import keras

    from kerascut_core.surgery import cut, cut_points, graph

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, name)(weights=None)
    view = graph.graph_view(model)
    case = f"{name} ({len(view.ops)} ops)"

    def cold_points() -> list[str]:
        vars(model).pop(graph._VIEW_ATTR, None)  # the view is cached on the model
        return cut_points(model)

    points = cold_points()
    top_level = [p for p in points if "/" not in p and p != points[0]]
    start = top_level[len(top_level) // 4]
    start_tensor = view.tensors[view.resolve(start)].keras_tensor
    cut_points(model)  # warm the view again

    repeats = 3 if quick else 5
    cold_ms = _best(cold_points, 20) * 1e3
    warm_ms = _best(lambda: cut_points(model), 20) * 1e3
    t_cut = _best(lambda: cut(model, start=start), repeats)
    t_plain = _best(lambda: keras.Model(start_tensor, model.output), repeats)
    t_clone = _best(lambda: keras.models.clone_model(model), 1)
    mem_cut = _peak_mib(lambda: cut(model, start=start))
    mem_plain = _peak_mib(lambda: keras.Model(start_tensor, model.output))

    ratio = t_cut / t_plain
    rows = [
        _row(case, "cut_points cold", cold_ms, "ms", f"< {CUT_POINTS_GOAL_MS:g} ms",
             cold_ms < CUT_POINTS_GOAL_MS),
        _row(case, "cut_points warm", warm_ms, "ms"),
        _row(case, f"cut start={start}", t_cut, "s"),
        _row(case, "plain keras.Model(t_in, t_out)", t_plain, "s"),
        _row(case, "keras.models.clone_model", t_clone, "s"),
        _row(case, "cut / plain keras", ratio, "x", f"<= {CUT_RATIO_GOAL:g}x",
             ratio <= CUT_RATIO_GOAL),
        _row(case, "cut / clone_model", t_cut / t_clone, "x"),
        _row(case, "peak alloc cut", mem_cut, "MiB"),
        _row(case, "peak alloc plain keras", mem_plain, "MiB"),
        _row(case, "peak alloc cut / plain", mem_cut / max(mem_plain, 1e-9), "x"),
    ]
    keras.backend.clear_session()
    gc.collect()
    return rows


def run(quick: bool) -> list[dict[str, Any]]:
    """Benchmark rows for ``benchmarks.run`` (see the module docstring)."""
    rows: list[dict[str, Any]] = []
    for name in QUICK if quick else FULL:
        rows += _bench_model(name, quick)
    return rows


if __name__ == "__main__":
    import sys

    from benchmarks.run import main

    sys.exit(main(["cut", *sys.argv[1:]]))
