"""Resolving a cut's ``start`` / ``end`` / ``drop_first`` names to tensors of the graph view.

Internal to :mod:`kerascut_core.surgery`: :func:`resolve_ends` and :func:`resolve_starts` turn
the names of a :class:`~kerascut_core.surgery.spec.CutSpec` into tensor indices of a
:class:`~kerascut_core.surgery.view.GraphView`, raising ``CutError`` where a name is wrong.
"""

from __future__ import annotations

from typing import Any, Literal

from kerascut_core.errors import CutError
from kerascut_core.surgery import _keras_api
from kerascut_core.surgery.spec import CutSpec, EndSpec
from kerascut_core.surgery.view import GraphView

__all__ = ["POINTER", "names_given", "output_keys", "resolve_ends", "resolve_starts"]

POINTER = "List the valid cut points with kerascut_core.cut_points(model) or `kerascut inspect MODEL`."


def resolve_ends(
    view: GraphView, end: EndSpec
) -> tuple[list[int], list[str], Literal["single", "list", "dict"]]:
    """End tensors, their output names and the output structure."""
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

    functional = _keras_api.sequential_graph(model) if isinstance(model, keras.Sequential) else model
    return _keras_api.outputs_struct(functional)


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
