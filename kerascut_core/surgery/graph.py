"""A graph view of a Functional or Sequential Keras model.

Keras keeps a model's graph as ``Node`` objects hanging off each operation's ``_inbound_nodes``.
That is awkward to cut: nested models hide their layers, raw ``keras.ops`` calls are not layers,
and a shared layer has several calls. :func:`graph_view` flattens all of it into one list of
operations and one list of tensors, both in topological order:

- nested Functional and Sequential models are *inlined*, so their layers are addressable by
  path: ``outer/inner`` (``mobilenetv2_1.00_96/block_6_expand_relu``);
- raw ``keras.ops`` nodes (ConvNeXt's ``add``) are operations like any layer;
- a layer called at several sites is ``name@k`` for its k-th call (0-based, in call order);
- an operation with several outputs gives ``name:i`` for its i-th output.

A tensor is addressed by the operation that produced it (the rule is
:func:`kerascut_core.surgery.names.flat_name`). The view never changes the model.

    >>> import keras
    >>> from kerascut_core.surgery import graph_view
    >>> inputs = keras.Input((4,), name="x")
    >>> model = keras.Model(inputs, keras.layers.Dense(2, name="head")(inputs))
    >>> [t.address for t in graph_view(model).tensors]
    ['x', 'head']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from kerascut_core import keras_compat
from kerascut_core.errors import CutError
from kerascut_core.surgery.names import flat_name
from kerascut_core.surgery.view import GraphView, OpView, TensorView

__all__ = ["graph_view"]


# The view is kept on the model itself, so it lives and dies with it. (A WeakKeyDictionary
# would leak: its values hold the model strongly, so no source model would ever be freed.)
_VIEW_ATTR = "_kerascut_graph_view"


def graph_view(model: Any) -> GraphView:
    """Return the :class:`GraphView` of a Functional or Sequential model.

    Subclassed models have no graph to view and raise ``CutError`` saying what to do. Views
    are cached on the model object (a Functional graph does not change once built).

        >>> import keras
        >>> from kerascut_core.surgery import graph_view
        >>> x = keras.Input((8,), name="x")
        >>> y = keras.ops.add(keras.layers.Dense(8, name="d")(x), x)
        >>> [(op.address, op.type) for op in graph_view(keras.Model(x, y)).ops]
        [('x', 'InputLayer'), ('d', 'Dense'), ('add', 'Add')]
    """
    functional = _functional_graph(model)
    cached = getattr(model, _VIEW_ATTR, None)
    if cached is not None and cached[0] is functional:
        return cached[1]
    view = _Builder(model).build(functional)
    # object.__setattr__: not a Keras-tracked attribute, never saved with the model.
    object.__setattr__(model, _VIEW_ATTR, (functional, view))
    return view


def _functional_graph(model: Any) -> Any:
    """The ``Functional`` that holds ``model``'s graph, or ``CutError`` for other models."""
    if isinstance(model, keras.Sequential):
        functional = keras_compat.sequential_graph(model)
        if functional is None:
            raise CutError(
                f"Expected a built Sequential model. Received Sequential model '{model.name}', "
                "which has no graph yet. Start it with `keras.Input(shape)` or call "
                "`model.build(input_shape)` before cutting."
            )
        return functional
    if isinstance(model, keras_compat.functional_type()) and _runs_its_graph(model):
        return model
    if isinstance(model, keras.Model):
        raise CutError(
            "Expected a Functional or Sequential model. "
            f"Received '{model.name}', a subclassed model ({type(model).__name__}) whose "
            "`call()` is Python code, not a graph of layers. Rebuild it with the functional "
            "API (`keras.Model(inputs, outputs)`), or cut a Functional model it contains."
        )
    raise CutError(
        "Expected a Functional or Sequential keras.Model. "
        f"Received {type(model).__module__}.{type(model).__name__}. "
        "Load the model first, e.g. kerascut_core.load_model(path)."
    )


def _runs_its_graph(model: Any) -> bool:
    """True when calling ``model`` runs its graph (no user override of ``call``)."""
    return type(model).call is keras_compat.functional_type().call


def _inlinable(op: Any) -> Any:
    """The Functional graph of a nested model that can be inlined, else ``None``."""
    if not isinstance(op, keras.Model):
        return None
    if isinstance(op, keras.Sequential):
        return keras_compat.sequential_graph(op) if type(op).call is keras.Sequential.call else None
    if isinstance(op, keras_compat.functional_type()) and _runs_its_graph(op):
        return op
    return None


def _ordered_nodes(functional: Any) -> list[Any]:
    """The nodes of ``functional`` in the order Keras runs them (and lists ``model.layers``)."""
    position = {id(op): i for i, op in enumerate(keras_compat.operations(functional))}
    ordered = []
    by_depth = keras_compat.nodes_by_depth(functional)
    for depth in sorted(by_depth, reverse=True):
        nodes = by_depth[depth]
        if len(nodes) > 1:
            keys = [position.get(id(n.operation), -1) for n in nodes]
            if len(set(keys)) == len(keys):
                nodes = [n for _, n in sorted(zip(keys, nodes, strict=True), key=_first)]
            else:  # one op called several times at this depth: call order breaks the tie
                nodes = sorted(nodes, key=lambda n: (position.get(id(n.operation), -1), _node_index(n)))
        ordered.extend(nodes)
    return ordered


def _first(pair: tuple[int, Any]) -> int:
    return pair[0]


def _node_index(node: Any) -> int:
    for i, candidate in enumerate(keras_compat.inbound_nodes(node.operation)):
        if candidate is node:
            return i
    return -1


