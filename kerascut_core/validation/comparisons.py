"""Comparisons: each candidate output against the source's activation at the same address.

Elementwise ``|candidate - source| <= atol + rtol * |source|``; the report keeps the max abs
and the max relative diff of each output, and NaN or Inf is a failure whatever the tolerance.
On the same device and dtype the difference is exactly 0, the default tolerance.

    >>> import numpy as np
    >>> compare(np.array([1.0, 2.0]), np.array([1.0, 2.0]), 0.0, 0.0)
    (0.0, 0.0, 0, 0, True)
    >>> max_diff([0.0, float("nan"), 1.0])
    nan
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from kerascut_core.validation.forward import forward_fn, run_batched
from kerascut_core.validation.messages import one_line, shape_text
from kerascut_core.validation.report import OutputCheck

if TYPE_CHECKING:
    from kerascut_core.validation.state import Run

__all__ = ["check_numbers", "compare", "compare_outputs", "max_diff"]


def max_diff(values: Iterable[float]) -> float:
    values = list(values)
    if any(math.isnan(v) for v in values):
        return math.nan
    return max(values)


def compare(actual: Any, expected: Any, atol: float, rtol: float) -> tuple[float, float, int, int, bool]:
    """Max abs diff, max relative diff, NaN count, Inf count and the verdict for one output."""
    import numpy as np

    a, e = np.asarray(actual), np.asarray(expected)
    if (a.dtype == e.dtype and a.dtype.kind == "f" and a.shape == e.shape
            and np.array_equal(a, e) and np.isfinite(a).all()):
        # the usual verdict of an exact cut, in two passes instead of ten float64 ones: equal
        # finite arrays differ by exactly 0 everywhere (anything else takes the full path below)
        return 0.0, 0.0, 0, 0, True
    actual64 = a.astype(np.float64)
    expected64 = e.astype(np.float64)
    nan = int(np.isnan(actual64).sum() + np.isnan(expected64).sum())
    inf = int(np.isinf(actual64).sum() + np.isinf(expected64).sum())
    if actual64.size == 0:
        return 0.0, 0.0, nan, inf, nan == 0 and inf == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.abs(actual64 - expected64)
        scale = np.abs(expected64)
        rel = np.where(diff == 0, 0.0, diff / scale)
    max_abs = float(np.nan if np.isnan(diff).any() else diff.max())
    max_rel = float(np.nan if np.isnan(rel).any() else rel.max())
    within = bool(np.all(diff <= atol + rtol * scale))
    return max_abs, max_rel, nan, inf, within and nan == 0 and inf == 0


def compare_outputs(
    plan: Any, produced: list[Any], ends: list[Any], atol: float, rtol: float, run: Run
) -> list[OutputCheck]:
    rows = []
    if len(produced) != len(ends):
        run.fail(f"Expected the candidate to return {len(ends)} outputs. Received {len(produced)}.")
    for (name, address), actual, expected in zip(plan.outputs.items(), produced, ends, strict=False):
        shape = [None, *expected.shape[1:]]
        if actual.shape != expected.shape:
            run.fail(
                f"output {name!r}: expected shape {shape_text(shape)}, received "
                f"{shape_text([None, *actual.shape[1:]])}"
            )
            rows.append(
                OutputCheck(
                    name=name, address=address, shape=shape, dtype=str(actual.dtype),
                    max_abs_diff=math.inf, max_rel_diff=math.inf, passed=False,
                )
            )
            continue
        max_abs, max_rel, nan, inf, ok = compare(actual, expected, atol, rtol)
        if nan or inf:
            run.fail(f"output {name!r}: {nan} NaN and {inf} Inf values (never allowed)")
        elif not ok:
            run.fail(
                f"output {name!r}: max abs diff {max_abs:.3g} (max rel diff {max_rel:.3g}) "
                f"exceeds atol={atol:g}, rtol={rtol:g}"
            )
        rows.append(
            OutputCheck(
                name=name, address=address, shape=shape, dtype=str(actual.dtype),
                max_abs_diff=max_abs, max_rel_diff=max_rel, nan_count=nan, inf_count=inf, passed=ok,
            )
        )
    return rows


def check_numbers(run: Run, model: Any, plan: Any, starts: list[Any], ends: list[Any]) -> None:
    """Feed the start activations to the candidate and compare its outputs with the ends."""
    try:
        produced = run_batched(
            forward_fn(model, names=list(plan.outputs)), starts, run.batch_size, run.reporter("candidate")
        )
    except Exception as exc:  # a candidate that cannot run is a verdict, not a crash
        from kerascut_core.validation.sizes import forward_failure

        try:
            reason = forward_failure(model, starts, exc, what="the candidate")
        except Exception:
            reason = f"the candidate could not run: {one_line(exc)}"
        run.fail(f"{reason} (the source's start activations)")
        return
    run.outputs = compare_outputs(plan, produced, ends, run.atol, run.rtol, run)
