"""Cut a Functional or Sequential Keras model at named tensors, exactly.

Three public functions, in the spirit of torchvision's feature extraction (a discover function
beside the cut function) and ONNX's ``Extractor`` (small private steps behind one call):

- :func:`cut_points` lists every address where a single-tensor start cut is valid;
- :func:`plan_cut` resolves a cut (which tensors become inputs and outputs, what is kept)
  without building anything;
- :func:`cut` builds the cut model;
- :func:`pyramid` finds a feature pyramid from the graph (level k: the latest valid cut point
  at stride 2^k) and :func:`stages` lists the model's stages (``end="auto-pyramid"``).

Addresses are those of the graph view (:func:`graph_view`): ``name``, ``name@k`` (k-th call of
a shared layer), ``outer/inner`` (inside a nested model) and ``name:i`` (i-th output); one
function owns that rule, :func:`kerascut_core.surgery.names.flat_name`.

The modules, one concept each: ``spec`` (the cut spec, pure Python), ``names`` (the
flattened-name rule), ``view`` / ``graph`` (the graph view and how it is built),
``endpoints`` (start and end names to tensors), ``dominators`` (valid cut points), ``plan``
(what a cut keeps), ``contract`` (what a cut's outputs and inputs are: channels, stride, the
tensors replaced, the in-graph preprocessing kept or dropped; :func:`cut_contract`),
``dominance`` (the dominator algorithm), ``strides`` (each tensor's stride, measured),
``feature_pyramid`` (the pyramid rule and the stages), ``rebuild`` (building the cut model), ``drawing`` (pictures, graphviz),
``export`` (a cut model saved as a candidate's files, :func:`save_candidate`); every use of
Keras's private API is in :mod:`kerascut_core.keras_compat`, a base module. Importing this
package is cheap: Keras is imported when a function that needs it is first used.

    >>> import keras
    >>> from kerascut_core.surgery import cut, cut_points
    >>> x = keras.Input((8,), name="x")
    >>> h = keras.layers.Dense(8, name="a")(x)
    >>> h = keras.layers.Dense(8, name="b")(h)
    >>> model = keras.Model(x, keras.layers.Dense(2, name="c")(h))
    >>> cut_points(model)
    ['x', 'a', 'b']
    >>> [layer.name for layer in cut(model, start="a", end="b").layers]
    ['a', 'b']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kerascut_core._lazy import lazy_exports
from kerascut_core.surgery.spec import CutSpec, EndSpec, StartSpec

if TYPE_CHECKING:
    from kerascut_core.surgery.contract import CutContract, cut_contract
    from kerascut_core.surgery.dominators import cut_points
    from kerascut_core.surgery.drawing import dot_source, draw, stage_of
    from kerascut_core.surgery.export import save_candidate
    from kerascut_core.surgery.feature_pyramid import (
        PyramidTap,
        Stage,
        pyramid,
        pyramid_taps,
        stages,
    )
    from kerascut_core.surgery.graph import graph_view
    from kerascut_core.surgery.names import flat_name
    from kerascut_core.surgery.plan import CutPlan, plan_cut
    from kerascut_core.surgery.rebuild import cut
    from kerascut_core.surgery.view import GraphView, OpView, TensorView

# public name -> module that defines it (imported on first access). No module is named like a
# name it exports, so importing a module never shadows a function of the same name.
_LAZY: dict[str, str] = {
    "CutContract": "kerascut_core.surgery.contract",
    "CutPlan": "kerascut_core.surgery.plan",
    "GraphView": "kerascut_core.surgery.view",
    "OpView": "kerascut_core.surgery.view",
    "PyramidTap": "kerascut_core.surgery.feature_pyramid",
    "Stage": "kerascut_core.surgery.feature_pyramid",
    "TensorView": "kerascut_core.surgery.view",
    "cut": "kerascut_core.surgery.rebuild",
    "cut_contract": "kerascut_core.surgery.contract",
    "cut_points": "kerascut_core.surgery.dominators",
    "dot_source": "kerascut_core.surgery.drawing",
    "draw": "kerascut_core.surgery.drawing",
    "flat_name": "kerascut_core.surgery.names",
    "graph_view": "kerascut_core.surgery.graph",
    "plan_cut": "kerascut_core.surgery.plan",
    "pyramid": "kerascut_core.surgery.feature_pyramid",
    "pyramid_taps": "kerascut_core.surgery.feature_pyramid",
    "stages": "kerascut_core.surgery.feature_pyramid",
    "save_candidate": "kerascut_core.surgery.export",
    "stage_of": "kerascut_core.surgery.drawing",
}

__all__ = [
    "CutContract",
    "CutPlan",
    "CutSpec",
    "EndSpec",
    "GraphView",
    "OpView",
    "PyramidTap",
    "Stage",
    "StartSpec",
    "TensorView",
    "cut",
    "cut_contract",
    "cut_points",
    "dot_source",
    "draw",
    "flat_name",
    "graph_view",
    "plan_cut",
    "pyramid",
    "pyramid_taps",
    "save_candidate",
    "stage_of",
    "stages",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
