"""Cut a Functional or Sequential Keras model at named tensors, exactly.

Three public functions, in the spirit of torchvision's feature extraction (a discover function
beside the cut function) and ONNX's ``Extractor`` (small private steps behind one call):

- :func:`cut_points` lists every address where a single-tensor start cut is valid;
- :func:`plan_cut` resolves a cut (which tensors become inputs and outputs, what is kept)
  without building anything;
- :func:`cut` builds the cut model.

Addresses are those of :mod:`kerascut_core.graph`: ``name``, ``name@k`` (k-th call of a shared
layer), ``outer/inner`` (inside a nested model) and ``name:i`` (i-th output).

**Inputs of a cut model, in order:** the ``start`` tensors in the order given (or the
``drop_first`` tensor, or the source's inputs that the ends need, in ``model.inputs`` order),
then, with ``extra_inputs="auto"``, the tensors that skip connections carry across the start
cut, in topological order. Each new input is named after the layer whose output it replaces
(``name_i`` for output i of a multi-output op, ``name_input`` when a kept layer already has the
name, as a shared layer does).

**The source is never changed.** The cut calls shallow copies of the kept operations: they
share the source's variables (so weights are shared) but record their own graph nodes, so the
source's ``_inbound_nodes`` stay as they were however often it is cut.

    >>> import keras
    >>> from kerascut_core.surgery import cut, cut_points
    >>> x = keras.Input((8,), name="x")
    >>> h = keras.layers.Dense(8, name="a")(x)
    >>> h = keras.layers.Dense(8, name="b")(h)
    >>> model = keras.Model(x, keras.layers.Dense(2, name="c")(h))
    >>> cut_points(model)
    ['x', 'a', 'b']
    >>> [layer.name for layer in cut(model, start="a", end="b").layers]
    ['a', 'b']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from kerascut_core.errors import CutError
from kerascut_core.graph import GraphView, graph_view
from kerascut_core.spec import CutSpec, EndSpec, StartSpec

__all__ = ["CutPlan", "cut", "cut_points", "plan_cut"]

_POINTER = "List the valid cut points with kerascut_core.cut_points(model) or `kerascut inspect MODEL`."
_ROOT = -1


@dataclass(frozen=True)
class CutPlan:
    """What a cut keeps, and where its inputs and outputs come from. Built by :func:`plan_cut`.

    Attributes:
        source: name of the source model.
        spec: the cut spec as given.
        inputs: addresses of the tensors that become inputs, in input order (extras last).
        input_names: the names the new ``InputLayer``s get, aligned with ``inputs``.
        extra_inputs: the addresses in ``inputs`` that ``extra_inputs="auto"`` added.
        outputs: output name -> address, in output order.
        kept: addresses of the operations the cut model runs, in topological order.
        kept_layers / dropped_layers: distinct layers (weights counted once) kept / dropped.
        kept_params / dropped_params: their parameter counts.
    """

    source: str
    spec: CutSpec
    inputs: list[str]
    input_names: list[str]
    extra_inputs: list[str]
    outputs: dict[str, str]
    kept: list[str]
    kept_layers: int
    dropped_layers: int
    kept_params: int
    dropped_params: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (for manifests and reports)."""
        return {
            "source": self.source,
            "spec": self.spec.to_dict(),
            "inputs": list(self.inputs),
            "input_names": list(self.input_names),
            "extra_inputs": list(self.extra_inputs),
            "outputs": dict(self.outputs),
            "kept_layers": self.kept_layers,
            "dropped_layers": self.dropped_layers,
            "kept_params": self.kept_params,
            "dropped_params": self.dropped_params,
        }


@dataclass
class _Resolved:
    """A plan plus the view indices ``cut`` needs to build it."""

    plan: CutPlan
    view: GraphView
    input_tensors: list[int]
    output_tensors: list[int]
    output_form: Literal["single", "list", "dict"]
    kept_ops: list[int] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# public functions


