"""Draw a model's graph with its valid cut points and, for a given cut, what it keeps.

Choosing where to cut a 700-layer network from a table of names is hard; a picture helps.
:func:`draw` renders the :mod:`kerascut_core.surgery.graph` view with graphviz (the ``dot`` binary):

- every tensor that is a valid single start (:func:`kerascut_core.cut_points`) is highlighted;
- for a given cut, operations are marked *kept* or *dropped*, the new inputs and the outputs are
  marked, and skip connections that cross the start cut are drawn in red;
- ``collapse=True`` folds each stage (``block_3_*``, ``conv4_block2_*``, ``stage_1_*``) into
  one node, so long repeated blocks stay readable.

- ``taps`` (a pyramid: ``{"P3": address, ...}``, as ``end="auto-pyramid"`` resolves) marks each
  pyramid tap with its key.

SVG elements carry CSS classes (``op``, ``cut-point``, ``kept``, ``dropped``, ``start``,
``output``, ``crossing``, ``stage``, ``pyramid-tap``) so the structure can be checked and styled.

    >>> import keras
    >>> from kerascut_core.surgery import draw
    >>> model = keras.applications.ResNet50(weights=None)                   # doctest: +SKIP
    >>> draw(model, "r.svg", start="conv3_block1_out", end="conv4_block6_out")  # doctest: +SKIP
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kerascut_core.errors import DrawError
from kerascut_core.formatting import shape_text
from kerascut_core.surgery.names import SEP, flat_name
from kerascut_core.surgery.spec import CutSpec, EndSpec, StartSpec

__all__ = ["dot_source", "draw", "stage_of"]

_COLORS = {
    "kept": "#d8ecff",
    "dropped": "#eeeeee",
    "neutral": "#ffffff",
    "cut_point": "#1a7f37",
    "start": "#ffb000",
    "output": "#8250df",
    "crossing": "#cf222e",
    "tap": "#0969da",
}
# Stage names used by keras.applications and most hand-written models.
_STAGE = re.compile(
    r"^(?P<stage>.*?(?:block|stage|conv|cell|reduction|mixed)_?\d+[a-z]?(?:_block_?\d+)?)"
    r"(?:[_/].+)$"
)


@dataclass
class _Node:
    key: str
    label: str
    stage: str | None = None
    kept: bool | None = None
    classes: list[str] = field(default_factory=list)
    members: list[int] = field(default_factory=list)


def stage_of(address: str) -> str | None:
    """The stage an address belongs to, e.g. ``"conv4_block2"`` for ``"conv4_block2_1_conv"``.

    Returns ``None`` for operations outside any numbered block.

        >>> stage_of("conv4_block2_1_conv"), stage_of("block_3_expand_relu"), stage_of("predictions")
        ('conv4_block2', 'block_3', None)
    """
    prefix, _, leaf = address.rpartition(SEP)
    match = _STAGE.match(leaf)
    if not match:
        return None
    return flat_name(match.group("stage"), within=prefix)


def dot_source(
    model: Any,
    *,
    start: StartSpec = None,
    end: EndSpec = None,
    drop_first: int | None = None,
    collapse: bool = False,
    rankdir: Literal["TB", "LR"] = "TB",
    levels: list[int] | None = None,
    taps: Mapping[str, str] | None = None,
) -> Any:
    """Build the ``graphviz.Digraph`` of ``model`` (see :func:`draw`); nothing is rendered."""
    import graphviz

    from kerascut_core.surgery.dominators import cut_points
    from kerascut_core.surgery.graph import graph_view
    from kerascut_core.surgery.plan import plan_cut

    view = graph_view(model)
    points = set(cut_points(model, end=end, levels=levels))
    has_cut = start is not None or drop_first is not None or end is not None
    kept_ops: set[int] | None = None
    starts: set[int] = set()
    crossing: set[int] = set()
    outputs: set[int] = set(view.outputs)
    if has_cut:
        spec = CutSpec(start=start, end=end, drop_first=drop_first, extra_inputs="auto", levels=levels)
        plan = plan_cut(model, **spec.to_dict())
        if taps is None and plan.pyramid:
            taps = {key: plan.outputs[key] for key in plan.pyramid}
        by_address = {op.address: op.index for op in view.ops}
        kept_ops = {by_address[a] for a in plan.kept}
        starts = {view.resolve(a) for a in plan.inputs if a not in plan.extra_inputs}
        crossing = {view.resolve(a) for a in plan.extra_inputs}
        outputs = {view.resolve(a) for a in plan.outputs.values()}
    tap_of = {view.resolve(address): key for key, address in (taps or {}).items()}

    # One drawing node per op, or per run of ops in the same stage when collapsing.
    groups: list[_Node] = []
    node_of_op: dict[int, str] = {}
    for op in view.ops:
        stage = stage_of(op.address) if collapse and not op.is_input else None
        kept = None if kept_ops is None else op.index in kept_ops
        # A stage split by the cut becomes two nodes, so the cut and crossing skips stay visible.
        if stage is not None and groups and (groups[-1].stage, groups[-1].kept) == (stage, kept):
            groups[-1].members.append(op.index)
        else:
            groups.append(_Node(key=f"n{len(groups)}", label=stage or op.address, stage=stage,
                                kept=kept, members=[op.index]))
        node_of_op[op.index] = groups[-1].key

    for node in groups:
        ops = [view.ops[i] for i in node.members]
        out_tensors = [t for op in ops for t in op.outputs]
        classes = ["stage" if len(ops) > 1 else "op"]
        if any(view.tensors[t].address in points for t in out_tensors):
            classes.append("cut-point")
        if kept_ops is not None:
            kept_flags = [op.index in kept_ops for op in ops]
            classes.append(
                "kept" if all(kept_flags) else "dropped" if not any(kept_flags) else "partial"
            )
        if any(t in starts for t in out_tensors):
            classes.append("start")
        if any(t in outputs for t in out_tensors):
            classes.append("output")
        keys = [tap_of[t] for t in out_tensors if t in tap_of]
        if keys:
            classes.append("pyramid-tap")
        node.classes = classes
        if len(ops) == 1:
            op = ops[0]
            shape = view.tensors[op.outputs[0]].shape if op.outputs else ()
            node.label = f"{op.address}\n{op.type} {shape_text(shape, unknown='?')}"
        else:
            node.label = f"{node.label}  ({len(ops)} ops)" + _marks(
                view, out_tensors, points, starts, outputs
            )
        if keys:
            node.label += "\npyramid tap " + ", ".join(keys)

    graph = graphviz.Digraph(
        name=view.model.name,
        graph_attr={"rankdir": rankdir, "fontname": "Helvetica", "fontsize": "10",
                    "label": _title(view.model.name, has_cut, start, drop_first, end),
                    "labelloc": "t", "nodesep": "0.15", "ranksep": "0.25"},
        node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica",
                   "fontsize": "9", "height": "0.3"},
        edge_attr={"arrowsize": "0.5", "color": "#57606a"},
    )
    for node in groups:
        graph.node(node.key, label=node.label, **_style(node.classes))
    drawn: set[tuple[str, str]] = set()
    for op in view.ops:
        head = node_of_op[op.index]
        for t in op.inputs:
            tail = node_of_op[view.tensors[t].op]
            if tail == head or (tail, head) in drawn:
                continue
            drawn.add((tail, head))
            is_crossing = t in crossing and (kept_ops is None or op.index in kept_ops)
            if is_crossing:
                graph.edge(tail, head, color=_COLORS["crossing"], penwidth="2.5",
                           **{"class": "crossing"}, tooltip=f"skip crosses the cut: {view.tensors[t].address}")
            else:
                graph.edge(tail, head, **{"class": "edge"})
    graph.attr("node", shape="plaintext", style="")
    graph.node("legend", label=_legend(has_cut, bool(tap_of)), **{"class": "legend"})
    return graph


def draw(
    model: Any,
    path: str | Path,
    *,
    start: StartSpec = None,
    end: EndSpec = None,
    drop_first: int | None = None,
    collapse: bool = False,
    rankdir: Literal["TB", "LR"] = "TB",
    levels: list[int] | None = None,
    taps: Mapping[str, str] | None = None,
) -> Path:
    """Render ``model``'s graph to ``path`` (``.svg`` or ``.png``) and return the path.

    Valid cut points for ``end`` are highlighted; with ``start``/``drop_first``/``end`` the kept
    and dropped regions, the new inputs, the outputs and crossing skips are marked; ``taps``
    (or ``end="auto-pyramid"``, with ``levels``) marks the pyramid taps. Raises
    ``DrawError`` when the graphviz ``dot`` binary is missing (``apt-get install graphviz``).
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in ("svg", "png"):
        raise DrawError(
            f"Expected a picture path ending in .svg or .png. Received {str(path)!r}. "
            "Use e.g. graph.svg."
        )
    if shutil.which("dot") is None:
        raise DrawError(
            "Cannot draw: graphviz's `dot` binary is not on PATH. Install graphviz "
            "(apt-get install graphviz, or brew install graphviz) and retry."
        )
    graph = dot_source(model, start=start, end=end, drop_first=drop_first, collapse=collapse,
                       rankdir=rankdir, levels=levels, taps=taps)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(graph.pipe(format=fmt))
    return path


