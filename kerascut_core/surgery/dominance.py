"""The dominance algorithm: which tensors every path from the inputs to the ends passes through.

:func:`dominators` is the algorithm of Cooper, Harvey & Kennedy ("A Simple, Fast Dominance
Algorithm", 2001) over a :class:`~kerascut_core.surgery.view.GraphView`. It knows no names:
:func:`kerascut_core.surgery.cut_points` lists its result as addresses, and the pyramid rule
(:mod:`kerascut_core.surgery.feature_pyramid`) reads strides off it.
"""

from __future__ import annotations

from collections.abc import Sequence

from kerascut_core.surgery.view import GraphView

__all__ = ["dominators"]

_ROOT = -1


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