def cut_points(model: Any, end: EndSpec = None) -> list[str]:
    """Every address where a single-tensor ``start`` cut is valid for ``end``, in topological order.

    A tensor is a valid start when every path from the model's inputs to every end tensor
    passes through it: it *dominates* the ends. The ends themselves are not listed.

        >>> import keras
        >>> from kerascut_core.surgery import cut_points
        >>> x = keras.Input((8,), name="x")
        >>> a = keras.layers.Dense(8, name="a")(x)
        >>> b = keras.layers.Dense(8, name="b")(a)
        >>> model = keras.Model(x, keras.layers.Add(name="add")([a, b]))
        >>> cut_points(model)  # "b" is crossed by the skip a -> add
        ['x', 'a']
    """
    view = graph_view(model)
    ends, _, _ = _resolve_ends(view, end)
    return [view.tensors[t].address for t in _dominators(view, ends)]


def plan_cut(
    model: Any,
    *,
    start: StartSpec = None,
    end: EndSpec = None,
    drop_first: int | None = None,
    extra_inputs: Literal["error", "auto"] = "error",
) -> CutPlan:
    """Resolve a cut without building it; raises ``CutError`` exactly where :func:`cut` would.

        >>> import keras
        >>> from kerascut_core.surgery import plan_cut
        >>> x = keras.Input((8,), name="x")
        >>> h = keras.layers.Dense(8, name="a")(x)
        >>> model = keras.Model(x, keras.layers.Dense(2, name="b")(h))
        >>> plan = plan_cut(model, start="a")
        >>> plan.inputs, plan.outputs, plan.kept
        (['a'], {'b': 'b'}, ['b'])
    """
    return _resolve(model, CutSpec(start=start, end=end, drop_first=drop_first,
                                   extra_inputs=extra_inputs)).plan


def cut(
    model: Any,
    *,
    start: StartSpec = None,
    end: EndSpec = None,
    drop_first: int | None = None,
    extra_inputs: Literal["error", "auto"] = "error",
    copy: bool = False,
    name: str | None = None,
) -> Any:
    """Return a new ``keras.Model`` that computes what ``model`` computes from ``start`` to ``end``.

    Args:
        model: a Functional or Sequential model (nested models are inlined).
        start: an address, or a list of addresses (several inputs). ``None`` keeps the
            original inputs. See :func:`cut_points` for the valid single starts.
        end: an address, a list of addresses, or a dict from output names to addresses
            (a feature pyramid such as ``{"P3": ..., "P4": ..., "P5": ...}``). ``None`` keeps
            the original outputs.
        drop_first: drop the first N non-input layers of ``model.layers``; the new input is the
            output of the N-th dropped layer. Exclusive with ``start``.
        extra_inputs: ``"error"`` raises ``CutError`` when a skip connection crosses the start
            cut; ``"auto"`` makes each crossing tensor an extra input (after the starts, in
            topological order).
        copy: ``False`` shares the variables with ``model``; ``True`` gives an independent
            model with identical values.
        name: the new model's name (default: ``"<source name>_cut"``).

    The result has a ``cut_plan`` attribute (a :class:`CutPlan`, not saved with the model)
    saying where it came from. It saves as ``.keras`` and reloads without custom objects.

        >>> import keras
        >>> from kerascut_core.surgery import cut
        >>> base = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3))  # doctest: +SKIP
        >>> backbone = cut(base, start="block_3_expand_relu",
        ...                end={"C4": "block_13_expand_relu", "C5": "out_relu"})  # doctest: +SKIP
    """
    if name is not None and (not isinstance(name, str) or not name or "/" in name):
        raise CutError(f"Expected `name` to be a non-empty string without '/'. Received name={name!r}.")
    resolved = _resolve(
        model,
        CutSpec(start=start, end=end, drop_first=drop_first, extra_inputs=extra_inputs),
    )
    result = _build(resolved, name=name or f"{model.name}_cut")
    if copy:
        result = _independent_copy(result)
    result.cut_plan = resolved.plan
    return result


# --------------------------------------------------------------------------------------------
# resolving names


