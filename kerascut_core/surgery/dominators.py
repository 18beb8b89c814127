"""Valid cut points: the tensors that dominate a cut's ends.

A single tensor is a valid ``start`` when every path from the model's inputs to every end
passes through it. :func:`~kerascut_core.surgery.dominance.dominators` finds them (the
algorithm of Cooper, Harvey & Kennedy); :func:`cut_points` is the public listing.
"""

from __future__ import annotations

from typing import Any

from kerascut_core.surgery.dominance import dominators
from kerascut_core.surgery.endpoints import resolve_ends
from kerascut_core.surgery.feature_pyramid import pyramid_addresses
from kerascut_core.surgery.graph import graph_view
from kerascut_core.surgery.spec import AUTO_PYRAMID, EndSpec

__all__ = ["cut_points", "dominators"]


def cut_points(model: Any, end: EndSpec = None, *, levels: list[int] | None = None) -> list[str]:
    """Every address where a single-tensor ``start`` cut is valid for ``end``, in topological order.

    A tensor is a valid start when every path from the model's inputs to every end tensor
    passes through it: it *dominates* the ends. The ends themselves are not listed.
    ``end="auto-pyramid"`` is the pyramid's taps (``levels`` as for
    :func:`~kerascut_core.surgery.pyramid`).

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
    if isinstance(end, str) and end == AUTO_PYRAMID:
        end = pyramid_addresses(view, levels)
    ends, _, _ = resolve_ends(view, end)
    return [view.tensors[t].address for t in dominators(view, ends)]
