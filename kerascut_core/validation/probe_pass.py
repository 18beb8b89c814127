"""The probe pass: the source fed the inputs the cut uses, once, for its start and end activations.

The source gets exactly the inputs the cut uses (``plan.source_inputs``; one tower of a
two-input model needs one): the rows of ``data``, or seeded random inputs whose unknown
dimensions get a size every layer accepts (:func:`~.sizes.fitting_dim`, by shape inference).

Shape inference cannot see every limit of a model: a learned position embedding looked up by
position id accepts any length symbolically, but its lookup fails beyond its table (a BERT built
with ``max_sequence_length=32`` at length 64). When the pass fails at a size found
automatically, smaller sizes are tried (:func:`~.sizes.smaller_dim`: 32, 16, ... 1, each on one
sample) and the pass runs again at the first that runs. A size given (``sample_dim``) or
``data`` is never changed: its failure names the layer and the fixes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kerascut_core.errors import ValidationError
from kerascut_core.validation.forward import forward_fn, run_batched
from kerascut_core.validation.inputs import random_inputs, used_inputs
from kerascut_core.validation.sample_data import load_data
from kerascut_core.validation.sizes import (
    DEFAULT_DIM,
    fitting_dim,
    forward_failure,
    free_dims,
    smaller_dim,
)

__all__ = ["probe_pass"]


def probe_pass(
    source: Any,
    probe: Any,
    plan: Any,
    *,
    data: Any,
    samples: int,
    seed: int,
    sample_dim: int | None,
    batch_size: int,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Any], list[Any], int | None]:
    """``(source inputs, probe outputs, size of the unknown dimensions or None)``.

    Raises:
        ValidationError: the source does not run on its inputs (the layer and the fixes).
    """
    used = used_inputs(source, plan)
    if data is not None:
        arrays = load_data(data, source, samples, used=used)
        return arrays, _run(probe, arrays, batch_size, progress), None

    def inputs(rows: int, size: int | None) -> list[Any]:
        every = random_inputs(source, rows, seed, dim=size or DEFAULT_DIM)
        return [every[i] for i in used]

    dim = None
    if free_dims(probe):
        dim = sample_dim if sample_dim is not None else fitting_dim(probe, what=f"the source {source.name!r}")
    arrays = inputs(samples, dim)
    try:
        return arrays, run_batched(forward_fn(probe), arrays, batch_size, progress), dim
    except Exception as exc:
        found = None
        if dim is not None and sample_dim is None:  # the size was a guess: try smaller ones
            forward = forward_fn(probe)
            found = smaller_dim(probe, dim, lambda size: forward(inputs(1, size)))
        if found is None:
            raise ValidationError(forward_failure(probe, arrays, exc, what="the source")) from exc
    arrays = inputs(samples, found)
    return arrays, _run(probe, arrays, batch_size, progress), found


def _run(probe: Any, arrays: list[Any], batch_size: int, progress: Callable[[int, int], None] | None) -> list[Any]:
    try:
        return run_batched(forward_fn(probe), arrays, batch_size, progress)
    except Exception as exc:  # inputs the source does not accept: the layer and the fixes
        raise ValidationError(forward_failure(probe, arrays, exc, what="the source")) from exc