def _resolve_ends(
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

    functional = model._functional if isinstance(model, keras.Sequential) else model
    return getattr(functional, "_outputs_struct", None)


def _resolve_starts(view: GraphView, spec: CutSpec, ends: list[int]) -> list[int] | None:
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
    import keras

    layers = [
        layer for layer in view.model.layers if not isinstance(layer, keras.layers.InputLayer)
    ]
    if n >= len(layers):
        raise CutError(
            f"Expected `drop_first` to be less than the number of layers of model "
            f"'{view.model.name}' ({len(layers)}). Received drop_first={n}, which drops every "
            f"layer. {_POINTER}"
        )
    layer = layers[n - 1]
    try:
        return view.resolve(layer.name, role="drop_first")
    except CutError as exc:
        raise CutError(
            f"Expected the layer that `drop_first={n}` ends at to have one output tensor. "
            f"Received layer '{layer.name}', which has several outputs or calls. "
            f"Use `start` with one of them instead. {_POINTER}"
        ) from exc


def _resolve(model: Any, spec: CutSpec) -> _Resolved:
    view = graph_view(model)
    ends, out_names, form = _resolve_ends(view, spec.end)
    starts = _resolve_starts(view, spec, ends)
    keep_source_inputs = starts is None
    if starts is None:
        needed = view.ancestors(ends)
        starts = [t for t in view.inputs if t in needed]
    start_set = set(starts)

    # Tensors that depend on a start (starts included), in one topological pass.
    after = [False] * len(view.tensors)
    for t in range(len(view.tensors)):
        after[t] = t in start_set or any(after[i] for i in view.producer(t).inputs)

    names = _names_given(spec, view, starts)
    for t, label in zip(ends, out_names, strict=True):
        if not after[t]:
            raise CutError(
                f"Expected every `end` to come after the start. Received end={label!r}, which "
                f"does not depend on {names}: it is before the start or on another "
                f"branch. Pick a start before the end. {_POINTER}"
            )

    # Walk back from the ends: keep what depends on a start, stop at starts, and collect the
    # tensors that kept ops need but that do not depend on a start (skip connections).
    kept: set[int] = set()
    crossing: dict[int, list[int]] = {}  # crossing tensor -> kept ops that read it
    used: set[int] = set()
    stack = list(ends)
    seen: set[int] = set()
    while stack:
        t = stack.pop()
        if t in seen:
            continue
        seen.add(t)
        if t in start_set:
            used.add(t)
            continue
        op = view.producer(t)
        kept.add(op.index)
        for i in op.inputs:
            if after[i]:
                stack.append(i)
            else:
                crossing.setdefault(i, []).append(op.index)

    if not keep_source_inputs:
        unused = [t for t in starts if t not in used]
        if unused:
            raise CutError(
                f"Expected every `start` to be on a path to the end. Received start "
                f"{view.tensors[unused[0]].address!r}, which no end needs (it is after the end, "
                f"on another branch, or only feeds another start). Remove it or pick another "
                f"start. {_POINTER}"
            )
    if not kept:
        raise CutError(
            f"Expected the cut to keep at least one layer. Received {names} and "
            f"end={spec.end!r}, which leave nothing between them. Pick an end after the start. "
            f"{_POINTER}"
        )

    extras = sorted(crossing)
    if extras and spec.extra_inputs != "auto":
        raise CutError(_crossing_message(view, names, starts, ends, crossing))

    input_tensors = starts + extras
    kept_ops = sorted(kept)
    counts = _count_layers(view, kept_ops)
    plan = CutPlan(
        source=model.name,
        spec=spec,
        inputs=[view.tensors[t].address for t in input_tensors],
        input_names=_input_names(view, input_tensors, kept_ops),
        extra_inputs=[view.tensors[t].address for t in extras],
        outputs=dict(zip(_output_keys(view, out_names, ends, form), (view.tensors[t].address for t in ends), strict=True)),
        kept=[view.ops[i].address for i in kept_ops],
        **counts,
    )
    return _Resolved(plan, view, input_tensors, list(ends), form, kept_ops)


def _output_keys(view: GraphView, names: list[str], ends: list[int], form: str) -> list[str]:
    keys = list(names)
    if form == "dict" or len(set(keys)) == len(keys):
        return keys
    # The same tensor asked for twice: keep both, with distinct keys.
    out, seen = [], {}
    for k in keys:
        seen[k] = seen.get(k, -1) + 1
        out.append(k if seen[k] == 0 else f"{k}#{seen[k]}")
    return out


def _names_given(spec: CutSpec, view: GraphView, starts: list[int]) -> str:
    if spec.drop_first is not None:
        return f"drop_first={spec.drop_first} (start {view.tensors[starts[0]].address!r})"
    if spec.start is None:
        return "the model's inputs"
    return f"start={spec.start!r}"


def _crossing_message(
    view: GraphView,
    names: str,
    starts: list[int],
    ends: list[int],
    crossing: dict[int, list[int]],
) -> str:
    pairs = []
    for t, readers in sorted(crossing.items()):
        reader = view.ops[min(readers)].address
        pairs.append(f"{view.tensors[t].address!r} -> {reader!r}")
    shown = ", ".join(pairs[:3]) + (f" and {len(pairs) - 3} more" if len(pairs) > 3 else "")
    points = _dominators(view, ends)
    first, last = min(starts), max(starts)
    before = [p for p in points if p < first]
    after = [p for p in points if p > last]
    nearest = []
    if before:
        nearest.append(f"{view.tensors[before[-1]].address!r} (before)")
    if after:
        nearest.append(f"{view.tensors[after[0]].address!r} (after)")
    near = (
        "Nearest valid cut points: " + " and ".join(nearest) + "."
        if nearest
        else "No single tensor is a valid start for these ends."
    )
    return (
        f"Cannot cut model '{view.model.name}' at {names}: "
        f"{'a skip connection crosses' if len(pairs) == 1 else 'skip connections cross'} the "
        f"cut ({shown}), so the kept layers need tensors from before the start. {near} Start "
        "at a valid cut point, or pass extra_inputs='auto' to add the crossing tensors as "
        f"extra inputs. {_POINTER}"
    )


def _input_names(view: GraphView, inputs: list[int], kept_ops: list[int]) -> list[str]:
    """Each new input is named after the layer whose output it replaces, made unique."""
    taken = {view.ops[i].name for i in kept_ops}
    names = []
    for t in inputs:
        tensor = view.tensors[t]
        op = view.ops[tensor.op]
        candidates = [op.name]
        if len(op.outputs) > 1:
            candidates.append(f"{op.name}_{tensor.output_index}")
        candidates.append(f"{candidates[-1]}_input")
        chosen = next((c for c in candidates if c not in taken), None)
        k = 1
        while chosen is None:
            if f"{candidates[-1]}_{k}" not in taken:
                chosen = f"{candidates[-1]}_{k}"
            k += 1
        taken.add(chosen)
        names.append(chosen)
    return names


def _count_layers(view: GraphView, kept_ops: list[int]) -> dict[str, int]:
    import keras

    def distinct(indices: Any) -> dict[int, Any]:
        found = {}
        for i in indices:
            op = view.ops[i].operation
            if isinstance(op, keras.layers.Layer) and not view.ops[i].is_input:
                found[id(op)] = op
        return found

    kept = distinct(kept_ops)
    every = distinct(range(len(view.ops)))
    dropped = {k: v for k, v in every.items() if k not in kept}

    def params(layers: dict[int, Any]) -> int:
        return int(sum(layer.count_params() for layer in layers.values() if layer.built))

    return {
        "kept_layers": len(kept),
        "dropped_layers": len(dropped),
        "kept_params": params(kept),
        "dropped_params": params(dropped),
    }


# --------------------------------------------------------------------------------------------
# dominators (Cooper, Harvey & Kennedy, "A Simple, Fast Dominance Algorithm", 2001)


def _dominators(view: GraphView, ends: Sequence[int]) -> list[int]:
    """Tensors that dominate every end from a virtual root over the inputs, topological order.

    Tensor indices are a topological order of the DAG, so one pass in index order settles every
    immediate dominator (all predecessors come first), and walking up an idom chain always
    decreases the index: the "intersect" of CHK works on indices directly.
    """
    relevant = sorted(view.ancestors(ends))
    idom: dict[int, int] = {}

    def intersect(a: int, b: int) -> int:
        while a != b:
            while a > b:
                a = idom[a]
            while b > a:
                b = idom[b]
        return a

    tensors, ops = view.tensors, view.ops
    for t in relevant:
        preds = ops[tensors[t].op].inputs
        if not preds:
            idom[t] = _ROOT
            continue
        new = preds[0]
        for p in preds[1:]:
            if p != new:
                new = intersect(p, new)
        idom[t] = new

    sink = ends[0]
    for e in ends[1:]:
        sink = intersect(sink, e)
    end_set = set(ends)
    chain = []
    d = sink
    while d != _ROOT:
        if d not in end_set:
            chain.append(d)
        d = idom[d]
    chain.reverse()
    return chain


# --------------------------------------------------------------------------------------------
# building


def _build(resolved: _Resolved, *, name: str) -> Any:
    import keras
    from keras.src.ops.node import Node

    view = resolved.view
    plan = resolved.plan
    built: dict[int, Any] = {}
    inputs = []
    for t, input_name in zip(resolved.input_tensors, plan.input_names, strict=True):
        kt = view.tensors[t].keras_tensor
        tensor = keras.Input(
            batch_shape=tuple(kt.shape), dtype=kt.dtype, sparse=kt.sparse, name=input_name
        )
        built[t] = tensor
        inputs.append(tensor)

    copies = _detached_copies(view, resolved.kept_ops, set(plan.input_names))
    for i in resolved.kept_ops:
        op = view.ops[i]
        fill = {
            id(kt): built[t]
            for kt, t in zip(op.node.arguments.keras_tensors, op.inputs, strict=True)
        }
        args, kwargs = op.node.arguments.fill_in(fill)
        if op.context:
            kwargs = {**kwargs, **op.context}
        # Record the call as a node, exactly as a symbolic call would, without re-running
        # shape inference: the inputs have the source's specs, so the outputs do too.
        outputs = [_like(view.tensors[t].keras_tensor) for t in op.outputs]
        Node(operation=copies[id(op.operation)], call_args=args, call_kwargs=kwargs,
             outputs=outputs)
        for t, value in zip(op.outputs, outputs, strict=True):
            built[t] = value

    out_values = [built[t] for t in resolved.output_tensors]
    if resolved.output_form == "single":
        outputs_struct: Any = out_values[0]
    elif resolved.output_form == "dict":
        outputs_struct = dict(zip(plan.outputs, out_values, strict=True))
    else:
        outputs_struct = out_values
    return keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs_struct, name=name)


