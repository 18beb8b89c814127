"""Seeded random inputs for the source: its input shapes and dtypes, integers kept in range.

Without sample data, validation feeds the source seeded random inputs: floats uniform in
[-1, 1), integers below the size of the ``Embedding`` / ``CategoryEncoding`` layer they feed
(0 or 1 otherwise), booleans fair coins. Unknown dimensions other than the batch get ``dim``:
a size every layer accepts, found by :func:`kerascut_core.validation.sizes.fitting_dim`
(symbolic shape inference, from 64 up; below 64 when the source only runs there), or ``--sample-dim`` / ``validation.sample_dim``. User
sample data (``data=``) is read by :mod:`kerascut_core.validation.sample_data`.
"""

from __future__ import annotations

from typing import Any

from kerascut_core.validation.sizes import DEFAULT_DIM

__all__ = ["input_specs", "random_inputs", "used_inputs"]

# Integer inputs feeding these layers draw values below the layer's size; others draw 0 or 1.
_INTEGER_RANGE_ATTRS = {
    "Embedding": "input_dim",
    "CategoryEncoding": "num_tokens",
    "Discretization": None,
}
_DEFAULT_INTEGER_HIGH = 2


def input_specs(model: Any) -> list[tuple[str, tuple[int | None, ...], str]]:
    """``(name, shape, dtype)`` of each model input, in ``model.inputs`` order."""
    return [
        (getattr(t, "name", f"input_{i}"), tuple(t.shape), str(t.dtype))
        for i, t in enumerate(model.inputs)
    ]


def used_inputs(model: Any, plan: Any) -> list[int]:
    """Positions, in ``model.inputs``, of the source inputs the cut ``plan`` uses
    (``plan.source_inputs``): the only ones the source is fed to compute the cut's tensors."""
    from kerascut_core.surgery import graph_view

    view = graph_view(model)
    wanted = set(plan.source_inputs)
    return [i for i, t in enumerate(view.inputs) if view.tensors[t].address in wanted]


def _integer_highs(model: Any) -> list[int]:
    """For each model input, an exclusive upper bound that keeps integer values valid."""
    from kerascut_core.surgery import graph_view

    view = graph_view(model)
    highs = []
    for tensor in view.inputs:
        bounds = []
        for op_index in view.consumers[tensor]:
            op = view.ops[op_index]
            attr = _INTEGER_RANGE_ATTRS.get(op.type)
            if attr and isinstance(getattr(op.operation, attr, None), int):
                bounds.append(int(getattr(op.operation, attr)))
        highs.append(min(bounds) if bounds else _DEFAULT_INTEGER_HIGH)
    return highs


def random_inputs(model: Any, samples: int, seed: int, dim: int = DEFAULT_DIM) -> list[Any]:
    """Seeded inputs that respect each source input's shape and dtype.

    Floats are uniform in [-1, 1); integers are uniform below the size of the embedding or
    encoding layer they feed (0 or 1 otherwise); booleans are fair coins. Unknown dimensions
    other than the batch are ``dim``.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    highs = _integer_highs(model)
    arrays = []
    for (_, shape, dtype), high in zip(input_specs(model), highs, strict=True):
        dims = (samples, *(dim if d is None else d for d in shape[1:]))
        kind = np.dtype(dtype).kind
        if kind == "b":
            arrays.append(rng.integers(0, 2, size=dims).astype(bool))
        elif kind in "iu":
            arrays.append(rng.integers(0, high, size=dims).astype(dtype))
        else:
            arrays.append(rng.uniform(-1.0, 1.0, size=dims).astype(dtype))
    return arrays