def _call_inputs(node: Any, inner: Any) -> list[Any] | None:
    """The outer tensors that feed ``inner.inputs`` in this call, or ``None`` if unclear."""
    tree, KerasTensor = keras.tree, keras.KerasTensor
    args, kwargs = node.arguments.args, node.arguments.kwargs
    value = args[0] if args else kwargs.get("inputs")
    if value is None:
        return None
    struct = keras_compat.inputs_struct(inner)
    if isinstance(value, dict) and isinstance(struct, dict):
        if set(value) != set(struct):
            return None
        flat = tree.flatten(value)
    else:
        flat = tree.flatten(value)
    if len(flat) != len(inner.inputs):
        return None
    for outer, ref in zip(flat, inner.inputs, strict=True):
        # Keras would reshape or cast these on the way in: keep such a model whole.
        if not isinstance(outer, KerasTensor) or len(outer.shape) != len(ref.shape):
            return None
        if str(outer.dtype) != str(ref.dtype):
            return None
    return flat


class _Builder:
    def __init__(self, model: Any) -> None:
        self.model = model
        self.ops: list[OpView] = []
        self.tensors: list[TensorView] = []
        self.aliases: dict[str, int] = {}
        self.ambiguous: dict[str, list[str]] = {}

    def build(self, functional: Any) -> GraphView:
        tree = keras.tree
        local = self._inline(functional, "", None, {})
        inputs = [local[id(kt)] for kt in functional.inputs]
        outputs = [local[id(kt)] for kt in functional.outputs]
        struct = keras_compat.outputs_struct(functional)
        if isinstance(struct, dict):
            flat = tree.flatten_with_path(struct)
            output_names = [".".join(str(p) for p in path) for path, _ in flat]
        else:
            output_names = list(getattr(self.model, "output_names", None) or [])
            if len(output_names) != len(outputs):
                output_names = [self.tensors[t].address for t in outputs]
        # Aliases never shadow a canonical address.
        canonical = {t.address for t in self.tensors}
        aliases = {a: t for a, t in self.aliases.items() if a not in canonical}
        ambiguous = {a: v for a, v in self.ambiguous.items() if a not in canonical}
        return GraphView(
            self.model, self.ops, self.tensors, inputs, outputs, output_names, aliases, ambiguous
        )

    def _inline(
        self,
        functional: Any,
        within: str,
        fed: Sequence[int] | None,
        context: dict[str, Any],
    ) -> dict[int, int]:
        """Add ``functional``'s ops to the view; return its KerasTensor id -> tensor index.

        ``within`` is the address of the nested model ``functional`` is (``""`` at the top).
        """
        local: dict[int, int] = {}
        if fed is not None:
            for kt, t in zip(functional.inputs, fed, strict=True):
                local[id(kt)] = t
        nodes = _ordered_nodes(functional)

        calls: dict[int, list[Any]] = {}
        for node in nodes:
            if not (node.is_input and fed is not None):
                calls.setdefault(id(node.operation), []).append(node)
        call_index: dict[int, int] = {}
        for op_nodes in calls.values():
            if len(op_nodes) > 1:
                op_nodes.sort(key=_node_index)
                for k, node in enumerate(op_nodes):
                    call_index[id(node)] = k
                op = op_nodes[0].operation
                self.ambiguous[flat_name(op.name, within=within)] = [
                    flat_name(op.name, within=within, call=k) for k in range(len(op_nodes))
                ]

        for node in nodes:
            op = node.operation
            if node.is_input:
                if fed is not None:
                    # A nested model's own input: the tensor that feeds it from outside.
                    for kt in node.outputs:
                        if id(kt) in local:
                            self.aliases.setdefault(flat_name(op.name, within=within), local[id(kt)])
                    continue
                self._add_op(flat_name(op.name, within=within), node, (), context, local)
                continue

            call = call_index.get(id(node)) if call_index else None
            base = flat_name(op.name, within=within, call=call)
            in_tensors = tuple([local[id(kt)] for kt in node.arguments.keras_tensors])
            inner = _inlinable(op)
            fed_inner = _call_inputs(node, inner) if inner is not None else None
            if fed_inner is not None:
                inner_context = dict(context)
                for name in keras_compat.call_context_args(op):
                    value = node.arguments.kwargs.get(name)
                    if value is not None and name not in context:
                        inner_context[name] = value
                inner_local = self._inline(
                    inner, base, [local[id(kt)] for kt in fed_inner], inner_context
                )
                outs = [inner_local[id(kt)] for kt in inner.outputs]
                for i, (kt, t) in enumerate(zip(node.outputs, outs, strict=True)):
                    local[id(kt)] = t
                    self.aliases.setdefault(base if len(outs) == 1 else flat_name(base, output=i), t)
                continue
            self._add_op(base, node, in_tensors, context, local)
        return local

    def _add_op(
        self,
        base: str,
        node: Any,
        in_tensors: tuple[int, ...],
        context: dict[str, Any],
        local: dict[int, int],
    ) -> None:
        op = node.operation
        op_context = (
            {k: v for k, v in context.items() if k in keras_compat.call_context_args(op)}
            if context
            else {}
        )
        tensors = self.tensors
        op_index = len(self.ops)
        outputs = node.outputs
        if len(outputs) == 1:
            t = len(tensors)
            tensors.append(TensorView(t, base, op_index, 0, outputs[0]))
            local[id(outputs[0])] = t
            outs: tuple[int, ...] = (t,)
        else:
            first = len(tensors)
            for i, kt in enumerate(outputs):
                tensors.append(TensorView(first + i, flat_name(base, output=i), op_index, i, kt))
                local[id(kt)] = first + i
            outs = tuple(range(first, first + len(outputs)))
            self.ambiguous[base] = [flat_name(base, output=i) for i in range(len(outputs))]
        self.ops.append(OpView(op_index, base, op, node, in_tensors, outs, op_context))
