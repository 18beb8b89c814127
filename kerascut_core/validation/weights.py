"""Weight fidelity: every candidate variable bitwise equal to the source's, by layer path.

Candidate layers are matched to source layers by path (nested models walked as
``outer/inner``, the flattened-name rule of :mod:`kerascut_core.surgery.names`), then by bare
name; variables by name within the layer. A candidate variable with no counterpart fails, and
so does a variable the cut should keep but the candidate lacks.
"""

from __future__ import annotations

import math
import re
from typing import Any

from kerascut_core.surgery.names import flat_name, layer_name, leaf
from kerascut_core.validation.report import WeightCheck

__all__ = ["check_weights", "kept_layer_ids", "match_layers", "weight_failures"]


def _layers(model: Any, within: str = "") -> list[tuple[str, Any]]:
    """Every non-model layer with its path; nested models are walked (``outer/inner``)."""
    import keras

    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model) and hasattr(layer, "layers"):
            found += _layers(layer, flat_name(layer.name, within=within))
        else:
            found.append((flat_name(layer.name, within=within), layer))
    return found


def match_layers(model: Any, source: Any, kept: set[int] | None) -> list[tuple[str, Any, Any]]:
    """``(path, candidate layer, source layer or None)`` for every layer of the candidate.

    A candidate layer matches the source layer, in order of preference, with:

    1. the same path;
    2. the same path written with ``_`` for ``/`` (a cut that inlines nested models renames a
       layer whose name an earlier kept layer already has after its address);
    3. the same bare name (``block_6_expand`` is ``mobilenetv2/block_6_expand`` inlined); when
       several source layers have it, the first one not matched yet, layers the cut keeps
       first, in the source's order.

    Each source layer matches at most one candidate layer.
    """
    layers = _layers(source)
    by_path = {address: layer for address, layer in layers}
    by_flat = {layer_name(address): layer for address, layer in layers}
    by_leaf: dict[str, list[Any]] = {}
    for address, layer in layers:
        by_leaf.setdefault(leaf(address), []).append(layer)
    if kept is not None:
        for options in by_leaf.values():
            options.sort(key=lambda layer: id(layer) not in kept)  # stable: source order kept
    used: set[int] = set()
    found = []
    for address, layer in _layers(model):
        match = by_path.get(address)
        if match is None:
            match = by_flat.get(address)
        if match is None or id(match) in used:
            match = next((o for o in by_leaf.get(leaf(address), []) if id(o) not in used), None)
        if match is not None:
            used.add(id(match))
        found.append((address, layer, match))
    return found


_AUTO_NAMED = re.compile(r"^variable(_\d+)?$")


def _variables(layer: Any) -> list[tuple[str, Any]]:
    """(key, variable) for a layer; the key is the variable name, ``name#k`` when repeated.

    A weight created without a name is called ``variable_<n>`` with a process-wide counter
    (ConvNeXt's layer scales), so the same weight has another name after a reload: such names
    become ``variable``, told apart by their order in the layer.
    """
    seen: dict[str, int] = {}
    out = []
    for var in layer.weights:
        name = "variable" if _AUTO_NAMED.match(var.name) else var.name
        k = seen.get(name, 0)
        seen[name] = k + 1
        out.append((name if k == 0 else f"{name}#{k}", var))
    return out


def kept_layer_ids(source: Any, plan: Any) -> set[int] | None:
    """``id`` of each source layer the cut must keep: the ops between its inputs and outputs."""
    try:
        from kerascut_core.surgery import graph_view

        view = graph_view(source)
        stop = {view.resolve(a) for a in plan.inputs}
        stack = [view.resolve(a) for a in plan.outputs.values()]
    except Exception:  # the plan speaks addresses the view should know; if not, skip the check
        return None
    seen: set[int] = set()
    kept: set[int] = set()
    while stack:
        tensor = stack.pop()
        if tensor in seen or tensor in stop:
            continue
        seen.add(tensor)
        op = view.producer(tensor)
        kept.add(id(op.operation))
        stack.extend(op.inputs)
    return kept


def check_weights(
    source: Any, kept_layers: set[int] | None, matches: list[tuple[str, Any, Any]]
) -> WeightCheck:
    """Bitwise equality of every candidate variable with its source counterpart.

    Variables are matched by layer (see :func:`match_layers`) and variable name. A candidate
    variable with no counterpart, or whose counterpart lies outside the cut, fails; so does a
    variable of a layer the cut keeps that the candidate lacks.
    """
    import numpy as np

    source_vars: dict[int, tuple[str, Any]] = {}
    for address, layer in _layers(source):
        for key, var in _variables(layer):
            source_vars.setdefault(id(var), (f"{address}/{key}", var))
    expected: dict[int, str] = {}
    if kept_layers is not None:
        for address, layer in _layers(source):
            if id(layer) in kept_layers:
                for key, var in _variables(layer):
                    expected.setdefault(id(var), f"{address}/{key}")

    check = WeightCheck(
        source_variables=len(source_vars),
        source_params=sum(_size(v) for _, v in source_vars.values()),
    )
    matched: set[int] = set()
    for address, layer, counterpart in matches:
        counterpart_vars = dict(_variables(counterpart)) if counterpart is not None else {}
        for key, var in _variables(layer):
            label = f"{address}/{key}"
            source_var = counterpart_vars.get(key)
            if source_var is None:
                check.unmatched.append(label)
                continue
            matched.add(id(source_var))
            a = np.asarray(var.numpy())
            b = np.asarray(source_var.numpy())
            if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
                check.mismatched.append(label)
            if kept_layers is not None and id(source_var) not in expected:
                check.unmatched.append(f"{label} (outside the cut)")
    check.missing = [label for vid, label in expected.items() if vid not in matched]
    check.variables_kept = len(matched)
    check.params_kept = sum(_size(source_vars[v][1]) for v in matched if v in source_vars)
    check.variables_dropped = check.source_variables - check.variables_kept
    check.params_dropped = check.source_params - check.params_kept
    check.passed = not (check.mismatched or check.unmatched or check.missing)
    return check


def _size(var: Any) -> int:
    return int(math.prod(var.shape))


def weight_failures(check: WeightCheck) -> list[str]:
    out = []
    for label, names, what in (
        ("not bitwise equal to the source", check.mismatched, "variable"),
        ("with no counterpart in the source's cut", check.unmatched, "variable"),
        ("kept by the cut but missing from the candidate", check.missing, "source variable"),
    ):
        if names:
            shown = ", ".join(repr(n) for n in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            out.append(f"{len(names)} {what}(s) {label}: {shown}")
    return out
