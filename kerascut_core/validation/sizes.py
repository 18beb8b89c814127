"""Input sizes that fit the model: unknown dimensions sized by symbolic shape inference.

A source input such as ``(None, None, 3)`` has dimensions the model does not fix. Random
inputs need a size for them that every layer accepts: a ``Cropping1D((5000, 5000))`` needs a
length above 10,000, a stack of valid convolutions and poolings a minimum image size.
:func:`fitting_dim` finds one without running the model: the graph is replayed on symbolic
tensors (``KerasTensor``; shape inference only, no data), with every unknown non-batch
dimension set to 64, 128, 256, ... up to :data:`MAX_DIM`, and the first size at which no layer
raises and no tensor has a dimension <= 0 is used. Some limits only show when the model runs
(a position embedding looked up by position id, whose table is shorter than 64): when the pass
fails at the size found, :func:`smaller_dim` tries 32, 16, ... 1 on one sample and the first
that runs is used. :func:`symbolic_failure` names the layer that refuses a size;
:func:`forward_failure` explains a forward pass that failed anyway. ``--sample-dim N``
(``validation.sample_dim``, ``sample_dim=``) skips the search.

    >>> fitting_dim(model)         # doctest: +SKIP
    16384
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kerascut_core.errors import ValidationError

__all__ = [
    "DEFAULT_DIM",
    "MAX_DIM",
    "MAX_SAMPLE_ELEMENTS",
    "OpFailure",
    "fitting_dim",
    "forward_failure",
    "free_dims",
    "smaller_dim",
    "symbolic_failure",
]

#: The first size tried for unknown dimensions (and the size used when inference finds none).
DEFAULT_DIM = 64
#: The largest size tried; sizes double from :data:`DEFAULT_DIM` up to this.
MAX_DIM = 2**16
#: Sizes whose inputs would hold more elements than this per sample are not tried.
MAX_SAMPLE_ELEMENTS = 2**24
FIXES = (
    "pass a size every layer accepts with --sample-dim N (config: validation.sample_dim; "
    "Python: sample_dim=N), or sample inputs with --data (config: validation.data)"
)


@dataclass(frozen=True)
class OpFailure:
    """A layer (or op) that refused the symbolic inputs: its address, class and the reason."""

    address: str
    type: str
    reason: str

    def __str__(self) -> str:
        return f"layer {self.address!r} ({self.type}): {self.reason}"


def free_dims(model: Any) -> bool:
    """Whether any input of ``model`` has an unknown dimension besides the batch."""
    return any(d is None for t in model.inputs for d in tuple(t.shape)[1:])


def input_shapes(model: Any, dim: int) -> list[tuple[int | None, ...]]:
    """The inputs' shapes with unknown non-batch dimensions set to ``dim`` (batch left ``None``)."""
    return [(None, *(dim if d is None else d for d in tuple(t.shape)[1:])) for t in model.inputs]


def symbolic_failure(model: Any, shapes: Sequence[Sequence[int | None]]) -> OpFailure | None:
    """The first layer that refuses inputs of ``shapes``, found by shape inference alone.

    The graph view (nested models inlined) is replayed on ``KerasTensor`` inputs: each
    operation is called symbolically through a detached copy (the source's graph is left as it
    was), which runs Keras's shape inference and input checks but no computation. ``None`` when
    every operation accepts its inputs and no tensor has a dimension <= 0.
    """
    import keras

    from kerascut_core import keras_compat
    from kerascut_core.surgery import graph_view

    view = graph_view(model)
    values: dict[int, Any] = {}
    for t, shape, kt in zip(view.inputs, shapes, model.inputs, strict=True):
        values[t] = keras.KerasTensor(tuple(shape), dtype=kt.dtype, sparse=getattr(kt, "sparse", False))
    for op in view.ops:
        if op.is_input or not op.outputs:
            continue
        if any(t not in values for t in op.inputs):
            continue  # fed by a tensor that is not reachable from the inputs (none in practice)
        args, kwargs = op.call_arguments(values)
        try:
            result = keras_compat.detached_copy(op.operation)(*args, **kwargs)
        except Exception as exc:
            return OpFailure(op.address, op.type, _reason(exc))
        produced = keras.tree.flatten(result)
        for t, value in zip(op.outputs, produced, strict=False):
            shape = tuple(getattr(value, "shape", ()))
            if any(d is not None and d <= 0 for d in shape):
                return OpFailure(op.address, op.type, f"its output would have the shape {_text(shape)}")
            values[t] = value
    return None


