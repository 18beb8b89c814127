"""Every use of Keras's private API in kerascut_core, in one place.

Keras 3 has no public API for walking or re-recording a Functional graph, so the graph view and
the cut read a few private attributes. They all live here, so a Keras upgrade is checked (and
fixed) in one module; ``tests/surgery/test_keras_api_boundary.py`` fails when another module of
kerascut_core touches them. Checked on **keras 3.15.1** (TensorFlow backend).

What is used, and why:

- ``keras.src.models.functional.Functional`` (:func:`functional_type`): the class of Functional
  models; ``keras`` exports no name for it, and the view must tell a Functional model (a graph)
  from a subclassed one (Python code) and from its ``call`` override.
- ``Sequential._functional`` (:func:`sequential_graph`): the Functional a built Sequential
  model runs (``None`` until it is built); a Sequential has no other handle on its graph.
- ``Functional._operations`` (:func:`operations`): the operations in the order Keras lists
  ``model.layers``, which breaks ties between nodes at the same depth.
- ``Functional._nodes_by_depth`` (:func:`nodes_by_depth`): the graph's ``Node`` objects by depth,
  the order Keras runs them in.
- ``Operation._inbound_nodes`` (:func:`inbound_nodes`): the calls of an operation, in call
  order; a shared layer's ``k`` in ``name@k`` is the index of the call here.
- ``Function._inputs_struct`` / ``Function._outputs_struct`` (:func:`inputs_struct`,
  :func:`outputs_struct`): the structure (single tensor, list or dict) of a model's inputs
  and outputs, which ``model.inputs`` / ``model.outputs`` flatten away. A cut keeps dict
  outputs as dicts; validation feeds dict inputs by key.
- ``Layer._call_context_args`` (:func:`call_context_args`): the call-context arguments a layer
  takes (``training``); a nested model's call context is replayed on its inlined layers.
- ``keras.src.ops.node.Node`` (:func:`record_call`): records a symbolic call without running
  shape inference again; the cut's outputs get the source's specs exactly.
- ``Operation._inbound_nodes`` / ``Operation._outbound_nodes`` (:func:`detached_copy`): a
  shallow copy of an operation with empty node lists, so calls recorded on the copy never touch
  the source's graph (the source stays as it was however often it is cut).
- ``keras.src.random.seed_generator.python_random`` (:func:`python_random`): the ``random``
  module Keras draws initializer seeds from; a seeded source build swaps in its own
  ``random.Random`` so other threads cannot shift the draws.

Only attribute reads and the two documented writes (node lists of a fresh copy, Keras's seed
source during a build) happen here; no Keras object of the caller's is ever modified.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

__all__ = [
    "call_context_args",
    "detached_copy",
    "functional_type",
    "inbound_nodes",
    "inputs_struct",
    "nodes_by_depth",
    "operations",
    "outputs_struct",
    "python_random",
    "record_call",
    "sequential_graph",
]


def functional_type() -> type[Any]:
    """The class of Functional models (``keras.src.models.functional.Functional``)."""
    from keras.src.models.functional import Functional

    return Functional


def sequential_graph(model: Any) -> Any:
    """The Functional a Sequential model runs, or ``None`` while it is not built."""
    return model._functional


def operations(functional: Any) -> list[Any]:
    """A copy of the operations of ``functional``, in ``model.layers`` order."""
    return functional._operations[:]


def nodes_by_depth(functional: Any) -> dict[int, list[Any]]:
    """The ``Node`` objects of ``functional``'s graph by depth (outputs at depth 0)."""
    return functional._nodes_by_depth


def inbound_nodes(operation: Any) -> list[Any]:
    """The nodes recording each call of ``operation``, in call order."""
    return operation._inbound_nodes


def inputs_struct(model: Any) -> Any:
    """The structure of a Functional model's inputs (tensor, list or dict), or ``None``."""
    return getattr(model, "_inputs_struct", None)


def outputs_struct(model: Any) -> Any:
    """The structure of a Functional model's outputs (tensor, list or dict), or ``None``."""
    return getattr(model, "_outputs_struct", None)


def call_context_args(operation: Any) -> Any:
    """The call-context argument names ``operation`` takes (``{"training"}``), else ``()``."""
    return getattr(operation, "_call_context_args", ())


def record_call(operation: Any, args: Any, kwargs: Any, outputs: list[Any]) -> None:
    """Record ``operation(*args, **kwargs) -> outputs`` as a graph node, computing nothing."""
    from keras.src.ops.node import Node

    Node(operation=operation, call_args=args, call_kwargs=kwargs, outputs=outputs)


def detached_copy(operation: Any, name: str | None = None) -> Any:
    """A shallow copy of ``operation``: the same variables, its own (empty) node lists.

    ``name`` renames the copy (the source keeps its name).
    """
    clone = object.__new__(type(operation))
    clone.__dict__.update(operation.__dict__)
    clone.__dict__["_inbound_nodes"] = []
    clone.__dict__["_outbound_nodes"] = []
    if name is not None:
        clone.__dict__["name"] = name
    return clone


@contextlib.contextmanager
def python_random(rng: random.Random) -> Iterator[None]:
    """Make Keras draw its initializer seeds from ``rng`` inside the block."""
    from keras.src.random import seed_generator

    shared = seed_generator.python_random
    seed_generator.python_random = rng
    try:
        yield
    finally:
        seed_generator.python_random = shared