def _like(kt: Any) -> Any:
    """A fresh symbolic tensor with ``kt``'s spec."""
    from keras import KerasTensor

    extra = {}
    if kt.ragged:
        extra = {"ragged_rank": kt.ragged_rank, "row_splits_dtype": kt.row_splits_dtype}
    return KerasTensor(kt.shape, dtype=kt.dtype, sparse=kt.sparse, ragged=kt.ragged, **extra)


def _detached_copies(view: GraphView, kept_ops: list[int], reserved: set[str]) -> dict[int, Any]:
    """One shallow copy per kept operation: same variables, its own (empty) node lists.

    Calling the copy records nodes on the copy, so the source's graph is untouched. Names stay
    the same unless two kept operations share one (layers of different nested models): the
    more deeply nested (or later) one is then named after its address, ``outer_inner``.
    """
    copies: dict[int, Any] = {}
    names: dict[str, int] = {}
    # Outer layers keep their names first; the deeper a layer is nested, the later it is named.
    for i in sorted(kept_ops, key=lambda i: (view.ops[i].address.count("/"), i)):
        op = view.ops[i]
        original = op.operation
        if id(original) in copies:
            continue
        clone = object.__new__(type(original))
        clone.__dict__.update(original.__dict__)
        clone.__dict__["_inbound_nodes"] = []
        clone.__dict__["_outbound_nodes"] = []
        name = original.name
        if name in names or name in reserved:
            base = op.address.split(":", 1)[0].replace("/", "_").replace("@", "_")
            name, k = base, 1
            while name in names or name in reserved:
                name, k = f"{base}_{k}", k + 1
            clone.__dict__["name"] = name
        names[name] = id(original)
        copies[id(original)] = clone
    return copies


def _independent_copy(model: Any) -> Any:
    """A model built from ``model``'s config with its own variables holding the same values."""
    import keras

    fresh = keras.Model.from_config(model.get_config())
    fresh.set_weights(model.get_weights())
    return fresh
