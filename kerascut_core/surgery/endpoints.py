"""Resolving a cut's ``start`` / ``end`` / ``drop_first`` names to tensors of the graph view.

Internal to :mod:`kerascut_core.surgery`: :func:`resolve_ends` and :func:`resolve_starts` turn
the names of a :class:`~kerascut_core.surgery.spec.CutSpec` into tensor indices of a
:class:`~kerascut_core.surgery.view.GraphView`, raising ``CutError`` where a name is wrong. :func:`resolve_tensors` first turns the model's own
``KerasTensor`` objects (and ``end="pyramid_outputs"``) into those addresses.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from kerascut_core import keras_compat
from kerascut_core.errors import CutError
from kerascut_core.surgery.spec import PYRAMID_OUTPUTS, CutSpec, EndSpec, is_keras_tensor
from kerascut_core.surgery.view import GraphView

__all__ = [
    "POINTER",
    "addresses",
    "names_given",
    "output_keys",
    "resolve_ends",
    "resolve_starts",
    "resolve_tensors",
]

POINTER = "List the valid cut points with kerascut_core.cut_points(model) or `kerascut inspect MODEL`."


def resolve_tensors(view: GraphView, spec: CutSpec) -> CutSpec:
    """``spec`` with every KerasTensor replaced by its address, and ``end="pyramid_outputs"`` by
    the source's ``pyramid_outputs`` (a dict keeps its keys: they become the output names).

    A tensor is found by identity among the view's tensors and the model's own inputs and
    outputs; a tensor of another model (or from inside a layer) is a ``CutError``.
    """
    start, end = addresses(view, spec.start, "start"), addresses(view, spec.end, "end")
    if start is spec.start and end is spec.end:
        return spec
    return dataclasses.replace(spec, start=start, end=end)


def addresses(view: GraphView, value: Any, role: str) -> Any:
    """``value`` (a ``start`` or ``end``) with tensors as addresses; ``value`` itself if it has
    none (``end="pyramid_outputs"`` becomes the source's pyramid, resolved)."""
    if role == "end" and isinstance(value, str) and value == PYRAMID_OUTPUTS:
        value = _pyramid_outputs(view.model)
    elif not _has_tensor(value):
        return value
    index = _tensor_index(view)

    def address(item: Any) -> Any:
        if not is_keras_tensor(item):
            return item
        found = index.get(id(item))
        if found is None:
            raise CutError(
                f"Expected `{role}` tensors to be tensors of model '{view.model.name}' (its "
                f"layers' outputs). Received KerasTensor {item.name!r} of shape "
                f"{tuple(item.shape)}, which is not in the model (another model's tensor, or one "
                f"made inside a layer). Pass the model's own tensor or its name. {POINTER}"
            )
        if len(found) > 1:
            options = ", ".join(repr(view.tensors[t].address) for t in found[:8])
            raise CutError(
                f"Expected `{role}` to name one tensor of model '{view.model.name}'. Received "
                f"KerasTensor {item.name!r}, which a nested model called several times gives "
                f"at {options}. Pass one of these names instead."
            )
        return view.tensors[found[0]].address

    if isinstance(value, dict):
        return {k: address(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [address(v) for v in value]
    return address(value)


def _has_tensor(value: Any) -> bool:
    items = value.values() if isinstance(value, dict) else value
    if isinstance(items, (list, tuple)) or isinstance(value, dict):
        return any(is_keras_tensor(v) for v in items)
    return is_keras_tensor(value)


def _pyramid_outputs(model: Any) -> Any:
    pyramid = getattr(model, PYRAMID_OUTPUTS, None)
    if not isinstance(pyramid, dict) or not pyramid:
        kind = f"{type(model).__module__}.{type(model).__name__}"
        got = "has none" if pyramid is None else f"has {PYRAMID_OUTPUTS}={pyramid!r:.80}"
        raise CutError(
            f"Expected a source with a `{PYRAMID_OUTPUTS}` attribute (a dict of output names to "
            f"tensors, as keras-hub backbones have) for end={PYRAMID_OUTPUTS!r}. Received model "
            f"'{model.name}', a {kind}, which {got}. Name the end layers instead. {POINTER}"
        )
    return dict(pyramid)


def _tensor_index(view: GraphView) -> dict[int, list[int]]:
    """``id(KerasTensor)`` -> the view tensors it is (several when a nested model is reused)."""
    index: dict[int, list[int]] = {}
    for tensor in view.tensors:
        index.setdefault(id(tensor.keras_tensor), []).append(tensor.index)
    # The model's own inputs and outputs (a nested model's outer call outputs are not view tensors).
    for kts, ts in ((view.model.inputs, view.inputs), (view.model.outputs, view.outputs)):
        for kt, t in zip(kts, ts, strict=False):
            index.setdefault(id(kt), [t])
    return index


def resolve_ends(
    view: GraphView, end: EndSpec
) -> tuple[list[int], list[str], Literal["single", "list", "dict"]]:
    """End tensors, their output names and the output structure (``end`` may hold tensors)."""
    end = addresses(view, end, "end")
    if end is None:
        struct = _outputs_struct(view.model)
        form: Literal["single", "list", "dict"]
        if isinstance(struct, dict):
            form = "dict"
        elif isinstance(struct, (list, tuple)) or len(view.outputs) > 1:
            form = "list"
        else:
            form = "single"
        return list(view.outputs), list(view.output_names), form
    if isinstance(end, str):
        return [view.resolve(end, role="end")], [end], "single"
    if isinstance(end, dict):
        return [view.resolve(v, role="end") for v in end.values()], list(end), "dict"
    return [view.resolve(e, role="end") for e in end], list(end), "list"


def _outputs_struct(model: Any) -> Any:
    import keras

    functional = keras_compat.sequential_graph(model) if isinstance(model, keras.Sequential) else model
    return keras_compat.outputs_struct(functional)


def resolve_starts(view: GraphView, spec: CutSpec, ends: list[int]) -> list[int] | None:
    """Start tensors, or ``None`` to keep the source's own inputs."""
    if spec.drop_first is not None:
        return [_drop_first_tensor(view, spec.drop_first)]
    if spec.start is None:
        return None
    names = [spec.start] if isinstance(spec.start, str) else list(spec.start)
    starts = [view.resolve(n, role="start") for n in names]
    seen: dict[int, str] = {}
    for n, t in zip(names, starts, strict=True):
        if t in seen:
            raise CutError(
                f"Expected every `start` to name a different tensor. Received {seen[t]!r} and "
                f"{n!r}, which both name {view.tensors[t].address!r}. Remove one of them."
            )
        seen[t] = n
    return starts


def _drop_first_tensor(view: GraphView, n: int) -> int:
    """The output of the N-th entry of ``model.layers`` that is not an ``InputLayer``.

    This is what ``drop_first`` counts: the model's own layers in ``model.layers`` order (a
    nested model is one entry; raw ``keras.ops`` calls are not layers and are not counted).
    """
    import keras

    layers = [
        layer for layer in view.model.layers if not isinstance(layer, keras.layers.InputLayer)
    ]
    if n >= len(layers):
        raise CutError(
            f"Expected `drop_first` to be less than the number of layers of model "
            f"'{view.model.name}' ({len(layers)}: model.layers without InputLayers). Received "
            f"drop_first={n}, which drops every layer. {POINTER}"
        )
    layer = layers[n - 1]
    try:
        return view.resolve(layer.name, role="drop_first")
    except CutError as exc:
        raise CutError(
            f"Expected the layer that `drop_first={n}` ends at to have one output tensor. "
            f"Received layer '{layer.name}', which has several outputs or calls. "
            f"Use `start` with one of them instead. {POINTER}"
        ) from exc


def output_keys(view: GraphView, names: list[str], ends: list[int], form: str) -> list[str]:
    keys = list(names)
    if form == "dict" or len(set(keys)) == len(keys):
        return keys
    # The same tensor asked for twice: keep both, with distinct keys.
    out: list[str] = []
    seen: dict[str, int] = {}
    for k in keys:
        seen[k] = seen.get(k, -1) + 1
        out.append(k if seen[k] == 0 else f"{k}#{seen[k]}")
    return out


def names_given(spec: CutSpec, view: GraphView, starts: list[int]) -> str:
    if spec.drop_first is not None:
        return f"drop_first={spec.drop_first} (start {view.tensors[starts[0]].address!r})"
    if spec.start is None:
        return "the model's inputs"
    return f"start={spec.start!r}"
