"""Planning a cut: which tensors become inputs and outputs, and what the cut keeps.

:func:`plan_cut` resolves a cut without building anything; :func:`~kerascut_core.surgery.cut`
builds the plan it resolves. Both raise ``CutError`` at the same places.

**Inputs of a cut model, in order:** the ``start`` tensors in the order given (or the
``drop_first`` tensor, or the source's inputs that the ends need, in ``model.inputs`` order),
then, with ``extra_inputs="auto"``, the tensors that skip connections carry across the start
cut, in topological order. Each new input is named after the layer whose output it replaces
(``name_i`` for output i of a multi-output op, ``name_input`` when a kept layer already has the
name, as a shared layer does).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any, Literal

from kerascut_core.errors import CutError
from kerascut_core.surgery.dominance import dominators
from kerascut_core.surgery.endpoints import (
    POINTER,
    names_given,
    output_keys,
    resolve_ends,
    resolve_starts,
    resolve_tensors,
)
from kerascut_core.surgery.feature_pyramid import pyramid_taps
from kerascut_core.surgery.graph import graph_view
from kerascut_core.surgery.spec import AUTO_PYRAMID, CutSpec, EndSpec, StartSpec
from kerascut_core.surgery.view import GraphView

__all__ = ["CutPlan", "Resolved", "plan_cut", "resolve"]


@dataclass(frozen=True)
class CutPlan:
    """What a cut keeps, and where its inputs and outputs come from. Built by :func:`plan_cut`.

    Attributes:
        source: name of the source model.
        spec: the cut spec as given, with KerasTensors (and ``end="pyramid_outputs"`` or
            ``"auto-pyramid"``) replaced by their addresses (a dict's keys kept).
        inputs: addresses of the tensors that become inputs, in input order (extras last).
        input_names: the names the new ``InputLayer``s get, aligned with ``inputs``.
        extra_inputs: the addresses in ``inputs`` that ``extra_inputs="auto"`` added.
        source_inputs: the addresses of the source's inputs the cut uses (those its inputs are
            computed from), in ``model.inputs`` order: what the source must be fed to compute
            the cut's inputs and outputs (a cut to one tower of a two-input model uses one).
        outputs: output name -> address, in output order.
        kept: addresses of the operations the cut model runs, in topological order.
        kept_layers / dropped_layers: distinct layers (weights counted once) kept / dropped.
        kept_params / dropped_params: their parameter counts.
        pyramid: for ``end="auto-pyramid"``, output name -> what the rule found
            (:meth:`~kerascut_core.surgery.feature_pyramid.PyramidTap.record`); else empty.
        dropped_before: distinct layers dropped before the start: those the ends depend on
            that the cut does not keep (what ``drop_first`` means to drop, and what extra
            inputs replace).
        warnings: one line for each surprise of a cut that can be made: ``drop_first=N`` with
            ``extra_inputs="auto"`` that dropped more than N layers before the start (the
            count and the new inputs). :func:`~kerascut_core.surgery.cut` raises each as a
            :class:`~kerascut_core.errors.CutWarning`; ``kerascut cut`` and ``config check``
            print them, the manifest records them.
    """

    source: str
    spec: CutSpec
    inputs: list[str]
    input_names: list[str]
    extra_inputs: list[str]
    source_inputs: list[str]
    outputs: dict[str, str]
    kept: list[str]
    kept_layers: int
    dropped_layers: int
    kept_params: int
    dropped_params: int
    pyramid: dict[str, dict[str, Any]] = field(default_factory=dict)
    dropped_before: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (for manifests and reports)."""
        return {
            "source": self.source,
            "spec": self.spec.to_dict(),
            "inputs": list(self.inputs),
            "input_names": list(self.input_names),
            "extra_inputs": list(self.extra_inputs),
            "source_inputs": list(self.source_inputs),
            "outputs": dict(self.outputs),
            "kept_layers": self.kept_layers,
            "dropped_layers": self.dropped_layers,
            "kept_params": self.kept_params,
            "dropped_params": self.dropped_params,
            **({"pyramid": {k: dict(v) for k, v in self.pyramid.items()}} if self.pyramid else {}),
            "dropped_before": self.dropped_before,
            "warnings": list(self.warnings),
        }

    def source_inputs_text(self, total: int) -> str:
        """``"; uses 1 of the source's 2 inputs: image"`` for a source with ``total`` inputs
        (``""`` for a source with one): the inputs a cut needs, for summaries."""
        if total <= 1:
            return ""
        names = ", ".join(self.source_inputs)
        if len(self.source_inputs) == total:
            return f"; uses all {total} of the source's inputs: {names}"
        return f"; uses {len(self.source_inputs)} of the source's {total} inputs: {names}"


@dataclass
class Resolved:
    """A plan plus the view indices ``cut`` needs to build it."""

    plan: CutPlan
    view: GraphView
    input_tensors: list[int]
    output_tensors: list[int]
    output_form: Literal["single", "list", "dict"]
    kept_ops: list[int] = field(default_factory=list)


