"""Structure: the candidate's input and output shapes, dtypes and dtype policies.

Each input and output of the candidate is checked against the probe's tensor at the same
address (shape and dtype); the candidate's dtype policy against the source's, and each
matched layer's (:func:`kerascut_core.validation.weights.match_layers`) against its
counterpart's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from kerascut_core import keras_compat
from kerascut_core.validation.messages import shape_text
from kerascut_core.validation.report import StructureCheck, TensorCheck

__all__ = ["check_structure"]


def check_structure(
    model: Any,
    source: Any,
    plan: Any,
    *,
    expected_inputs: list[Any],
    expected_outputs: list[Any],
    matches: list[tuple[str, Any, Any]],
) -> StructureCheck:
    """Shapes and dtypes of the candidate's inputs and outputs against the probe's tensors at
    the same addresses, the model's dtype policy, and each matched layer's dtype policy.

    ``model`` is the reloaded candidate; a candidate that did not reload is not checked at all
    (the report's ``structure`` is then ``None``: "not run").
    """
    check = StructureCheck()
    actual_outputs = _model_outputs(model, list(plan.outputs))
    pairs: list[tuple[Literal["input", "output"], Any, Any, Any, Any]] = [
        ("input", address, address, exp, act)
        for address, exp, act in _zip_longest(plan.inputs, expected_inputs, list(model.inputs))
    ]
    for item, exp, act in _zip_longest(list(plan.outputs.items()), expected_outputs, actual_outputs):
        name, address = item if item is not None else (None, None)
        pairs.append(("output", name, address, exp, act))
    for role, name, address, expected, actual in pairs:
        row = TensorCheck(
            role=role,
            name=str(name if name is not None else "(extra)"),
            address=str(address if address is not None else "(none)"),
            expected_shape=None if expected is None else list(expected.shape),
            actual_shape=None if actual is None else list(actual.shape),
            expected_dtype=None if expected is None else str(expected.dtype),
            actual_dtype=None if actual is None else str(actual.dtype),
            passed=False,
        )
        row.passed = (
            expected is not None
            and actual is not None
            and row.expected_shape == row.actual_shape
            and row.expected_dtype == row.actual_dtype
        )
        if not row.passed:
            check.problems.append(
                f"{role} {row.name!r}: expected {shape_text(row.expected_shape or [])} "
                f"{row.expected_dtype}, received {shape_text(row.actual_shape or [])} {row.actual_dtype}"
                if expected is not None and actual is not None
                else f"{role} {row.name!r}: "
                + ("missing from the candidate" if actual is None else "not in the cut spec")
            )
        check.tensors.append(row)
    check.expected_dtype_policy = _policy(source)
    check.actual_dtype_policy = _policy(model)
    if check.expected_dtype_policy != check.actual_dtype_policy:
        check.problems.append(
            f"dtype policy: expected {check.expected_dtype_policy!r}, received {check.actual_dtype_policy!r}"
        )
    for address, layer, match in matches:
        if match is not None and _policy(layer) != _policy(match):
            check.problems.append(
                f"layer {address!r}: dtype policy {_policy(layer)!r}, source has {_policy(match)!r}"
            )
    check.passed = not check.problems
    return check


def _zip_longest(*seqs: Sequence[Any]) -> list[tuple[Any, ...]]:
    size = max(len(s) for s in seqs)
    return [tuple(s[i] if i < len(s) else None for s in seqs) for i in range(size)]


def _model_outputs(model: Any, names: Sequence[str]) -> list[Any]:
    """The candidate's output KerasTensors, in ``names`` order when it returns a dict."""
    struct = keras_compat.outputs_struct(model)
    if isinstance(struct, dict):
        if set(struct) == set(names):
            return [struct[n] for n in names]
        return list(struct.values())
    return list(model.outputs)


def _policy(obj: Any) -> str | None:
    policy = getattr(obj, "dtype_policy", None)
    return None if policy is None else str(getattr(policy, "name", policy))
