"""Forward runs: the probe pass of the source and batched forwards of any model.

The source runs once, through a probe model (:func:`probe_model`) that returns the
activations at the cut's start tensors and at its end tensors together. Every model runs in
inference mode through :func:`forward_fn`, batch by batch (:func:`run_batched`).

Under TensorFlow a model runs eagerly by default (``tf.function`` or XLA on request). Under
JAX it always runs as one ``jax.jit`` of ``model.stateless_call``: JAX's eager mode compiles
every op on its first call at each shape, which costs several times more than compiling the
whole graph once. The source's probe and the candidate run the same way,
so a cut stays exact; the jitted call is compiled once per batch shape (a last, shorter batch
costs one more compile). A model that cannot be traced (a data-dependent shape) runs eagerly.

Compiled forwards are kept on disk by JAX's persistent compilation cache, in kerascut's cache
(``<cache>/jax-compilation``), so validating a cut again (a refresh, a rerun, another worker on
the same disk) skips both compiles: the same executable, the same numbers. A worker that set
up JAX's cache itself (``JAX_COMPILATION_CACHE_DIR``) keeps its own; ``KERASCUT_JAX_CACHE=0``
turns it off.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from kerascut_core import keras_compat

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
    eagerly, layer by layer. Under the JAX backend every mode is one ``jax.jit`` (XLA).
    """
    import keras

    struct = keras_compat.inputs_struct(model)
    position = {id(t): i for i, t in enumerate(model.inputs)}  # arrays come in this order

    def pack(arrays: list[Any]) -> Any:
        inputs: Any = list(arrays)
        if isinstance(struct, dict):
            inputs = {key: arrays[position[id(t)]] for key, t in struct.items()}
        elif len(arrays) == 1 and not isinstance(struct, list):
            inputs = arrays[0]
        return inputs

    def eager(arrays: list[Any]) -> Any:
        return model(pack(arrays), training=False)

    call: Callable[[list[Any]], Any] = eager
    if keras.config.backend() == "jax":
        call = _jax_jit(model, pack, eager)
    elif graph or jit_compile:
        import tensorflow as tf

        call = tf.function(eager, reduce_retracing=True, jit_compile=jit_compile)

    def forward(arrays: list[Any]) -> list[Any]:
        return [keras.ops.convert_to_numpy(x) for x in flatten_outputs(call(list(arrays)), names)]

    return forward


def _jax_jit(
    model: Any, pack: Callable[[list[Any]], Any], call: Callable[[list[Any]], Any]
) -> Callable[[list[Any]], Any]:
    """``call`` as one jitted, stateless function of the model's current variable values.

    The values are read once, when the function is built (validation never changes them). A
    model whose first batch does not trace (a data-dependent shape, a host callback) runs
    ``call`` eagerly from then on; one that fails eagerly too raises that error, as before.
    """
    import jax

    _compilation_cache(jax)
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def stateless(weights: list[Any], state: list[Any], arrays: list[Any]) -> Any:
        return model.stateless_call(weights, state, pack(arrays), training=False)[0]

    jitted = jax.jit(stateless)
    mode: list[str] = []  # "jit" or "eager", decided by the first batch

    def run(arrays: list[Any]) -> Any:
        if mode == ["jit"]:
            return jitted(trainable, non_trainable, arrays)
        if mode == ["eager"]:
            return call(arrays)
        try:
            result = jitted(trainable, non_trainable, arrays)
        except Exception:  # does not trace (Keras rewraps JAX's tracer errors)
            mode.append("eager")
            return call(arrays)  # a model that fails eagerly too raises its own error here
        mode.append("jit")
        return result

    return run


def _compilation_cache(jax: Any) -> None:
    """Point JAX's persistent compilation cache at kerascut's cache, unless configured or off."""
    if os.environ.get("KERASCUT_JAX_CACHE", "1").strip() == "0":
        return
    if jax.config.jax_compilation_cache_dir or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return  # the worker's own cache
    from kerascut_core.sources.cache import default_cache_dir

    jax.config.update("jax_compilation_cache_dir", str(default_cache_dir() / "jax-compilation"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)  # whole models, not ops


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
