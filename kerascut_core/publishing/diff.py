"""What changed between two versions of a backbone, and whether a consumer may take the change.

:func:`diff` compares two published versions (``STORE/NAME@ALIAS`` or ``STORE/NAME@VERSION``):

- **interface**: inputs and outputs added, removed or renamed (an output that keeps its source
  address under another name, an input that replaces the same source tensor); per output its
  shape, dtype, channels and stride; per input its shape and dtype;
- **preprocessing**: mode, function, scale and offset, and each in-graph preprocessing layer
  kept or dropped;
- **weights**: which layers changed, bitwise, how many, and the largest change
  (:mod:`kerascut_core.publishing.diff_models`);
- **numbers**: on the same seeded inputs, per common output, the max abs and relative
  difference of the activations (``samples=0`` loads no model);
- **lineage**: source fingerprint, kerascut, Keras and TensorFlow versions, Keras backend;
- a **verdict**: ``identical`` (same interface and preprocessing, bitwise-equal weights),
  ``compatible`` (same interface and preprocessing; weights or numbers differ) or ``breaking``
  (the interface or the preprocessing changed), with one line per reason.

:func:`diff_manifests` is the part that reads only the two manifests (no Keras): the pointer
gate, the events and the model card use it.

    >>> import kerascut_core as kc
    >>> result = kc.diff("./backbones/mnv2@prod", "./backbones/mnv2@latest")   # doctest: +SKIP
    >>> result.verdict, result.reasons                                        # doctest: +SKIP
    ('breaking', ["output 'C5' removed"])
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

from kerascut_core.publishing.diff_parts import (
    Change,
    NumbersDiff,
    WeightsDiff,
    compare_inputs,
    compare_lineage,
    compare_outputs,
    compare_preprocessing,
)
from kerascut_core.publishing.manifest import Manifest

__all__ = [
    "DEFAULT_SAMPLES",
    "Change",
    "NumbersDiff",
    "Verdict",
    "VersionDiff",
    "WeightsDiff",
    "diff",
    "diff_manifests",
]

#: seeded inputs pushed through both versions unless ``samples`` says otherwise
DEFAULT_SAMPLES = 8

Verdict = Literal["identical", "compatible", "breaking"]


@dataclass
class VersionDiff:
    """The difference between version ``a`` and version ``b`` of a backbone (``b`` is the new one).

    ``interface`` and ``preprocessing`` hold the changes that make a move breaking; ``lineage``
    is informational. ``weights`` is ``None`` when the models were not compared (``samples=0``
    and the model files differ), ``numbers`` is ``None`` when no activations were compared.
    """

    a: dict[str, str | None]
    b: dict[str, str | None]
    interface: list[Change] = field(default_factory=list)
    preprocessing: list[Change] = field(default_factory=list)
    lineage: list[Change] = field(default_factory=list)
    weights: WeightsDiff | None = None
    numbers: list[NumbersDiff] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def breaking(self) -> bool:
        return bool(self.interface or self.preprocessing)

    @property
    def verdict(self) -> Verdict:
        if self.breaking:
            return "breaking"
        if self.weights is not None and self.weights.identical:
            return "identical"
        return "compatible"

    @property
    def reasons(self) -> list[str]:
        """One line per reason for the verdict: each breaking change, else what differs."""
        if self.breaking:
            return [c.line() for c in (*self.interface, *self.preprocessing)]
        if self.weights is None:
            return ["same interface and preprocessing; weights not compared (the model files differ)"]
        if self.weights.identical:
            return ["same interface and preprocessing; every weight is bitwise equal"]
        lines = [self.weights.line()]
        lines += [n.line() for n in self.numbers or [] if n.max_abs_diff != 0.0]
        return lines

    def to_json(self) -> dict[str, Any]:
        """The JSON form (``kerascut diff --json``)."""
        return {
            "a": dict(self.a),
            "b": dict(self.b),
            "verdict": self.verdict,
            "reasons": self.reasons,
            "interface": [c.to_json() for c in self.interface],
            "preprocessing": [c.to_json() for c in self.preprocessing],
            "weights": None if self.weights is None else self.weights.to_json(),
            "numbers": None if self.numbers is None else [n.to_json() for n in self.numbers],
            "lineage": [c.to_json() for c in self.lineage],
            "notes": list(self.notes),
        }

    def changes(self) -> dict[str, Any]:
        """The manifest's ``changes`` record (:class:`~kerascut_core.publishing.manifest.Changes`)
        of ``b`` against ``a``."""
        return {
            "from_version": self.a["version"],
            "verdict": self.verdict,
            "reasons": self.reasons,
            "interface": [c.line() for c in self.interface],
            "preprocessing": [c.line() for c in self.preprocessing],
            "weights": None if self.weights is None else self.weights.line(),
            "lineage": [c.line() for c in self.lineage],
        }

    def lines(self) -> list[str]:
        """The plain-text report (``kerascut diff``); store text is the caller's to escape."""
        out = [f"{self.a['name']}@{self.a['version']} -> {self.b['name']}@{self.b['version']}: {self.verdict}"]
        out += [f"  {r}" for r in self.reasons]
        sections: list[tuple[str, list[str]]] = [
            ("interface", [c.line() for c in self.interface] or ["unchanged"]),
            ("preprocessing", [c.line() for c in self.preprocessing] or ["unchanged"]),
            ("weights", [self.weights.line()] if self.weights is not None else ["not compared"]),
            ("numbers", [n.line() for n in self.numbers] if self.numbers is not None else ["not compared"]),
            ("lineage", [c.line() for c in self.lineage] or ["unchanged"]),
        ]
        for title, rows in sections:
            out.append(f"{title}:")
            out += [f"  {row}" for row in rows]
        out += [f"note: {n}" for n in self.notes]
        return out


