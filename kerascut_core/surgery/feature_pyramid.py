"""A feature pyramid found from the graph: ``end="auto-pyramid"``, :func:`pyramid` and :func:`stages`.

The rule, checkable by anyone: **level k is the latest valid cut point whose stride is 2^k**,
keyed ``P{k}`` (where a stage has cut points of exact stride, the latest of those: a padded copy
made for the next strided convolution is not the stage's output). The valid cut points are the dominators of the model's outputs
(:func:`~kerascut_core.surgery.cut_points`, plus the output itself when there is one) and each
tensor's stride is measured by :mod:`kerascut_core.surgery.strides`. That is timm's principle,
"the latest possible point for a given feature map stride", derived instead of declared.

A *stage* is the part of the model at one stride: the operations whose output has that stride.
Its first and latest valid cut points bound it; the latest is its pyramid tap. Where padding
makes a stride inexact at every input size (``valid`` padding: Inception, Xception),
the level is the nominal one, the power of two nearest the measured reduction, and the stage
and tap say ``exact=False``.

    >>> import keras
    >>> from kerascut_core.surgery import pyramid
    >>> model = keras.applications.ResNet50(weights=None, include_top=False)  # doctest: +SKIP
    >>> {k: t.name for k, t in pyramid(model, levels=[3, 4, 5]).items()}        # doctest: +SKIP
    {'P3': 'conv3_block4_out', 'P4': 'conv4_block6_out', 'P5': 'conv5_block3_out'}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from kerascut_core.errors import CutError
from kerascut_core.surgery.dominance import dominators
from kerascut_core.surgery.graph import graph_view
from kerascut_core.surgery.spec import AUTO_PYRAMID, PYRAMID_OUTPUTS
from kerascut_core.surgery.strides import Reduction, reductions
from kerascut_core.surgery.view import GraphView

__all__ = [
    "DEFAULT_FIRST_LEVEL",
    "PyramidTap",
    "Stage",
    "compare_pyramid_outputs",
    "pyramid",
    "pyramid_addresses",
    "pyramid_taps",
    "stages",
]

#: the default pyramid starts at P2 (stride 4), as detection and segmentation heads do
DEFAULT_FIRST_LEVEL = 2
_INSPECT = "See the stages with `kerascut inspect MODEL --stages` or kerascut_core.surgery.stages(model)."


@dataclass(frozen=True)
class Stage:
    """The part of a model at one stride (``2**level``); ``latest`` is its pyramid tap.

    ``first`` / ``latest`` are ``None`` when no tensor at that stride is a valid cut point (a
    branch crosses every one); ``channels`` is the latest's; ``layers`` and ``params`` count
    the distinct layers whose output has this stride (weights once).
    """

    level: int
    stride: int
    exact: bool
    reduction: float
    first: str | None
    latest: str | None
    channels: int | None
    layers: int
    params: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PyramidTap:
    """One output of ``end="auto-pyramid"``: key ``P{level}``, its address and what it is."""

    key: str
    address: str
    level: int
    stride: int
    exact: bool
    reduction: float
    channels: int | None

    def record(self) -> dict[str, Any]:
        """What the manifest records of the tap (beside the output's address and channels)."""
        return {"rule": AUTO_PYRAMID, "level": self.level, "stride": self.stride, "exact": self.exact,
                "reduction": round(self.reduction, 3)}


@dataclass
class _Table:
    view: GraphView
    stages: list[Stage]
    taps: dict[int, int]  # level -> tensor index of its latest valid cut point
    found: list[Reduction | None]


def stages(model: Any) -> list[Stage]:
    """One :class:`Stage` per stride of ``model``, smallest stride first.

    Raises ``CutError`` when no tensor of the model has spatial axes.
    """
    return _table(graph_view(model)).stages


def pyramid_taps(model: Any, levels: Sequence[int] | None = None) -> dict[str, PyramidTap]:
    """The auto-pyramid's taps, ``{"P2": PyramidTap, ...}`` in level order.

    ``levels=None`` is every level from :data:`DEFAULT_FIRST_LEVEL` up to the model's last.
    A level the model does not have, one between two stages, or a stage with no valid cut
    point is a ``CutError`` naming the level, the model and its stages.
    """
    view = model if isinstance(model, GraphView) else graph_view(model)
    table = _table(view)
    by_level = {s.level: s for s in table.stages}
    chosen = _levels(table, levels)
    taps: dict[str, PyramidTap] = {}
    for level in chosen:
        stage = by_level.get(level)
        if stage is None or stage.latest is None:
            raise CutError(_missing(table, level, levels))
        taps[f"P{level}"] = PyramidTap(
            key=f"P{level}", address=stage.latest, level=level, stride=stage.stride, exact=stage.exact,
            reduction=stage.reduction, channels=stage.channels,
        )
    return taps


def pyramid_addresses(view: GraphView, levels: Sequence[int] | None = None) -> dict[str, str]:
    """``{"P2": address, ...}``: what ``end="auto-pyramid"`` resolves to."""
    return {key: tap.address for key, tap in pyramid_taps(view, levels).items()}


def pyramid(model: Any, levels: Sequence[int] | None = None) -> dict[str, Any]:
    """The feature pyramid of ``model`` as a dict of its own tensors, ``{"P3": KerasTensor, ...}``.

    ``kerascut_core.cut(model, end=pyramid(model))`` cuts it; ``end="auto-pyramid"`` (with
    ``levels``) is the same from a config or the command line. See :func:`pyramid_taps`.
    """
    view = graph_view(model)
    outputs = dict(zip(view.outputs, model.outputs, strict=False))
    found = {}
    for key, address in pyramid_addresses(view, levels).items():
        t = view.resolve(address)
        found[key] = outputs.get(t, view.tensors[t].keras_tensor)
    return found


def compare_pyramid_outputs(model: Any) -> list[dict[str, Any]] | None:
    """Where a keras-hub backbone's hand-written ``pyramid_outputs`` and the auto-pyramid agree.

    One row per hand-written key and per auto-pyramid level from 2 (``P2`` ...): ``key``, ``hand_written`` (address, or ``None``),
    its measured ``hand_written_stride``, ``auto`` (address, or ``None``) and ``agree``.
    ``None`` when the model has no ``pyramid_outputs``.
    """
    from kerascut_core.surgery.endpoints import addresses

    if not isinstance(getattr(model, PYRAMID_OUTPUTS, None), dict):
        return None
    view = graph_view(model)
    table = _table(view)
    hand = addresses(view, PYRAMID_OUTPUTS, "end")
    auto = {f"P{s.level}": s.latest for s in table.stages
            if s.latest is not None and (s.level >= DEFAULT_FIRST_LEVEL or f"P{s.level}" in hand)}
    rows = []
    for key in sorted(set(hand) | set(auto), key=_key_order):
        address = hand.get(key)
        found = table.found[view.resolve(address)] if address is not None else None
        rows.append({
            "key": key,
            "hand_written": address,
            "hand_written_stride": found.stride if found is not None else None,
            "auto": auto.get(key),
            "agree": address is not None and address == auto.get(key),
        })
    return rows


def _key_order(key: str) -> tuple[int, str]:
    digits = key[1:]
    return (int(digits), key) if key[:1] == "P" and digits.isdigit() else (1 << 30, key)


def _table(view: GraphView) -> _Table:
    import keras

    fmt = keras.config.image_data_format()
    found = reductions(view)
    if not any(r is not None for r in found):
        raise CutError(
            f"Expected a model with spatial axes for end={AUTO_PYRAMID!r}. Received model "
            f"'{view.model.name}', none of whose tensors has spatial axes (a Dense-only or "
            "sequence model has no pyramid). Name the end layers instead."
        )
    points = dominators(view, view.outputs)
    if len(view.outputs) == 1:
        points = [*points, view.outputs[0]]
    first: dict[int, int] = {}
    latest: dict[int, int] = {}
    for t in points:
        r = found[t]
        if r is None:
            continue
        first.setdefault(r.level, t)
        # An exact cut point outranks a later inexact one (the padded copy before a strided
        # conv): the stride is nominal only where the whole stage is.
        current = latest.get(r.level)
        if current is None or r.exact or not _exact(found[current]):
            latest[r.level] = t
    counted: set[int] = set()
    layers: dict[int, int] = {}
    params: dict[int, int] = {}
    seen: dict[int, Reduction] = {}
    for op in view.ops:
        r = found[op.outputs[0]] if op.outputs else None
        if r is None:
            continue
        seen.setdefault(r.level, r)
        layer = op.operation
        if op.is_input or id(layer) in counted or not isinstance(layer, keras.layers.Layer):
            continue
        counted.add(id(layer))
        layers[r.level] = layers.get(r.level, 0) + 1
        params[r.level] = params.get(r.level, 0) + (int(layer.count_params()) if layer.built else 0)
    rows = []
    for level in sorted(seen):
        tap = latest.get(level)
        r = (found[tap] if tap is not None else None) or seen[level]
        rows.append(Stage(
            level=level, stride=2**level, exact=r.exact, reduction=r.reduction,
            first=view.tensors[first[level]].address if level in first else None,
            latest=view.tensors[tap].address if tap is not None else None,
            channels=_channels(view.tensors[tap].shape, fmt) if tap is not None else None,
            layers=layers.get(level, 0), params=params.get(level, 0),
        ))
    return _Table(view, rows, latest, found)


def _exact(found: Reduction | None) -> bool:
    return found is not None and found.exact


def _channels(shape: tuple[int | None, ...], fmt: str) -> int | None:
    value = shape[1] if fmt == "channels_first" else shape[-1]
    return None if value is None else int(value)


def _levels(table: _Table, levels: Sequence[int] | None) -> list[int]:
    if levels is not None:
        return sorted(levels)
    with_tap = [s.level for s in table.stages if s.latest is not None]
    last = max(with_tap, default=-1)
    if last < DEFAULT_FIRST_LEVEL:
        raise CutError(
            f"Expected a model with a stage at stride {2**DEFAULT_FIRST_LEVEL} or more for "
            f"end={AUTO_PYRAMID!r}. Received model '{table.view.model.name}', whose stages are "
            f"{_summary(table)}. Pass `levels` it has. {_INSPECT}"
        )
    return list(range(DEFAULT_FIRST_LEVEL, last + 1))


def _summary(table: _Table) -> str:
    parts = []
    for s in table.stages[:10]:
        where = s.latest if s.latest is not None else "no valid cut point"
        parts.append(f"P{s.level} (stride {s.stride}{'' if s.exact else ', nominal'}): {where}")
    more = f" and {len(table.stages) - 10} more" if len(table.stages) > 10 else ""
    return "; ".join(parts) + more


def _missing(table: _Table, level: int, asked: Sequence[int] | None) -> str:
    name = table.view.model.name
    have = [s.level for s in table.stages]
    given = f"levels={list(asked)!r}" if asked is not None else "the default levels"
    if level in have:
        why = (f"its stage at stride {2**level} has no valid cut point (a skip connection or branch "
               "crosses every tensor at that stride)")
    elif have and min(have) < level < max(have):
        below = max(v for v in have if v < level)
        above = min(v for v in have if v > level)
        why = f"stride {2**level} is between its stages P{below} and P{above}: no tensor has that stride"
    else:
        why = f"it has no stage at stride {2**level}"
    return (
        f"Expected pyramid levels that model '{name}' has. Received {given}, but for level {level} "
        f"{why}. Its stages: {_summary(table)}. Pick levels among them. {_INSPECT}"
    )
