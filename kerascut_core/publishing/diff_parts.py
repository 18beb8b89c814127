"""The parts of a version diff: one change, the weights and numbers records, and the manifest
comparisons (inputs, outputs, preprocessing, lineage) that need no model.

Outputs are matched by name; an output of ``a`` missing from ``b`` whose source ``address``
an output of ``b`` missing from ``a`` has is *renamed*. Inputs are matched by name, then by the
source tensor they replace. Values are kept as they are in the manifests; lines quote names
with ``repr`` and the caller escapes them for where they are shown.

    >>> Change("output", "C4", "channels", 1024, 512).line()
    "output 'C4': channels 1024 -> 512"
    >>> Change("output", "C5", "removed").line()
    "output 'C5' removed"
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kerascut_core.publishing.manifest import InputInfo, Manifest, OutputInfo, Preprocessing

__all__ = [
    "OUTPUT_FIELDS",
    "Change",
    "NumbersDiff",
    "WeightsDiff",
    "compare_inputs",
    "compare_lineage",
    "compare_outputs",
    "compare_preprocessing",
    "output_changes",
]

_ADDED, _REMOVED, _RENAMED = "added", "removed", "renamed"


@dataclass(frozen=True)
class Change:
    """One difference: ``kind`` (``input``, ``output``, ``preprocessing``, ``lineage``), the
    ``subject`` it is about (a tensor's name, or ``None``), ``what`` changed (a field, or
    ``added`` / ``removed`` / ``renamed``) and the values before and after."""

    kind: str
    subject: str | None
    what: str
    before: Any = None
    after: Any = None

    def line(self) -> str:
        head = f"{self.kind} {self.subject!r}" if self.subject is not None else self.kind
        if self.what in (_ADDED, _REMOVED):
            return f"{head} {self.what}"
        if self.what == _RENAMED:
            return f"{head} renamed to {self.after!r}"
        return f"{head}: {self.what} {_show(self.before)} -> {_show(self.after)}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "subject": self.subject, "what": self.what,
                "before": self.before, "after": self.after, "line": self.line()}


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "(" + ", ".join("?" if v is None else str(v) for v in value) + ")"
    return "none" if value is None else str(value)


@dataclass
class WeightsDiff:
    """The weights compared bitwise, layer by layer (a layer is the path before a variable's name).

    ``changed_layers`` lists the layers with any variable that differs (or exists on one side
    only); ``largest`` is the largest absolute change of one value, in ``largest_layer``.
    """

    compared: bool
    layers: int
    changed_layers: list[str] = field(default_factory=list)
    largest: float | None = None
    largest_layer: str | None = None
    note: str | None = None

    @property
    def identical(self) -> bool:
        return self.compared and not self.changed_layers

    def line(self) -> str:
        if self.identical:
            return "weights bitwise equal" + (f" ({self.note})" if self.note else f" ({self.layers} layers)")
        shown = ", ".join(repr(n) for n in self.changed_layers[:5]) + (", ..." if len(self.changed_layers) > 5 else "")
        largest = "" if self.largest is None else f"; largest change {self.largest:.3g} in {self.largest_layer!r}"
        return f"weights changed in {len(self.changed_layers)} of {self.layers} layers ({shown}){largest}"

    def to_json(self) -> dict[str, Any]:
        return {"compared": self.compared, "identical": self.identical, "layers": self.layers,
                "changed": len(self.changed_layers), "changed_layers": list(self.changed_layers),
                "largest": self.largest, "largest_layer": self.largest_layer, "note": self.note}


@dataclass(frozen=True)
class NumbersDiff:
    """One common output on the same seeded inputs: the max abs difference and the relative one
    (the max abs difference over the largest magnitude of ``a``'s activation)."""

    output: str
    max_abs_diff: float
    max_rel_diff: float
    samples: int

    def line(self) -> str:
        return f"output {self.output!r}: max abs diff {self.max_abs_diff:.3g}, rel diff {self.max_rel_diff:.3g} " \
               f"({self.samples} samples)"

    def to_json(self) -> dict[str, Any]:
        return {"output": self.output, "max_abs_diff": self.max_abs_diff, "max_rel_diff": self.max_rel_diff,
                "samples": self.samples}


def _fields(kind: str, name: str | None, a: Any, b: Any, names: Sequence[str]) -> list[Change]:
    return [Change(kind, name, f, getattr(a, f), getattr(b, f)) for f in names if getattr(a, f) != getattr(b, f)]


#: the fields of an output a consumer relies on
OUTPUT_FIELDS = ("shape", "dtype", "channels", "stride")


def output_changes(name: str, before: OutputInfo, after: OutputInfo) -> list[Change]:
    """The changes of one output (same name): shape, dtype, channels, stride."""
    return _fields("output", name, before, after, OUTPUT_FIELDS)


def _renames(gone: dict[str, Any], new: dict[str, Any], key: str) -> list[tuple[str, str]]:
    pairs = []
    by_key: dict[Any, str] = {}
    for name, info in new.items():
        if getattr(info, key) is not None:
            by_key.setdefault(getattr(info, key), name)
    for name, info in gone.items():
        match = by_key.get(getattr(info, key)) if getattr(info, key) is not None else None
        if match is not None and match in new:
            pairs.append((name, match))
            del by_key[getattr(info, key)]
    return pairs


def _compare(kind: str, a: Sequence[Any], b: Sequence[Any], key: str, fields: Sequence[str]) -> list[Change]:
    before = {t.name: t for t in a}
    after = {t.name: t for t in b}
    gone = {n: t for n, t in before.items() if n not in after}
    new = {n: t for n, t in after.items() if n not in before}
    changes: list[Change] = []
    for old, renamed in _renames(gone, new, key):
        changes.append(Change(kind, old, _RENAMED, old, renamed))
        changes += _fields(kind, old, gone.pop(old), new.pop(renamed), fields)
    changes += [Change(kind, n, _REMOVED) for n in gone]
    changes += [Change(kind, n, _ADDED) for n in new]
    for name, info in before.items():
        if name in after:
            changes += _fields(kind, name, info, after[name], fields)
    return changes


def compare_inputs(a: Sequence[InputInfo], b: Sequence[InputInfo]) -> list[Change]:
    """Inputs added, removed, renamed (same ``replaces``), or with another shape or dtype."""
    return _compare("input", a, b, "replaces", ("shape", "dtype"))


def compare_outputs(a: Sequence[OutputInfo], b: Sequence[OutputInfo]) -> list[Change]:
    """Outputs added, removed, renamed (same ``address``), or with another shape, dtype,
    channels or stride."""
    return _compare("output", a, b, "address", OUTPUT_FIELDS)


_PREPROCESSING_FIELDS = ("mode", "function", "scale", "offset", "applies_to_inputs", "data_format")


def compare_preprocessing(a: Preprocessing | None, b: Preprocessing | None) -> list[Change]:
    """Mode, function, scale and offset, and each in-graph preprocessing layer kept or dropped
    (a version 1 manifest without preprocessing reads as ``unknown``)."""
    a, b = a or Preprocessing(), b or Preprocessing()
    changes = _fields("preprocessing", None, a, b, _PREPROCESSING_FIELDS)
    kept_a = {layer.address: layer.kept for layer in a.layers}
    kept_b = {layer.address: layer.kept for layer in b.layers}
    for address in sorted(set(kept_a) | set(kept_b)):
        before, after = kept_a.get(address), kept_b.get(address)
        if before != after:
            word = {True: "kept", False: "dropped", None: "absent"}
            changes.append(Change("preprocessing", address, "in-graph layer", word[before], word[after]))
    return changes


def compare_lineage(a: Manifest, b: Manifest) -> list[Change]:
    """Source fingerprint, kerascut, Keras and TensorFlow versions, Keras backend (information,
    never breaking)."""
    pairs = [
        ("source fingerprint", a.source.fingerprint, b.source.fingerprint),
        ("source uri", a.source.uri, b.source.uri),
        ("kerascut", a.software.kerascut, b.software.kerascut),
        ("keras", a.software.keras, b.software.keras),
        ("tensorflow", a.software.tensorflow, b.software.tensorflow),
        ("keras backend", a.software.keras_backend, b.software.keras_backend),
    ]
    return [Change("lineage", None, what, x, y) for what, x, y in pairs if x != y]