def _side(manifest: Manifest, ref: str | None, pointer: str | None) -> dict[str, str | None]:
    return {"ref": ref, "name": manifest.name, "version": manifest.version, "pointer": pointer}


def diff_manifests(
    a: Manifest, b: Manifest, *, a_ref: str | None = None, b_ref: str | None = None,
    a_pointer: str | None = None, b_pointer: str | None = None,
) -> VersionDiff:
    """The difference of two manifests without loading a model: interface, preprocessing and
    lineage; the weights are known identical only when it is the same version or the model
    files have the same sha256."""
    result = VersionDiff(a=_side(a, a_ref, a_pointer), b=_side(b, b_ref, b_pointer))
    result.interface = compare_inputs(a.inputs, b.inputs) + compare_outputs(a.outputs, b.outputs)
    result.preprocessing = compare_preprocessing(a.preprocessing, b.preprocessing)
    result.lineage = compare_lineage(a, b)
    pa, pb = a.primary, b.primary
    if (a.name, a.version) == (b.name, b.version) or (pa is not None and pb is not None and pa.sha256 == pb.sha256):
        result.weights = WeightsDiff(compared=True, layers=0, changed_layers=[], largest=0.0, largest_layer=None,
                                     note="the model files are the same bytes")
        if a.version != b.version:
            result.notes.append("the model files are the same bytes (same sha256)")
    return result


def diff(
    a: str,
    b: str,
    *,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
) -> VersionDiff:
    """Compare version ``a`` with version ``b`` (``STORE/NAME@ALIAS`` or ``STORE/NAME@VERSION``;
    no ``@`` is ``@latest``); see the module docstring. ``samples`` seeded inputs (``seed``)
    go through both models (``0`` loads no model: weights are then compared only by the model
    files' sha256). Both versions are read with every artifact's sha256 checked."""
    from kerascut_core.errors import BadRefError, IntegrityError, KerascutError
    from kerascut_core.publishing.consumer import resolve
    from kerascut_core.publishing.pointer_files import resolve_pointer
    from kerascut_core.uris import split_backbone_ref

    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
        raise BadRefError(f"Expected samples to be a whole number of at least 0 (0 loads no model). Received {samples!r}.")
    sides = []
    for ref in (a, b):
        try:
            store, name, version, manifest = resolve(ref)
            pinned = split_backbone_ref(ref)[2] or "latest"
            pointer = resolve_pointer(store, name, pinned)[1]
        except IntegrityError:
            raise
        except KerascutError as exc:  # a reference that names nothing readable: bad input
            raise BadRefError(str(exc)) from None
        sides.append((store, name, version, manifest, pointer))
    (_, _, _, ma, pa), (_, _, _, mb, pb) = sides
    result = diff_manifests(ma, mb, a_ref=a, b_ref=b, a_pointer=pa, b_pointer=pb)
    if samples == 0:
        if result.weights is None:
            result.notes.append("--samples 0: no model was loaded, so weights and numbers were not compared")
        return result
    from kerascut_core.publishing.diff_models import compare_models

    compare_models(result, (a, ma), (b, mb), samples=samples, seed=seed, cache_dir=cache_dir)
    return result