def fitting_dim(model: Any, *, what: str | None = None) -> int:
    """A size for the unknown non-batch dimensions that every layer of ``model`` accepts.

    :data:`DEFAULT_DIM` when no input has one, or when 64 fits; otherwise the first of 128,
    256, ... :data:`MAX_DIM` that fits (sizes whose inputs would exceed
    :data:`MAX_SAMPLE_ELEMENTS` elements per sample are not tried).

    Raises:
        ValidationError: no size fits; names the layer that refuses the largest size tried and
            the fixes (``--sample-dim``, ``--data``). ``what`` names the model there
            (default: its name).
    """
    if not free_dims(model):
        return DEFAULT_DIM
    dim, last = DEFAULT_DIM, None
    tried: list[int] = []
    while dim <= MAX_DIM:
        shapes = input_shapes(model, dim)
        if dim > DEFAULT_DIM and _elements(shapes) > MAX_SAMPLE_ELEMENTS:
            break
        failure = symbolic_failure(model, shapes)
        if failure is None:
            return dim
        last, tried = failure, [*tried, dim]
        dim *= 2
    raise ValidationError(
        f"Expected a size for the unknown input dimensions of {what or repr(model.name)} that every "
        f"layer accepts. Received none from {tried[0]} to {tried[-1]}: at {tried[-1]}, {last}. "
        f"{FIXES[0].upper()}{FIXES[1:]}."
    )


def smaller_dim(model: Any, dim: int, runs: Callable[[int], Any]) -> int | None:
    """The largest of ``dim // 2``, ``dim // 4``, ... 1 that shape inference accepts and at which
    ``runs(size)`` (a forward pass on one sample) does not raise; ``None`` when there is none.

    For limits that shape inference cannot see, such as a position embedding's table.
    """
    size = dim // 2
    while size >= 1:
        if symbolic_failure(model, input_shapes(model, size)) is None:
            try:
                runs(size)
            except Exception:  # this size fails too: try a smaller one
                pass
            else:
                return size
        size //= 2
    return None


def forward_failure(model: Any, arrays: Sequence[Any], exc: BaseException, *, what: str) -> str:
    """One line for a forward pass of ``model`` on ``arrays`` that raised ``exc``.

    The layer is found by replaying the graph symbolically on the arrays' shapes; when shape
    inference accepts them (a failure that depends on the values), it is read from Keras's
    message. ``what`` names the model (``"the source"``, ``"the candidate"``).
    """
    shapes = [(None, *tuple(a.shape)[1:]) for a in arrays]
    try:
        failure = symbolic_failure(model, shapes)
    except Exception:  # the explanation must never hide the original error
        failure = None
    sizes = ", ".join(_text(s) for s in shapes)
    if failure is not None:
        where = str(failure)
    else:
        called = re.search(r"Exception encountered when calling (\w+)\.call\(\)", str(exc))
        where = (f"a {called.group(1)} layer: " if called else "") + _reason(exc)
    return f"{what} could not run on inputs of shape {sizes}: {where}. {FIXES[0].upper()}{FIXES[1:]}"


def _reason(exc: BaseException) -> str:
    from kerascut_core.sources.load_errors import innermost

    text = str(exc)
    # Keras wraps a layer's error as "Exception encountered when calling X.call(). <reason>
    # Arguments received by X.call(): ..."; keep the reason.
    match = re.search(r"Exception encountered when calling [\w.]+\(\)\.?\s*(.*?)\s*Arguments received by",
                      text, re.S)
    if match:
        text = match.group(1)
    else:
        cause = innermost(exc)
        text = str(cause) if cause is not exc and str(cause) else text
    text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", text).split())  # Keras colours it on a terminal
    return (text.rstrip(".") or type(exc).__name__)[:300]


def _elements(shapes: Sequence[Sequence[int | None]]) -> int:
    return sum(math.prod(d for d in s[1:] if d is not None) for s in shapes)


def _text(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"
