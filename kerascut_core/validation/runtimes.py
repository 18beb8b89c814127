"""Runtimes: an exported format run in the runtime a consumer deploys it with, then compared.

``onnx`` runs in onnxruntime (:mod:`.runtimes_onnx`), ``litert`` in the LiteRT interpreter
(:mod:`.runtimes_litert`). Each opens as a :class:`Runtime`: its inputs and outputs as the
runtime names them, and a call from ``{input name: array}`` to ``{output name: array}``.
:func:`check_runtime` feeds it the source's start activations and compares each output, by
name, with the source's end activations:

- the outputs must carry the Keras candidate's names (``Identity:0`` and the like mean the
  export lost them: a failure saying so), and in the candidate's order where the runtime's
  outputs have an order (ONNX's graph outputs; a LiteRT signature is a map, read by name);
- each input must accept the start activations' shape (a static dimension that differs fails
  before anything runs);
- NaN or Inf fails; otherwise ``|runtime - source| <= atol + rtol * |source|`` elementwise, with
  the format's own tolerance (:data:`TOLERANCES`, recorded in the report), since exactness is
  not promised outside Keras.

    >>> match_outputs(["C5:0", "C4:0"], ["C5", "C4"], ordered=True)
    ['C5:0', 'C4:0']
    >>> tolerance("onnx", 0.0, 0.0)[:2]
    (0.001, 0.001)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kerascut_core.errors import ValidationError
from kerascut_core.extras import MissingExtraError
from kerascut_core.validation.comparisons import compare, max_diff
from kerascut_core.validation.forward import run_batched
from kerascut_core.validation.messages import one_line, shape_text
from kerascut_core.validation.report import FormatCheck, OutputCheck

if TYPE_CHECKING:
    from kerascut_core.validation.state import Run

__all__ = ["TOLERANCES", "Runtime", "check_runtime", "match_outputs", "require_runtime", "tolerance"]

#: format -> (atol, rtol, why): the default tolerance of each runtime, used unless the
#: validation's own tolerance is looser.
TOLERANCES: dict[str, tuple[float, float, str]] = {
    # tf2onnx folds BatchNorm into the convolution weights (rounded once more in float32) and
    # onnxruntime's MLAS kernels sum in another order, with FMA. On the MobileNetV2 cut of
    # benchmarks/bench_formats.py (activations up to 6) the largest difference is 5.2e-5, and
    # 0 activations come back as tiny non-zeros (so rtol alone cannot work); 1e-3 leaves ~20x
    # margin for deeper cuts and still fails any changed weight or swapped output by far.
    "onnx": (1e-3, 1e-3, "tf2onnx folds BatchNorm into the convolutions and onnxruntime sums in another "
                         "order (float32 rounding: 5.2e-5 measured on a MobileNetV2 cut with activations "
                         "up to 6); exactness is not promised outside Keras"),
    # The LiteRT converter folds BatchNorm and fuses activations as tf2onnx does, and the
    # XNNPACK delegate picks its own kernels (and accumulation order) per CPU: 5.1e-5 on the
    # same cut, so the same 1e-3.
    "litert": (1e-3, 1e-3, "the LiteRT converter folds BatchNorm and fuses activations, and XNNPACK sums "
                           "in its own order (float32 rounding: 5.1e-5 measured on a MobileNetV2 cut with "
                           "activations up to 6); exactness is not promised outside Keras"),
}

_TENSOR_SUFFIX = re.compile(r":\d+$")


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


def tolerance(fmt: str, atol: float, rtol: float) -> tuple[float, float, str]:
    """The tolerance of ``fmt``: its default (:data:`TOLERANCES`), or the validation's own
    ``atol``/``rtol`` where those are looser; with the reason."""
    default_atol, default_rtol, why = TOLERANCES[fmt]
    if atol > default_atol or rtol > default_rtol:
        why = f"the validation's tolerance, looser than the {fmt} default ({default_atol:g}, {default_rtol:g})"
    return max(atol, default_atol), max(rtol, default_rtol), why


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


def check_runtime(
    fmt: str,
    opened: Callable[[], Runtime],
    check: FormatCheck,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    starts: list[Any],
    ends: list[Any],
    addresses: Sequence[str],
    run: Run,
) -> FormatCheck:
    """Run ``opened()`` on ``starts`` and compare it with ``ends`` by name; fill ``check``.

    ``input_names`` are the candidate's inputs (in the order of ``starts``), ``output_names``
    its outputs (in the order of ``ends``, at ``addresses`` of the source). A failure is
    recorded in ``run`` with the format and its location.
    """
    atol, rtol, why = tolerance(fmt, run.atol, run.rtol)
    check.atol, check.rtol, check.tolerance_reason = atol, rtol, why
    try:
        runtime = opened()
        check.runtime = runtime.description
        feeds = _match_inputs(runtime, input_names, starts)
        order = match_outputs(runtime.outputs, output_names, ordered=runtime.ordered)
        dtypes = [dtype for _, _, dtype in runtime.inputs]
        by_feed = dict(zip([n for n, _, _ in runtime.inputs], dtypes, strict=True))

        def forward(arrays: list[Any]) -> list[Any]:
            result = runtime.call({n: _cast(a, by_feed[n]) for n, a in zip(feeds, arrays, strict=True)})
            return [result[name] for name in order]

        produced = run_batched(forward, starts, run.batch_size)
        check.outputs = [
            _output_row(name, address, actual, expected, atol, rtol)
            for name, address, actual, expected in zip(output_names, addresses, produced, ends, strict=True)
        ]
        check.max_abs_diff = max_diff(o.max_abs_diff for o in check.outputs)
        check.max_abs_diff_vs_source = check.max_abs_diff
        check.passed = all(o.passed for o in check.outputs)
    except MissingExtraError:
        raise  # the extra is missing (tf2onnx for an export): one line, not a failed check
    except Exception as exc:
        check.error = one_line(exc)
        check.passed = False
    if not check.passed:
        run.fail(f"{fmt} at {check.location}: {check.error or _worst(check, atol, rtol)}")
    return check


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


def _output_row(name: str, address: str, actual: Any, expected: Any, atol: float, rtol: float) -> OutputCheck:
    import math

    import numpy as np

    actual = np.asarray(actual)
    shape = [None, *expected.shape[1:]]
    if actual.shape != expected.shape:
        return OutputCheck(
            name=name, address=address, shape=shape, dtype=str(actual.dtype),
            max_abs_diff=math.inf, max_rel_diff=math.inf, passed=False,
        )
    max_abs, max_rel, nan, inf, ok = compare(actual, expected, atol, rtol)
    return OutputCheck(
        name=name, address=address, shape=shape, dtype=str(actual.dtype), max_abs_diff=max_abs,
        max_rel_diff=max_rel, nan_count=nan, inf_count=inf, passed=ok,
    )


def _worst(check: FormatCheck, atol: float, rtol: float) -> str:
    """The one-line reason of the first failing output."""
    for row in check.outputs:
        if row.passed:
            continue
        if row.nan_count or row.inf_count:
            return f"output {row.name!r}: {row.nan_count} NaN and {row.inf_count} Inf values (never allowed)"
        if row.max_abs_diff == float("inf"):
            return f"output {row.name!r}: its shape differs from the source's {shape_text(row.shape)}"
        return (
            f"output {row.name!r}: max abs diff {row.max_abs_diff:.3g} (max rel diff "
            f"{row.max_rel_diff:.3g}) against the source exceeds atol={atol:g}, rtol={rtol:g}"
        )
    return "no output was compared"