def plan_cut(
    model: Any,
    *,
    start: StartSpec = None,
    end: EndSpec = None,
    drop_first: int | None = None,
    extra_inputs: Literal["error", "auto"] = "error",
    levels: list[int] | None = None,
) -> CutPlan:
    """Resolve a cut without building it; raises ``CutError`` exactly where :func:`cut` would.

        >>> import keras
        >>> from kerascut_core.surgery import plan_cut
        >>> x = keras.Input((8,), name="x")
        >>> h = keras.layers.Dense(8, name="a")(x)
        >>> model = keras.Model(x, keras.layers.Dense(2, name="b")(h))
        >>> plan = plan_cut(model, start="a")
        >>> plan.inputs, plan.outputs, plan.kept, plan.source_inputs
        (['a'], {'b': 'b'}, ['b'], ['x'])
    """
    return resolve(model, CutSpec(start=start, end=end, drop_first=drop_first,
                                   extra_inputs=extra_inputs, levels=levels)).plan


def resolve(model: Any, spec: CutSpec) -> Resolved:
    view = graph_view(model)
    taps: dict[str, dict[str, Any]] = {}
    if isinstance(spec.end, str) and spec.end == AUTO_PYRAMID:
        found = pyramid_taps(view, spec.levels)
        taps = {key: tap.record() for key, tap in found.items()}
        spec = dataclasses.replace(spec, end={key: tap.address for key, tap in found.items()}, levels=None)
    spec = resolve_tensors(view, spec)
    ends, out_names, form = resolve_ends(view, spec.end)
    starts = resolve_starts(view, spec, ends)
    keep_source_inputs = starts is None
    if starts is None:
        needed = view.ancestors(ends)
        starts = [t for t in view.inputs if t in needed]
    start_set = set(starts)

    # Tensors that depend on a start (starts included), in one topological pass.
    after = [False] * len(view.tensors)
    for t in range(len(view.tensors)):
        after[t] = t in start_set or any(after[i] for i in view.producer(t).inputs)

    names = names_given(spec, view, starts)
    for t, label in zip(ends, out_names, strict=True):
        if not after[t]:
            raise CutError(
                f"Expected every `end` to come after the start. Received end={label!r}, which "
                f"does not depend on {names}: it is before the start or on another "
                f"branch. Pick a start before the end. {POINTER}"
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
                f"start. {POINTER}"
            )
    if not kept:
        raise CutError(
            f"Expected the cut to keep at least one layer. Received {names} and "
            f"end={spec.end!r}, which leave nothing between them. Pick an end after the start. "
            f"{POINTER}"
        )

    extras = sorted(crossing)
    if extras and spec.extra_inputs != "auto":
        raise CutError(_crossing_message(view, names, starts, ends, crossing))

    input_tensors = starts + extras
    computed_from = view.ancestors(input_tensors)
    kept_ops = sorted(kept)
    counts = _count_layers(view, kept_ops)
    before = {view.producer(t).index for t in view.ancestors(ends)} - kept
    dropped_before = len(_distinct_layers(view, before))
    extra_addresses = [view.tensors[t].address for t in extras]
    plan = CutPlan(
        source=model.name,
        spec=spec,
        inputs=[view.tensors[t].address for t in input_tensors],
        input_names=_input_names(view, input_tensors, kept_ops),
        extra_inputs=extra_addresses,
        source_inputs=[view.tensors[t].address for t in view.inputs if t in computed_from],
        outputs=dict(zip(output_keys(view, out_names, ends, form), (view.tensors[t].address for t in ends), strict=True)),
        kept=[view.ops[i].address for i in kept_ops],
        **counts,
        pyramid=taps,
        dropped_before=dropped_before,
        warnings=_drop_first_warnings(spec, dropped_before, [view.tensors[t].address for t in starts], extra_addresses),
    )
    return Resolved(plan, view, input_tensors, list(ends), form, kept_ops)


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
    points = dominators(view, ends)
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
        f"extra inputs. {POINTER}"
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


def _drop_first_warnings(spec: CutSpec, dropped_before: int, starts: list[str], extras: list[str]) -> list[str]:
    """The warning of a ``drop_first`` cut whose extra inputs dropped more layers than asked."""
    n = spec.drop_first
    if n is None or not extras or dropped_before <= n:
        return []
    shown = ", ".join(extras[:5]) + (f" and {len(extras) - 5} more" if len(extras) > 5 else "")
    return [
        f"dropping the first {n} layers with extra inputs 'auto' dropped {dropped_before} layers before "
        f"the start, not {n}: the layers after {starts[0]!r} do not all depend on it (parallel branches), "
        f"so {len(extras)} tensors they need became new inputs: {shown}. Check that this is the cut you "
        "meant, or start at a cut point every path passes through (kerascut inspect MODEL, "
        "kerascut_core.cut_points(model))."
    ]


def _distinct_layers(view: GraphView, indices: Any) -> dict[int, Any]:
    """The distinct layers (weights counted once) of the operations at ``indices``, inputs left out."""
    import keras

    found = {}
    for i in indices:
        op = view.ops[i].operation
        if isinstance(op, keras.layers.Layer) and not view.ops[i].is_input:
            found[id(op)] = op
    return found


def _count_layers(view: GraphView, kept_ops: list[int]) -> dict[str, int]:
    distinct = functools.partial(_distinct_layers, view)
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
