"""Forward runs: the probe pass of the source and batched forwards of any model.

The source runs once, through a probe model (:func:`probe_model`) that returns the
activations at the cut's start tensors and at its end tensors together. Every model runs in
inference mode through :func:`forward_fn` (eager by default, ``tf.function`` or XLA on
request), batch by batch (:func:`run_batched`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kerascut_core.surgery import _keras_api

__all__ = ["flatten_outputs", "forward_fn", "probe_model", "run_batched"]


def probe_model(source: Any, plan: Any) -> tuple[Any, dict[str, int]]:
    """A model that returns the start and end activations of the cut in one pass of the source.

    Returns the probe and the position of each address among its outputs.
    """
    from kerascut_core.surgery import cut

    addresses = list(dict.fromkeys([*plan.inputs, *plan.outputs.values()]))
    probe = cut(source, end=addresses)
    return probe, {a: i for i, a in enumerate(addresses)}


def forward_fn(
    model: Any,
    names: Sequence[str] | None = None,
    *,
    graph: bool = False,
    jit_compile: bool = False,
) -> Callable[[list[Any]], list[Any]]:
    """``f(list of input arrays) -> list of output arrays`` for one batch, in inference mode.

    Outputs come in the order of ``names`` when the model returns a dict (candidates cut with a
    dict ``end``), else in the model's own order. ``graph=True`` traces the call with
    ``tf.function`` (as a SavedModel runs), with XLA when ``jit_compile``; the default runs
    eagerly, layer by layer.
    """
    import keras

    struct = _keras_api.inputs_struct(model)
    position = {id(t): i for i, t in enumerate(model.inputs)}  # arrays come in this order

    def call(arrays: list[Any]) -> Any:
        inputs: Any = list(arrays)
        if isinstance(struct, dict):
            inputs = {key: arrays[position[id(t)]] for key, t in struct.items()}
        elif len(arrays) == 1 and not isinstance(struct, list):
            inputs = arrays[0]
        return model(inputs, training=False)

    if graph or jit_compile:
        import tensorflow as tf

        call = tf.function(call, reduce_retracing=True, jit_compile=jit_compile)

    def forward(arrays: list[Any]) -> list[Any]:
        return [keras.ops.convert_to_numpy(x) for x in flatten_outputs(call(list(arrays)), names)]

    return forward


def flatten_outputs(result: Any, names: Sequence[str] | None) -> list[Any]:
    if isinstance(result, dict):
        if names is not None and set(result) == set(names):
            return [result[n] for n in names]
        return list(result.values())
    if isinstance(result, (list, tuple)):
        return list(result)
    return [result]


def run_batched(
    forward: Callable[[list[Any]], list[Any]],
    arrays: list[Any],
    batch_size: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[Any]:
    """Run ``forward`` over the rows of ``arrays`` in batches and concatenate each output."""
    import numpy as np

    n = len(arrays[0])
    parts: list[list[Any]] = []
    for lo in range(0, n, batch_size):
        parts.append(forward([a[lo : lo + batch_size] for a in arrays]))
        if progress is not None:
            progress(min(lo + batch_size, n), n)
    return [np.concatenate([p[i] for p in parts], axis=0) for i in range(len(parts[0]))]
