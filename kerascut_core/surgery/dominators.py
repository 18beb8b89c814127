"""Valid cut points: the tensors that dominate a cut's ends.

A single tensor is a valid ``start`` when every path from the model's inputs to every end
passes through it. :func:`dominators` finds them with the algorithm of Cooper, Harvey & Kennedy
("A Simple, Fast Dominance Algorithm", 2001); :func:`cut_points` is the public listing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kerascut_core.surgery.endpoints import resolve_ends
from kerascut_core.surgery.graph import graph_view
from kerascut_core.surgery.spec import EndSpec
from kerascut_core.surgery.view import GraphView

__all__ = ["cut_points", "dominators"]

_ROOT = -1


def cut_points(model: Any, end: EndSpec = None) -> list[str]:
    """Every address where a single-tensor ``start`` cut is valid for ``end``, in topological order.

    A tensor is a valid start when every path from the model's inputs to every end tensor
    passes through it: it *dominates* the ends. The ends themselves are not listed.

        >>> import keras
        >>> from kerascut_core.surgery import cut_points
        >>> x = keras.Input((8,), name="x")
        >>> a = keras.layers.Dense(8, name="a")(x)
        >>> b = keras.layers.Dense(8, name="b")(a)
        >>> model = keras.Model(x, keras.layers.Add(name="add")([a, b]))
        >>> cut_points(model)  # "b" is crossed by the skip a -> add
        ['x', 'a']
    """
    view = graph_view(model)
    ends, _, _ = resolve_ends(view, end)
    return [view.tensors[t].address for t in dominators(view, ends)]


def dominators(view: GraphView, ends: Sequence[int]) -> list[int]:
    """Tensors that dominate every end from a virtual root over the inputs, topological order.

    Tensor indices are a topological order of the DAG, so one pass in index order settles every
    immediate dominator (all predecessors come first), and walking up an idom chain always
    decreases the index: the "intersect" of CHK works on indices directly.
    """
    relevant = sorted(view.ancestors(ends))
    idom: dict[int, int] = {}

    def intersect(a: int, b: int) -> int:
        while a != b:
            while a > b:
                a = idom[a]
            while b > a:
                b = idom[b]
        return a

    tensors, ops = view.tensors, view.ops
    for t in relevant:
        preds = ops[tensors[t].op].inputs
        if not preds:
            idom[t] = _ROOT
            continue
        new = preds[0]
        for p in preds[1:]:
            if p != new:
                new = intersect(p, new)
        idom[t] = new

    sink = ends[0]
    for e in ends[1:]:
        sink = intersect(sink, e)
    end_set = set(ends)
    chain = []
    d = sink
    while d != _ROOT:
        if d not in end_set:
            chain.append(d)
        d = idom[d]
    chain.reverse()
    return chain
