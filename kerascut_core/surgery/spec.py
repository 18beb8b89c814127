"""The cut spec: where a source model is cut (``start`` / ``drop_first`` / ``end`` / ``extra_inputs``).

Pure Python, no TensorFlow: the spec travels through configs, manifests and Prefect parameters.

``start`` and ``end`` name tensors by their graph-view addresses. From Python they may also be
the model's own ``KerasTensor`` objects (one, a list, or a dict such as a keras-hub backbone's
``pyramid_outputs``); the cut resolves those to addresses, and the plan records the addresses.
``end="pyramid_outputs"`` (:data:`PYRAMID_OUTPUTS`, what configs and the CLI write) means the
source's own ``pyramid_outputs`` attribute; ``end="auto-pyramid"`` (:data:`AUTO_PYRAMID`) the
pyramid found from the graph (level k: the latest valid cut point at stride 2^k), with
``levels`` choosing which (default: every level from 2 up to the model's last).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kerascut_core._names import short_repr
from kerascut_core.errors import CutError

__all__ = [
    "AUTO_PYRAMID",
    "AUTO_PYRAMID_RULE",
    "PYRAMID_OUTPUTS",
    "CutSpec",
    "EndSpec",
    "StartSpec",
    "is_keras_tensor",
]

#: ``end`` naming the source's ``pyramid_outputs`` attribute (keras-hub backbones): a dict of
#: output names ("P2" .. "P5") to tensors of the model.
PYRAMID_OUTPUTS = "pyramid_outputs"

#: ``end`` naming the pyramid found from the graph (:mod:`kerascut_core.surgery.feature_pyramid`)
AUTO_PYRAMID = "auto-pyramid"
#: the rule ``auto-pyramid`` resolves by; it is part of a backbone's version, so a change of
#: the rule (which can move a tap) makes a new version
AUTO_PYRAMID_RULE = "latest-cut-point-per-stride/1"
#: the largest pyramid level accepted (stride 2**16)
MAX_LEVEL = 16

# Addresses (str) or, from Python, the model's own KerasTensors (resolved by the cut).
StartSpec = str | list[str] | Any | None
EndSpec = str | list[str] | dict[str, str] | Any | None
EXTRA_INPUTS = ("error", "auto")


@dataclass(frozen=True)
class CutSpec:
    """Where to cut. ``start`` and ``drop_first`` are exclusive; ``None`` keeps the original side.

    ``drop_first=N`` starts after the first N entries of ``model.layers`` that are not
    ``InputLayer`` (a nested model counts as one; raw ``keras.ops`` calls are not layers).
    ``levels`` picks the pyramid levels of ``end="auto-pyramid"`` (only with it).
    """

    start: StartSpec = None
    end: EndSpec = None
    drop_first: int | None = None
    extra_inputs: Literal["error", "auto"] = "error"
    levels: list[int] | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.drop_first is not None:
            raise CutError(
                "Expected either `start` or `drop_first`, not both. "
                f"Received start={self.start!r} and drop_first={self.drop_first!r}. "
                "Remove one of them."
            )
        if self.drop_first is not None and (
            isinstance(self.drop_first, bool) or not isinstance(self.drop_first, int)
            or self.drop_first < 1
        ):
            raise CutError(
                f"Expected `drop_first` to be a positive integer. Received drop_first={self.drop_first!r}."
            )
        if self.extra_inputs not in EXTRA_INPUTS:
            raise CutError(
                f"Expected `extra_inputs` to be one of {list(EXTRA_INPUTS)}. "
                f"Received extra_inputs={self.extra_inputs!r}."
            )
        for label, value in (("start", self.start), ("end", self.end)):
            _check_names(label, value)
        if self.levels is not None:
            _check_levels(self.levels, self.end)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with the four fields (lists, not tuples), and ``levels`` when set."""
        found = {
            "start": _plain(self.start),
            "end": _plain(self.end),
            "drop_first": self.drop_first,
            "extra_inputs": self.extra_inputs,
        }
        if self.levels is not None:
            found["levels"] = list(self.levels)
        return found

    @classmethod
    def from_dict(cls, data: CutSpec | Mapping[str, Any] | None) -> CutSpec:
        """Build from a dict with the config's cut fields; unknown keys are ignored."""
        if isinstance(data, CutSpec):
            return data
        data = dict(data or {})
        return cls(
            start=_plain(data.get("start")),
            end=_plain(data.get("end")),
            drop_first=data.get("drop_first"),
            extra_inputs=data.get("extra_inputs") or "error",
            levels=_plain(data.get("levels")),
        )


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def is_keras_tensor(value: Any) -> bool:
    """Whether ``value`` is a symbolic ``keras.KerasTensor`` (Keras is not imported for this)."""
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(value, keras.KerasTensor)


def _endpoint(value: Any) -> bool:
    return (isinstance(value, str) and bool(value)) or is_keras_tensor(value)


def _check_names(label: str, value: Any) -> None:
    if value is None or isinstance(value, str) or is_keras_tensor(value):
        if isinstance(value, str) and not value:
            raise CutError(f"Expected `{label}` to be a layer name. Received an empty string.")
        return
    items = value.values() if isinstance(value, dict) else value
    keys_ok = not isinstance(value, dict) or all(isinstance(k, str) and k for k in value)
    if not isinstance(value, (list, tuple, dict)) or not keys_ok or not all(_endpoint(v) for v in items):
        raise CutError(
            f"Expected `{label}` to be a layer name or a KerasTensor of the model, a list of them"
            + (" or a dict of output names to them" if label == "end" else "")
            + f". Received {label}={short_repr(value, 200)}."
        )
    if not value:
        raise CutError(f"Expected `{label}` to name at least one layer. Received an empty {type(value).__name__}.")


def _check_levels(levels: Any, end: Any) -> None:
    if not (isinstance(end, str) and end == AUTO_PYRAMID):
        raise CutError(
            f"Expected `levels` only with end={AUTO_PYRAMID!r}. Received levels={short_repr(levels, 80)} "
            f"with end={short_repr(end, 120)}. Remove `levels` or set end={AUTO_PYRAMID!r}."
        )
    ok = isinstance(levels, (list, tuple)) and all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_LEVEL for v in levels
    )
    if not ok or not levels or len(set(levels)) != len(levels):
        raise CutError(
            f"Expected `levels` to be distinct integers from 0 to {MAX_LEVEL}, such as [3, 4, 5] "
            f"(level k is stride 2**k). Received levels={short_repr(levels, 80)}."
        )
