"""Runtimes: an exported format run in the runtime a consumer deploys it with, then compared.

``onnx`` runs in onnxruntime (:mod:`.runtimes_onnx`), ``litert`` in the LiteRT interpreter
(:mod:`.runtimes_litert`). Each opens as a :class:`Runtime`: its inputs and outputs as the
runtime names them, and a call from ``{input name: array}`` to ``{output name: array}``.
:func:`run_runtime` feeds it the source's start activations:

- the outputs must carry the Keras candidate's names (``Identity:0`` and the like mean the
  export lost them: a failure saying so), and in the candidate's order where the runtime's
  outputs have an order (ONNX's graph outputs; a LiteRT signature is a map, read by name);
- each input must accept the start activations' shape (a static dimension that differs fails
  before anything runs).

:func:`output_row` then compares each output with the source's end activation at its address.
Exactness is not promised outside Keras (the exporters fold BatchNorm into the convolutions,
the runtimes sum in their own order), so each output gets a tolerance from the runtime's own
noise (:func:`output_tolerance`): the difference, on the same inputs and in the same runtime,
of a fresh export of the validated candidate. An artifact that is that export differs by
exactly its noise; a changed weight moves it further. NaN or Inf always fails, and no export
may differ by more than float32 rounding explains (:data:`CEILINGS`).

    >>> match_outputs(["C5:0", "C4:0"], ["C5", "C4"], ordered=True)
    ['C5:0', 'C4:0']
    >>> output_tolerance("onnx", 1e-6, 0.01, basis="fresh")[:2]
    (2e-06, 0.0)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from kerascut_core.errors import ValidationError
from kerascut_core.validation.comparisons import compare
from kerascut_core.validation.forward import run_batched
from kerascut_core.validation.messages import shape_text
from kerascut_core.validation.report import OutputCheck

__all__ = [
    "CEILINGS",
    "NOISE_MARGIN",
    "ULP_FLOOR",
    "Runtime",
    "match_outputs",
    "noise_failures",
    "output_row",
    "output_tolerance",
    "require_runtime",
    "run_runtime",
    "worst_output",
]

#: format -> (atol, rtol, why): the most an export may differ from the source, elementwise
#: ``|runtime - source| <= atol + rtol * |source|``: what float32 rounding explains. A fresh
#: export beyond it changed the computation; a file with nothing to measure noise on is held to it.
CEILINGS: dict[str, tuple[float, float, str]] = {
    # tf2onnx folds BatchNorm into the convolution weights (rounded once more in float32) and
    # onnxruntime's MLAS kernels sum in another order, with FMA. On the MobileNetV2 cut of
    # benchmarks/bench_formats.py (activations up to 6) the largest difference is 5.2e-5, and
    # 0 activations come back as tiny non-zeros (so rtol alone cannot work).
    "onnx": (1e-3, 1e-3, "tf2onnx folds BatchNorm into the convolutions and onnxruntime sums in another "
                         "order (float32 rounding: 5.2e-5 measured on a MobileNetV2 cut with activations "
                         "up to 6)"),
    # The LiteRT converter folds BatchNorm and fuses activations as tf2onnx does, and the
    # XNNPACK delegate picks its own kernels (and accumulation order) per CPU: 5.1e-5 on the
    # same cut.
    "litert": (1e-3, 1e-3, "the LiteRT converter folds BatchNorm and fuses activations, and XNNPACK sums "
                           "in its own order (float32 rounding: 5.1e-5 measured on a MobileNetV2 cut with "
                           "activations up to 6)"),
}
#: an artifact may differ from the source by this many times the fresh export's noise
NOISE_MARGIN = 2.0
#: ... and by at least this many float32 ulps of the output's largest value (noise can be 0)
ULP_FLOOR = 16
_EPS32 = 2.0**-23

#: what the tolerance of a runtime's outputs is measured on: a fresh export of the candidate
#: beside the file (``fresh``), the file itself when it is that export (``self``), or nothing
#: (``ceiling``: no export could be made, :data:`CEILINGS`)
Basis = Literal["fresh", "self", "ceiling"]


@dataclass
class Runtime:
    """A format opened in its runtime: inputs ``(name, shape, dtype)`` and output names as the
    runtime lists them, and ``call({input name: array}) -> {output name: array}``."""

    description: str
    inputs: list[tuple[str, tuple[int | None, ...], Any]]
    outputs: list[str]
    ordered: bool
    call: Callable[[dict[str, Any]], dict[str, Any]]


def require_runtime(fmt: str) -> dict[str, Any]:
    """The modules that run ``fmt`` (:data:`kerascut_core.extras.FORMAT_MODULES`), by name; the
    one-line MissingExtraError when its runtime is not installed."""
    from kerascut_core.extras import require_format

    return require_format(fmt, "run")


def output_tolerance(
    fmt: str, noise: float, scale: float, *, basis: Basis, why_no_fresh: str = "",
    atol: float = 0.0, rtol: float = 0.0,
) -> tuple[float, float, str]:
    """``(atol, rtol, why)`` of one output of ``fmt`` whose fresh export differs from the source
    by ``noise`` at most and whose largest absolute value is ``scale``.

    ``fresh``: :data:`NOISE_MARGIN` times the noise, at least :data:`ULP_FLOOR` float32 ulps of
    ``scale``. ``self`` and ``ceiling``: the format's :data:`CEILINGS`. The validation's own
    ``atol``/``rtol`` win where looser (a tolerance given for other devices).
    """
    ceiling_atol, ceiling_rtol, ceiling_why = CEILINGS[fmt]
    if basis == "fresh":
        tol, rel = max(NOISE_MARGIN * noise, ULP_FLOOR * _EPS32 * scale), 0.0
        why = (f"{NOISE_MARGIN:g} x the noise of a fresh export of the candidate in the same runtime "
               f"({noise:.3g}), at least {ULP_FLOOR} float32 ulps of the output's largest value ({scale:.3g})")
    else:
        tol, rel = ceiling_atol, ceiling_rtol
        what = ("the file checked is itself a fresh export of the candidate, so its difference is the "
                "runtime's noise" if basis == "self" else f"no fresh export to measure the noise on ({why_no_fresh})")
        why = f"{what}; held to the {fmt} ceiling: {ceiling_why}"
    if atol > tol or rtol > rel:
        why = f"the validation's own tolerance, looser than {why}"
        tol, rel = max(atol, tol), max(rtol, rel)
    return tol, rel, why


_TENSOR_SUFFIX = re.compile(r":\d+$")


def match_outputs(found: Sequence[str], expected: Sequence[str], *, ordered: bool) -> list[str]:
    """The runtime's output names in the order of ``expected`` (the candidate's names).

    A runtime name matches with or without a ``:0`` tensor suffix. Raises ValidationError
    when the names are not exactly the candidate's (the export lost or renamed them), or, when
    ``ordered``, not in its order.
    """
    plain = [_TENSOR_SUFFIX.sub("", name) for name in found]
    by_name = dict(zip(plain, found, strict=True))
    if len(by_name) != len(found) or set(by_name) != set(expected):
        lost = all(re.fullmatch(r"(Identity(_\d+)?|output_\d+|StatefulPartitionedCall\S*)", p) for p in plain)
        why = "the export lost the output names" if lost else "the export renamed or dropped outputs"
        raise ValidationError(
            f"Expected outputs named {list(expected)!r} (the Keras candidate's). Received "
            f"{list(found)!r}: {why}; export with kerascut (formats: in the config), which names "
            "every output"
        )
    if ordered and plain != list(expected):
        raise ValidationError(
            f"Expected the outputs in the Keras candidate's order {list(expected)!r}. Received "
            f"{plain!r}; a consumer reading them by position would swap them, so export again "
            "with kerascut"
        )
    return [by_name[name] for name in expected]


def run_runtime(
    runtime: Runtime, input_names: Sequence[str], output_names: Sequence[str], starts: list[Any], batch_size: int
) -> list[Any]:
    """``runtime``'s outputs, in the order of ``output_names`` (the candidate's), on ``starts``
    fed to ``input_names`` (the candidate's inputs, in the order of ``starts``).

    Raises ValidationError when the runtime's inputs or outputs are not the candidate's.
    """
    feeds = _match_inputs(runtime, input_names, starts)
    order = match_outputs(runtime.outputs, output_names, ordered=runtime.ordered)
    by_feed = {n: dtype for n, _, dtype in runtime.inputs}

    def forward(arrays: list[Any]) -> list[Any]:
        result = runtime.call({n: _cast(a, by_feed[n]) for n, a in zip(feeds, arrays, strict=True)})
        return [result[name] for name in order]

    return run_batched(forward, starts, batch_size)


def _match_inputs(runtime: Runtime, names: Sequence[str], starts: list[Any]) -> list[str]:
    """The runtime's input names in the order of ``starts``; their shapes must accept them."""
    if len(runtime.inputs) != len(names):
        raise ValidationError(
            f"Expected {len(names)} inputs {list(names)!r} (the Keras candidate's). Received "
            f"{len(runtime.inputs)}: {[n for n, _, _ in runtime.inputs]!r}"
        )
    if len(names) == 1:
        feeds = [runtime.inputs[0][0]]  # one input: its name is the export's business
    else:
        by_name = {_TENSOR_SUFFIX.sub("", n): n for n, _, _ in runtime.inputs}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise ValidationError(
                f"Expected inputs named {list(names)!r} (the Keras candidate's). Received "
                f"{list(by_name)!r}; the export renamed them, so the start activations cannot be "
                "fed by name"
            )
        feeds = [by_name[n] for n in names]
    shapes = {n: shape for n, shape, _ in runtime.inputs}
    for feed, start in zip(feeds, starts, strict=True):
        shape, wanted = shapes[feed], (None, *start.shape[1:])
        fits = len(shape) == len(wanted) and all(
            s is None or w is None or s == w for s, w in zip(shape[1:], wanted[1:], strict=True)
        )
        if not fits:
            raise ValidationError(
                f"Expected input {feed!r} to take the start activations of shape {shape_text(wanted)}. "
                f"Received an input of shape {shape_text(shape)}; the file was exported for other inputs"
            )
    return feeds


def _cast(array: Any, dtype: Any) -> Any:
    """``array`` as the runtime's input dtype when both are floats or both integers."""
    import numpy as np

    a = np.asarray(array)
    target = np.dtype(dtype)
    if a.dtype != target and a.dtype.kind in "fiu" and target.kind in "fiu" and (a.dtype.kind == "f") == (target.kind == "f"):
        return a.astype(target)
    return a


def output_row(
    fmt: str, name: str, address: str, actual: Any, expected: Any, fresh: Any | None, *, basis: Basis,
    why_no_fresh: str = "", atol: float = 0.0, rtol: float = 0.0,
) -> OutputCheck:
    """One output of ``fmt`` against the source (``expected``), held to the noise of ``fresh``
    (the fresh export's output; the file's own with ``basis="self"``; ``None`` with
    ``basis="ceiling"``)."""
    import math

    import numpy as np

    actual = np.asarray(actual)
    shape = [None, *expected.shape[1:]]
    if actual.shape != expected.shape:
        return OutputCheck(
            name=name, address=address, shape=shape, dtype=str(actual.dtype),
            max_abs_diff=math.inf, max_rel_diff=math.inf, passed=False,
        )
    noise = None
    if fresh is not None:
        noise = compare(fresh, expected, 0.0, 0.0)[0] if np.shape(fresh) == expected.shape else math.inf
    finite = np.asarray(expected, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    scale = float(np.abs(finite).max()) if finite.size else 0.0
    tol, rel, why = output_tolerance(
        fmt, noise if noise is not None and math.isfinite(noise) else 0.0, scale, basis=basis, why_no_fresh=why_no_fresh,
        atol=atol, rtol=rtol,
    )
    max_abs, max_rel, nan, inf, ok = compare(actual, expected, tol, rel)
    return OutputCheck(
        name=name, address=address, shape=shape, dtype=str(actual.dtype), max_abs_diff=max_abs,
        max_rel_diff=max_rel, nan_count=nan, inf_count=inf, passed=ok, noise=noise, atol=tol, rtol=rel,
        tolerance_reason=why,
    )


def noise_failures(fmt: str, rows: Sequence[OutputCheck], fresh: Sequence[Any], ends: Sequence[Any]) -> list[str]:
    """One line for each output whose fresh export itself differs from the source by more than
    float32 rounding explains (:data:`CEILINGS`): the exporter changed the computation."""
    import numpy as np

    atol, rtol, _ = CEILINGS[fmt]
    found = []
    for row, produced, expected in zip(rows, fresh, ends, strict=True):
        if np.shape(produced) != np.shape(expected):
            continue  # the row itself fails on its shape
        max_abs, _, nan, inf, ok = compare(produced, expected, atol, rtol)
        if not ok:
            found.append(
                f"output {row.name!r}: a fresh export of the candidate differs from the source by "
                f"{max_abs:.3g} ({nan} NaN, {inf} Inf), beyond what float32 rounding explains "
                f"(atol={atol:g}, rtol={rtol:g}): the exporter changed the computation"
            )
    return found


def worst_output(rows: Sequence[OutputCheck]) -> str:
    """The one-line reason of the first failing output."""
    for row in rows:
        if row.passed:
            continue
        if row.nan_count or row.inf_count:
            return f"output {row.name!r}: {row.nan_count} NaN and {row.inf_count} Inf values (never allowed)"
        if row.max_abs_diff == float("inf"):
            return f"output {row.name!r}: its shape differs from the source's {shape_text(row.shape)}"
        noise = "" if row.noise is None else f"; the runtime's noise is {row.noise:.3g}"
        return (
            f"output {row.name!r}: max abs diff {row.max_abs_diff:.3g} (max rel diff "
            f"{row.max_rel_diff:.3g}) against the source exceeds atol={row.atol or 0.0:.3g}, "
            f"rtol={row.rtol or 0.0:g}{noise}"
        )
    return "no output was compared"
