"""The graph view's data: operations, tensors and the view that holds them.

:class:`GraphView` is what :func:`kerascut_core.surgery.graph_view` returns: every operation
call and every tensor of a model, in topological order, nested models inlined. Tensors are
addressed by the flattened-name rule of :mod:`kerascut_core.surgery.names` (``outer/inner``,
``name@k``, ``name:i``); :meth:`GraphView.resolve` turns an address into a tensor index or
raises ``CutError`` with close names. Nothing here imports Keras.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kerascut_core._names import closest
from kerascut_core.errors import CutError
from kerascut_core.surgery.names import leaf

__all__ = ["GraphView", "OpView", "TensorView"]

_POINTER = "List the valid names with kerascut_core.cut_points(model) or `kerascut inspect MODEL`."


@dataclass(eq=False, slots=True)
class OpView:
    """One call of one operation, as it appears in the view.

    ``context`` holds call-context arguments (``training``) that an enclosing nested model was
    called with; replaying the operation with them reproduces what the nested call did.
    """

    index: int
    address: str
    operation: Any
    node: Any
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The operation's own name (the last part of the address, without ``@k``)."""
        return self.operation.name

    @property
    def type(self) -> str:
        """The operation's class name, e.g. ``Conv2D`` or ``Add`` for a raw ``keras.ops.add``."""
        return type(self.operation).__name__

    @property
    def is_input(self) -> bool:
        """Whether this is one of the model's ``InputLayer`` operations."""
        return not self.inputs

    def call_arguments(self, values: Mapping[int, Any]) -> tuple[Any, dict[str, Any]]:
        """``(args, kwargs)`` of this call with each input tensor replaced by ``values[tensor]``.

        The recorded call's non-tensor arguments are kept and the call context (``training``)
        is added, so calling the operation with the result replays exactly what the model did.
        """
        fill = {id(kt): values[t] for kt, t in zip(self.node.arguments.keras_tensors, self.inputs, strict=True)}
        args, kwargs = self.node.arguments.fill_in(fill)
        return args, ({**kwargs, **self.context} if self.context else kwargs)


@dataclass(eq=False, slots=True)
class TensorView:
    """One tensor of the view, produced by output ``output_index`` of op ``op``."""

    index: int
    address: str
    op: int
    output_index: int
    keras_tensor: Any

    @property
    def shape(self) -> tuple[int | None, ...]:
        return tuple(self.keras_tensor.shape)

    @property
    def dtype(self) -> str:
        return str(self.keras_tensor.dtype)


class GraphView:
    """Operations and tensors of a model in topological order, nested models inlined.

    Attributes:
        model: the model the view describes (never modified).
        ops: every operation call, inputs first, in topological order.
        tensors: every tensor, in the order of the ops that produce them.
        inputs: tensor indices of the model's inputs, in ``model.inputs`` order.
        outputs: tensor indices of the model's outputs, in ``model.outputs`` order.
        output_names: the model's names for its outputs (dict keys for dict outputs).
        consumers: for each tensor, the indices of the ops that read it.
    """

    def __init__(
        self,
        model: Any,
        ops: list[OpView],
        tensors: list[TensorView],
        inputs: list[int],
        outputs: list[int],
        output_names: list[str],
        aliases: dict[str, int],
        ambiguous: dict[str, list[str]],
    ) -> None:
        self.model = model
        self.ops = ops
        self.tensors = tensors
        self.inputs = inputs
        self.outputs = outputs
        self.output_names = output_names
        self.consumers: list[list[int]] = [[] for _ in tensors]
        for op in ops:
            for t in dict.fromkeys(op.inputs):
                self.consumers[t].append(op.index)
        self._by_address = {t.address: t.index for t in tensors}
        self._aliases = aliases
        self._ambiguous = ambiguous

    def __repr__(self) -> str:
        return (
            f"<GraphView model={self.model.name!r} ops={len(self.ops)} "
            f"tensors={len(self.tensors)}>"
        )

    @property
    def addresses(self) -> list[str]:
        """Every tensor's canonical address, in topological order."""
        return [t.address for t in self.tensors]

    def producer(self, tensor: int) -> OpView:
        """The op that produces tensor index ``tensor``."""
        return self.ops[self.tensors[tensor].op]

    def resolve(self, name: str, *, role: str = "name") -> int:
        """The tensor index for an address (or an alias such as a nested model's name).

        Raises ``CutError`` with up to three close names when ``name`` is unknown or ambiguous.
        """
        found = self._by_address.get(name)
        if found is None:
            found = self._aliases.get(name)
        if found is not None:
            return found
        if name in self._ambiguous:
            options = self._ambiguous[name]
            raise CutError(
                f"Expected `{role}` to name one tensor of model '{self.model.name}'. "
                f"Received {role}={name!r}, which has several: "
                + ", ".join(repr(o) for o in options[:8])
                + (" ..." if len(options) > 8 else "")
                + f". Pick one of them. {_POINTER}"
            )
        suggestions = self._suggest(name)
        hint = (" Did you mean " + ", ".join(repr(s) for s in suggestions) + "?") if suggestions else ""
        raise CutError(
            f"Expected `{role}` to name a layer or op of model '{self.model.name}'. "
            f"Received {role}={name!r}, which is not in the model.{hint} {_POINTER}"
        )

    def _suggest(self, name: str) -> list[str]:
        # Names given without their nested-model path come first: "block_6_expand_relu" ->
        # "mobilenetv2_1.00_96/block_6_expand_relu".
        same_leaf = [a for a in self._by_address if leaf(a) == name]
        if len(same_leaf) >= 3:
            return same_leaf[:3]
        options = list(self._by_address) + list(self._aliases)
        return (same_leaf + [c for c in closest(name, options, n=3) if c not in same_leaf])[:3]

    def ancestors(self, tensors: Iterable[int]) -> set[int]:
        """Indices of every tensor the given tensors depend on, themselves included."""
        seen: set[int] = set()
        stack = list(tensors)
        ops, producers = self.ops, self.tensors
        while stack:
            t = stack.pop()
            if t in seen:
                continue
            seen.add(t)
            stack.extend(ops[producers[t].op].inputs)
        return seen
