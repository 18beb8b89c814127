"""``pyramid()`` on the largest keras.applications models, against ``cut_points``, both cold.

For each model (NASNetLarge and EfficientNetV2L, about 1,000 layers each; MobileNetV2 and
ResNet50 with ``--quick``):

- ``cut_points(model)`` cold (no cached graph view);
- ``pyramid(model)`` cold (no cached graph view or strides): the graph view, the dominators,
  one symbolic shape-inference pass at the probe size, and the stages;
- goal: ``pyramid`` cold within 2x ``cut_points`` cold.

Times are the best of several repeats.

    python -m benchmarks.run pyramid            # NASNetLarge, EfficientNetV2L
    python -m benchmarks.run pyramid --quick    # MobileNetV2, ResNet50
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__all__ = ["run"]

FULL = ("NASNetLarge", "EfficientNetV2L")
QUICK = ("MobileNetV2", "ResNet50")
RATIO_GOAL = 2.0
#: NASNet has no valid cut point between its stem and its last cell: only P5 (the cost is the
#: same: every stage is found either way)
LEVELS = {"NASNetLarge": [5]}


def _best(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def _bench_model(name: str, repeats: int) -> list[dict[str, Any]]:
    import keras

    from kerascut_core.surgery import cut_points, graph, pyramid

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, name)(weights=None)
    case = f"{name} ({len(graph.graph_view(model).ops)} ops)"

    def taps(m: Any) -> Any:
        return pyramid(m, levels=LEVELS.get(name))

    def cold(fn: Callable[[Any], Any]) -> Callable[[], Any]:
        def call() -> Any:
            vars(model).pop(graph._VIEW_ATTR, None)  # the view (and the strides keyed on it) go
            gc.collect()
            return fn(model)
        return call

    cold(taps)()  # Keras's own first-call costs (shape inference warm-up) are not the rule's
    points_s = _best(cold(cut_points), repeats)
    pyramid_s = _best(cold(taps), repeats)
    ratio = pyramid_s / points_s
    return [
        {"case": case, "metric": "cut_points cold", "value": round(points_s * 1000, 1), "unit": "ms",
         "goal": None, "ok": None},
        {"case": case, "metric": "pyramid cold", "value": round(pyramid_s * 1000, 1), "unit": "ms",
         "goal": None, "ok": None},
        {"case": case, "metric": "pyramid / cut_points", "value": round(ratio, 2), "unit": "x",
         "goal": f"<= {RATIO_GOAL}", "ok": ratio <= RATIO_GOAL},
    ]


def run(quick: bool) -> list[dict[str, Any]]:
    """Benchmark rows for ``benchmarks.run`` (see the module docstring)."""
    rows: list[dict[str, Any]] = []
    for name in QUICK if quick else FULL:
        rows += _bench_model(name, 3 if quick else 5)
    return rows


if __name__ == "__main__":
    import sys

    from benchmarks.run import main

    sys.exit(main(["pyramid", *sys.argv[1:]]))
