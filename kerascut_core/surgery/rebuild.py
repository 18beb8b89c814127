"""Building the cut model: :func:`cut`.

**The source is never changed.** The cut calls shallow copies of the kept operations: they
share the source's variables (so weights are shared) but record their own graph nodes, so the
source's graph stays as it was however often it is cut.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

from kerascut_core import keras_compat
from kerascut_core.errors import CutError, CutWarning
from kerascut_core.surgery.names import SEP, layer_name
from kerascut_core.surgery.plan import Resolved, resolve
from kerascut_core.surgery.spec import CutSpec, EndSpec, StartSpec
from kerascut_core.surgery.view import GraphView

__all__ = ["cut"]


def cut(
    model: Any,
    *,
    start: StartSpec = None,
    end: EndSpec = None,
    drop_first: int | None = None,
    extra_inputs: Literal["error", "auto"] = "error",
    copy: bool = False,
    name: str | None = None,
    levels: list[int] | None = None,
) -> Any:
    """Return a new ``keras.Model`` that computes what ``model`` computes from ``start`` to ``end``.

    Args:
        model: a Functional or Sequential model (nested models are inlined).
        start: an address, or a list of addresses (several inputs). ``None`` keeps the
            original inputs. See :func:`cut_points` for the valid single starts.
        end: an address, a list of addresses, or a dict from output names to addresses
            (a feature pyramid such as ``{"P3": ..., "P4": ..., "P5": ...}``; the cut then
            returns a dict with those keys). ``None`` keeps the original outputs;
            ``"pyramid_outputs"`` is the model's ``pyramid_outputs`` (keras-hub backbones);
            ``"auto-pyramid"`` the pyramid found from the graph (:func:`pyramid`: level k is
            the latest valid cut point at stride 2^k, keyed ``P{k}``).
            Wherever an address goes, the model's own ``KerasTensor`` may go instead
            (``end=backbone.pyramid_outputs``); the plan records its address.
        drop_first: drop the first N layers and start after them. N counts the entries of
            ``model.layers`` that are not ``InputLayer``, in that order: the model's own layers,
            a nested model as one, raw ``keras.ops`` calls (``x + y``) not at all (they are not
            layers). The new input is the output of the N-th counted layer, which must have
            one output tensor. Exclusive with ``start``.
        extra_inputs: ``"error"`` raises ``CutError`` when a skip connection crosses the start
            cut; ``"auto"`` makes each crossing tensor an extra input (after the starts, in
            topological order).
        copy: ``False`` shares the variables with ``model``; ``True`` gives an independent
            model with identical values.
        name: the new model's name (default: ``"<source name>_cut"``).
        levels: the levels of ``end="auto-pyramid"`` (default: 2 up to the model's last).

    The result has a ``cut_plan`` attribute (a :class:`CutPlan`, not saved with the model)
    saying where it came from; each of its ``warnings`` (a ``drop_first`` with
    ``extra_inputs="auto"`` that dropped more than N layers) is raised as a
    :class:`~kerascut_core.errors.CutWarning`. It saves as ``.keras`` and reloads without custom objects.

        >>> import keras
        >>> from kerascut_core.surgery import cut
        >>> base = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3))  # doctest: +SKIP
        >>> backbone = cut(base, start="block_3_expand_relu",
        ...                end={"C4": "block_13_expand_relu", "C5": "out_relu"})  # doctest: +SKIP
    """
    if name is not None and (not isinstance(name, str) or not name or "/" in name):
        raise CutError(f"Expected `name` to be a non-empty string without '/'. Received name={name!r}.")
    resolved = resolve(
        model,
        CutSpec(start=start, end=end, drop_first=drop_first, extra_inputs=extra_inputs,
                levels=levels),
    )
    result = _build(resolved, name=name or f"{model.name}_cut")
    if copy:
        result = _independent_copy(result)
    result.cut_plan = resolved.plan
    for warning in resolved.plan.warnings:
        warnings.warn(warning, CutWarning, stacklevel=2)
    return result


def _build(resolved: Resolved, *, name: str) -> Any:
    import keras

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
        args, kwargs = op.call_arguments(built)
        # Record the call as a node, exactly as a symbolic call would, without re-running
        # shape inference: the inputs have the source's specs, so the outputs do too.
        outputs = [_like(view.tensors[t].keras_tensor) for t in op.outputs]
        keras_compat.record_call(copies[id(op.operation)], args, kwargs, outputs)
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
    for i in sorted(kept_ops, key=lambda i: (view.ops[i].address.count(SEP), i)):
        op = view.ops[i]
        original = op.operation
        if id(original) in copies:
            continue
        name = original.name
        renamed = None
        if name in names or name in reserved:
            base = layer_name(op.address)
            name, k = base, 1
            while name in names or name in reserved:
                name, k = f"{base}_{k}", k + 1
            renamed = name
        names[name] = id(original)
        copies[id(original)] = keras_compat.detached_copy(original, renamed)
    return copies


def _independent_copy(model: Any) -> Any:
    """A model built from ``model``'s config with its own variables holding the same values."""
    import keras

    fresh = keras.Model.from_config(model.get_config())
    fresh.set_weights(model.get_weights())
    return fresh