def _marks(view: Any, tensors: list[int], points: set[str], starts: set[int],
           outputs: set[int]) -> str:
    """Extra label lines for a collapsed stage: its new input, output and last cut point."""
    lines = [f"new input: {view.tensors[t].address}" for t in tensors if t in starts]
    lines += [f"output: {view.tensors[t].address}" for t in tensors if t in outputs]
    cut_points_here = [view.tensors[t].address for t in tensors if view.tensors[t].address in points]
    if cut_points_here and not lines:
        lines.append(f"cut point: {cut_points_here[-1]}")
    return "".join("\n" + line for line in lines)



def _title(name: str, has_cut: bool, start: Any, drop_first: Any, end: Any) -> str:
    if not has_cut:
        return f"{name}: valid cut points"
    where = f"start={start!r}" if start is not None else (
        f"drop_first={drop_first}" if drop_first is not None else "start=inputs")
    return f"{name}: cut {where}, end={end!r}"


def _style(classes: list[str]) -> dict[str, str]:
    fill = _COLORS["neutral"]
    if "kept" in classes:
        fill = _COLORS["kept"]
    elif "dropped" in classes:
        fill = _COLORS["dropped"]
    elif "partial" in classes:
        fill = "#e6f0fa"
    style: dict[str, str] = {"fillcolor": fill, "class": " ".join(classes)}
    if "dropped" in classes:
        style["fontcolor"] = "#8c959f"
    if "cut-point" in classes:
        style["color"] = _COLORS["cut_point"]
        style["penwidth"] = "2"
    if "start" in classes:
        style["color"] = _COLORS["start"]
        style["penwidth"] = "3"
    if "output" in classes:
        style["color"] = _COLORS["output"]
        style["penwidth"] = "3"
    if "pyramid-tap" in classes:
        style["color"] = _COLORS["tap"]
        style["penwidth"] = "3"
        style["peripheries"] = "2"
    return style


def _legend(has_cut: bool, has_taps: bool = False) -> str:
    rows = [f'<TR><TD BGCOLOR="white" COLOR="{_COLORS["cut_point"]}" BORDER="2">valid cut point</TD></TR>']
    if has_taps:
        rows.append(f'<TR><TD COLOR="{_COLORS["tap"]}" BORDER="3">pyramid tap (Pk: stride 2^k)</TD></TR>')
    if has_cut:
        rows += [
            f'<TR><TD BGCOLOR="{_COLORS["kept"]}">kept</TD></TR>',
            f'<TR><TD BGCOLOR="{_COLORS["dropped"]}">dropped</TD></TR>',
            f'<TR><TD COLOR="{_COLORS["start"]}" BORDER="2">new input</TD></TR>',
            f'<TR><TD COLOR="{_COLORS["output"]}" BORDER="2">output</TD></TR>',
            f'<TR><TD><FONT COLOR="{_COLORS["crossing"]}">red edge: skip crossing the cut</FONT></TD></TR>',
        ]
    return '<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="2">' + "".join(rows) + "</TABLE>>"
