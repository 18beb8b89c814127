"""The contract of a cut: what each output is, what each input replaces, what preprocessing it keeps.

A consumer of a backbone needs more than shapes: for each output its address in the source, its
``channels`` (the last axis for ``channels_last``) and its ``stride``, the source-input pixels
per output pixel along each spatial axis (input 224 and output 7 give 32); for each input the
source tensor it replaces; and whether the cut keeps the source's in-graph preprocessing
(``Rescaling`` / ``Normalization`` layers) or drops it because they come before its start.

:func:`channels` and :func:`stride` are pure; :func:`cut_contract` reads them off the source's
graph view and a :class:`~kerascut_core.surgery.CutPlan` (no cut model is needed, so
``kerascut config check`` can tell too).

    >>> stride([None, 224, 224, 3], [None, 7, 7, 2048]), channels([None, 7, 7, 2048])
    ([32, 32], 2048)
    >>> stride([None, 64, 64, 3], [None, 3, 3, 512])  # 64 / 3 is not whole: unknown
    >>> stride([None, None, 224, 3], [None, None, 14, 512])  # a free height: that axis only
    [None, 16]
    >>> stride([None, 3, 224, 224], [None, 256, 56, 56], "channels_first"), channels([None, 256, 56, 56], "channels_first")
    ([4, 4], 256)
    >>> stride([None, 16], [None, 4])  # no spatial axis
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "PREPROCESSING_TYPES",
    "CutContract",
    "InGraphLayer",
    "InputContract",
    "OutputContract",
    "channels",
    "cut_contract",
    "stride",
]

#: layer types that preprocess in the graph (``LayerNormalization`` is not one of them)
PREPROCESSING_TYPES = frozenset({"Rescaling", "Normalization"})

Shape = Sequence[int | None]


def _spatial(shape: Shape, data_format: str) -> list[int | None]:
    dims = list(shape)
    return dims[2:] if data_format == "channels_first" else dims[1:-1]


def channels(shape: Shape, data_format: str = "channels_last") -> int | None:
    """The channel count of a batched ``shape``: its last axis (``channels_first``: axis 1);
    ``None`` when unknown or when the shape has no channel axis."""
    dims = list(shape)
    if len(dims) < 2:
        return None
    value = dims[1] if data_format == "channels_first" else dims[-1]
    return int(value) if value is not None else None


def stride(source_shape: Shape, output_shape: Shape, data_format: str = "channels_last") -> list[int | None] | None:
    """Source-input pixels per output pixel along each spatial axis of two batched shapes.

    An axis gets a stride when both sizes are known and the output's divides the input's
    exactly; ``None`` otherwise. The whole result is ``None`` when the ranks differ, there is no
    spatial axis, or no axis gets a stride.
    """
    if len(source_shape) != len(output_shape) or len(output_shape) < 3:
        return None
    found: list[int | None] = []
    for size, out in zip(_spatial(source_shape, data_format), _spatial(output_shape, data_format), strict=True):
        found.append(size // out if size and out and size % out == 0 else None)
    return found if any(s is not None for s in found) else None


@dataclass(frozen=True)
class InputContract:
    """An input of the cut model: the source tensor (address) it ``replaces``."""

    name: str
    shape: list[int | None]
    dtype: str
    replaces: str


@dataclass(frozen=True)
class OutputContract:
    """An output of the cut model: its ``address`` in the source, ``channels`` and ``stride``;
    ``pyramid`` is what ``end="auto-pyramid"`` found of it (rule, level, whether exact)."""

    name: str
    address: str
    shape: list[int | None]
    dtype: str
    channels: int | None
    stride: list[int | None] | None
    pyramid: dict[str, Any] | None = None


@dataclass(frozen=True)
class InGraphLayer:
    """A ``Rescaling`` / ``Normalization`` layer of the source the cut ``kept`` or dropped."""

    address: str
    type: str
    kept: bool


@dataclass(frozen=True)
class CutContract:
    """What :func:`cut_contract` found; ``to_dict()`` is JSON-ready."""

    inputs: list[InputContract]
    outputs: list[OutputContract]
    preprocessing_layers: list[InGraphLayer] = field(default_factory=list)
    #: the cut's inputs are the source's own inputs (raw-image preprocessing applies to them)
    inputs_are_source_inputs: bool = True
    data_format: str = "channels_last"
    #: the plan's own warnings (``CutPlan.warnings``: a ``drop_first`` that dropped more)
    plan_warnings: list[str] = field(default_factory=list)

    @property
    def dropped(self) -> list[InGraphLayer]:
        return [layer for layer in self.preprocessing_layers if not layer.kept]

    def warnings(self, source: str) -> list[str]:
        """One line per problem a consumer must know of: the plan's warnings, then the in-graph
        preprocessing dropped."""
        dropped = self.dropped
        if not dropped:
            return list(self.plan_warnings)
        layers = ", ".join(f"{layer.address} ({layer.type})" for layer in dropped[:4])
        more = f" and {len(dropped) - 4} more" if len(dropped) > 4 else ""
        starts = ", ".join(i.replaces for i in self.inputs)
        return [
            *self.plan_warnings,
            f"the cut drops the in-graph preprocessing of {source} ({layers}{more}): its inputs ({starts}) come after "
            "those layers, so feed them what the source computes there, not raw images; start the cut before "
            "them to keep them."
        ]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cut_contract(source: Any, plan: Any, *, data_format: str | None = None) -> CutContract:
    """The contract of the cut ``plan`` (a :class:`~kerascut_core.surgery.CutPlan`) of ``source``.

    Shapes and dtypes are those of the source's tensors (a cut model's inputs and outputs have
    exactly their specs). ``data_format`` defaults to ``keras.config.image_data_format()``. An
    output's stride is taken against the one source input it depends on of its own rank (none,
    or several: ``None``).
    """
    import keras

    from kerascut_core.surgery.graph import graph_view

    fmt = data_format or keras.config.image_data_format()
    view = graph_view(source)
    source_inputs = set(view.inputs)
    input_indices = [view.resolve(address) for address in plan.inputs]
    inputs = [
        InputContract(name=name, shape=_shape(view.tensors[t].shape), dtype=view.tensors[t].dtype, replaces=address)
        for t, name, address in zip(input_indices, plan.input_names, plan.inputs, strict=True)
    ]
    outputs = []
    for name, address in plan.outputs.items():
        t = view.resolve(address)
        shape = _shape(view.tensors[t].shape)
        roots = [i for i in view.ancestors([t]) if i in source_inputs and len(view.tensors[i].shape) == len(shape)]
        origin = _shape(view.tensors[roots[0]].shape) if len(roots) == 1 else None
        found = stride(origin, shape, fmt) if origin is not None else None
        tap = getattr(plan, "pyramid", {}).get(name)
        if found is None and tap is not None and tap["exact"] and origin is not None and not any(_spatial(origin, fmt)):
            # A free input size: the pyramid's measured stride holds at every size it divides.
            found = [tap["stride"]] * len(_spatial(shape, fmt))
        outputs.append(
            OutputContract(
                name=name,
                address=address,
                shape=shape,
                dtype=view.tensors[t].dtype,
                channels=channels(shape, fmt),
                stride=found,
                pyramid=dict(tap) if tap is not None else None,
            )
        )
    kept = set(plan.kept)
    before = {view.tensors[t].op for t in view.ancestors([t for t in input_indices if t not in source_inputs])}
    layers = [
        InGraphLayer(address=op.address, type=op.type, kept=op.address in kept)
        for op in view.ops
        if op.type in PREPROCESSING_TYPES and (op.address in kept or op.index in before)
    ]
    return CutContract(
        inputs=inputs,
        outputs=outputs,
        preprocessing_layers=layers,
        inputs_are_source_inputs=all(t in source_inputs for t in input_indices),
        data_format=fmt,
        plan_warnings=list(getattr(plan, "warnings", [])),
    )


def _shape(shape: Shape) -> list[int | None]:
    return [None if d is None else int(d) for d in shape]
