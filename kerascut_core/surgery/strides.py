"""The stride of every tensor of a graph view, measured at one large probe size.

A pyramid level is a power-of-two stride. Static shapes cannot tell it when the input size is
free (``(None, None, 3)``, as keras.applications builds without ``input_shape``), and at a small
fixed size ``valid`` padding distorts it (InceptionV3 at 75 pixels ends at 1x1). So every
operation's output spec is computed once more, symbolically (nothing is allocated), for a
square input of :data:`PROBE` pixels per spatial axis (a power of two), and each tensor's
*reduction* is the probe size over its size along each spatial axis:

- its ``level`` is the power of two nearest that reduction (``round(log2(r))``), the same on
  every spatial axis;
- it is ``exact`` when the size times ``2**level`` is the probe size on every axis: then the
  stride is exactly ``2**level`` at every input size it divides (``same`` padding). ``valid``
  padding (Inception, Xception, NASNet) loses pixels at every size: the level is then the
  nominal one.

A tensor of one pixel (globally pooled, as a squeeze-excite gate is) has no stride. Where an
operation cannot run at the probe size (a fixed ``Reshape``), tensors after it fall
back to their static shapes at the model's own size, or have no reduction at all.

    >>> import keras
    >>> x = keras.Input((None, None, 3), name="x")
    >>> y = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="c")(x)
    >>> from kerascut_core.surgery import graph_view
    >>> [r and (r.level, r.exact) for r in reductions(graph_view(keras.Model(x, y)))]
    [(0, True), (1, True)]
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Any

from kerascut_core.surgery.view import GraphView

__all__ = ["PROBE", "Reduction", "reductions"]

#: pixels per spatial axis of the symbolic probe input (a power of two: ``same`` padding is
#: then exact for every stride up to it, and ``valid`` padding's losses are a small fraction)
PROBE = 4096

_CACHE: weakref.WeakKeyDictionary[GraphView, list[Reduction | None]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Reduction:
    """How much smaller than the input a tensor is along its spatial axes."""

    #: the nominal level: ``stride == 2**level``
    level: int
    #: whether the stride is exactly ``2**level`` (no pixels lost to padding)
    exact: bool
    #: input pixels per output pixel at the probe size (the largest over the spatial axes)
    reduction: float

    @property
    def stride(self) -> int:
        return 2**self.level


def reductions(view: GraphView, data_format: str | None = None) -> list[Reduction | None]:
    """One :class:`Reduction` (or ``None``: no spatial axes, or unknown) per tensor of ``view``."""
    import keras

    fmt = data_format or keras.config.image_data_format()
    cached = _CACHE.get(view)
    if cached is not None and data_format is None:
        return cached
    probed = _probe(view, fmt)
    spatial_inputs = [t for t in view.inputs if len(view.tensors[t].shape) >= 3]
    rank = len(view.tensors[spatial_inputs[0]].shape) if spatial_inputs else None
    static_in = _spatial(view.tensors[spatial_inputs[0]].shape, fmt) if spatial_inputs else []
    found: list[Reduction | None] = []
    for tensor in view.tensors:
        shape = tensor.shape
        if rank is None or len(shape) != rank:
            found.append(None)
            continue
        spec = probed.get(tensor.index)
        sizes = _spatial(spec, fmt) if spec is not None else None
        if sizes is not None and all(sizes):
            found.append(_reduction([PROBE] * len(sizes), sizes))
        else:
            found.append(_reduction(static_in, _spatial(shape, fmt)))
    if data_format is None:
        _CACHE[view] = found
    return found


def _spatial(shape: Any, fmt: str) -> list[int | None]:
    dims = [None if d is None else int(d) for d in shape]
    return dims[2:] if fmt == "channels_first" else dims[1:-1]


def _reduction(inputs: list[int | None], outputs: list[int | None]) -> Reduction | None:
    if not outputs or len(inputs) != len(outputs) or not all(inputs) or not all(outputs):
        return None
    if all(o == 1 for o in outputs):  # pooled to one pixel (a squeeze-excite gate): no stride
        return None
    ratios = [i / o for i, o in zip(inputs, outputs, strict=True) if i and o]
    levels = {round(math.log2(r)) for r in ratios}
    if len(levels) != 1:
        return None
    level = levels.pop()
    if level < 0:
        return None
    exact = all(o * 2**level == i for i, o in zip(inputs, outputs, strict=True) if i and o)
    return Reduction(level=level, exact=exact, reduction=max(ratios))


def _probe(view: GraphView, fmt: str) -> dict[int, tuple[int | None, ...]]:
    """Each tensor's shape when the spatial inputs are :data:`PROBE` pixels square (symbolic)."""
    import keras

    values: dict[int, Any] = {}
    for t in view.inputs:
        tensor = view.tensors[t]
        dims = [1 if d is None else int(d) for d in tensor.shape]
        if len(dims) >= 3:
            axes = range(2, len(dims)) if fmt == "channels_first" else range(1, len(dims) - 1)
            for axis in axes:
                dims[axis] = PROBE
        dims[0] = 1
        values[t] = keras.KerasTensor(tuple(dims), dtype=tensor.dtype)
    for op in view.ops:
        if op.is_input or not all(t in values for t in op.inputs):
            continue
        try:
            args, kwargs = op.call_arguments(values)
            outs = keras.tree.flatten(op.operation.compute_output_spec(*args, **kwargs))
        except Exception:  # an op that only runs at the model's own size: no probe after it
            continue
        if len(outs) == len(op.outputs):
            for t, spec in zip(op.outputs, outs, strict=True):
                values[t] = spec
    return {t: tuple(v.shape) for t, v in values.items() if hasattr(v, "shape")}
