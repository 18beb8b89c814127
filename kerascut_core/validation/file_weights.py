"""The weights stored in an exported file, compared with those of a fresh export of the candidate.

An ONNX file keeps its weights as initializers (and ``Constant`` nodes, in nested graphs too);
a LiteRT flatbuffer keeps them as constant buffers of its tensors. Both exporters are
deterministic: the same Keras model, exported with the same software, gives the same weights
bit for bit, BatchNorm already folded into the convolutions. :func:`compare_weights` therefore
holds an artifact's weights to a fresh export of the validated ``.keras`` candidate, which
catches a changed weight however little it moves the outputs.

Tensors are paired by content first (names carry the exporter's scope counters, which differ
between processes), then, among those left, by dtype and shape in file order. A float tensor
that differs by at most :data:`WEIGHT_ULPS` units in the last place everywhere is reported as
rounding (constant folding on another CPU may round an ulp differently) and left to the output
comparison; any other difference fails.

    >>> import numpy as np
    >>> a = [("w", np.array([1.0, 2.0], "float32"))]
    >>> compare_weights(a, a, reference="itself").passed
    True
    >>> b = [("w", np.array([1.0, 2.5], "float32"))]
    >>> found = compare_weights(b, a, reference="a fresh export")
    >>> found.differing, found.max_abs_diff
    (['w'], 0.5)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kerascut_core.validation.report import ExportWeightCheck

__all__ = ["WEIGHT_ULPS", "compare_weights", "read_weights", "ulps_apart"]

#: float weights this many units in the last place apart (or closer) count as rounding
WEIGHT_ULPS = 4

#: LiteRT TensorType -> numpy dtype (other types are compared as raw bytes)
_LITERT_DTYPES = {0: "<f4", 1: "<f2", 2: "<i4", 3: "u1", 4: "<i8", 6: "?", 7: "<i2", 9: "i1", 10: "<f8",
                  12: "<u8", 15: "<u4", 16: "<u2"}

Tensor = tuple[str, Any]


def read_weights(fmt: str, path: Path) -> list[Tensor]:
    """``(name, array)`` of every weight stored in the ``fmt`` file at ``path``, in file order."""
    return _onnx_weights(path) if fmt == "onnx" else _litert_weights(path)


def _onnx_weights(path: Path) -> list[Tensor]:
    from kerascut_core.extras import require

    onnx = require("onnx", extra="onnx", purpose="validating the 'onnx' format")
    numpy_helper = onnx.numpy_helper

    found: list[Tensor] = []

    def walk(graph: Any, scope: str) -> None:
        for init in graph.initializer:
            found.append((scope + init.name, numpy_helper.to_array(init)))
        for sparse in graph.sparse_initializer:
            found.append((scope + sparse.values.name, numpy_helper.to_array(sparse.values)))
        for node in graph.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.TENSOR:
                    found.append((f"{scope}{node.name or node.op_type}/{attr.name}", numpy_helper.to_array(attr.t)))
                elif attr.type == onnx.AttributeProto.GRAPH:
                    walk(attr.g, f"{scope}{node.name}/{attr.name}/")
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    for i, sub in enumerate(attr.graphs):
                        walk(sub, f"{scope}{node.name}/{attr.name}[{i}]/")

    walk(onnx.load(str(path)).graph, "")
    return found


def _litert_weights(path: Path) -> list[Tensor]:
    import numpy as np

    from kerascut_core.extras import require

    schema = require("ai_edge_litert.schema_py_generated", extra="litert", purpose="validating the 'litert' format")
    data = path.read_bytes()
    model = schema.Model.GetRootAs(data, 0)
    found: list[Tensor] = []
    for s in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(s)
        for t in range(subgraph.TensorsLength()):
            tensor = subgraph.Tensors(t)
            buffer = model.Buffers(tensor.Buffer())
            if buffer is None:
                continue
            if buffer.Offset() > 1:  # a large model keeps its buffers after the flatbuffer
                raw = data[buffer.Offset(): buffer.Offset() + buffer.Size()]
            elif buffer.DataLength():
                raw = buffer.DataAsNumpy().tobytes()
            else:
                continue  # an activation, not a weight
            dtype = _LITERT_DTYPES.get(tensor.Type())
            array = np.frombuffer(raw, dtype or "u1")
            shape = [int(d) for d in tensor.ShapeAsNumpy()] if tensor.ShapeLength() else []
            if dtype is not None and int(np.prod(shape)) == array.size:
                array = array.reshape(shape)
            name = (tensor.Name() or b"").decode("utf-8", "replace")
            found.append((f"{name}" if s == 0 else f"subgraph{s}/{name}", array))
    return found


def ulps_apart(a: Any, b: Any) -> int:
    """The largest distance, in units in the last place, between two float arrays of one dtype."""
    import numpy as np

    ints = {2: np.int16, 4: np.int32, 8: np.int64}[a.dtype.itemsize]

    def ordered(x: Any) -> Any:  # floats as integers in the order of their values
        i = np.ascontiguousarray(x).view(ints).astype(np.int64)
        return np.where(i < 0, np.int64(np.iinfo(ints).min) - i, i)

    if a.size == 0:
        return 0
    return int(np.abs(ordered(a) - ordered(b)).max())


def compare_weights(artifact: Sequence[Tensor], fresh: Sequence[Tensor], *, reference: str) -> ExportWeightCheck:
    """The artifact's weights against ``fresh`` (those of ``reference``): which are bitwise equal,
    which differ by rounding only, which differ, and which have no counterpart."""
    import numpy as np

    check = ExportWeightCheck(reference=reference, compared=True)
    check.tensors = len(artifact)
    check.params = int(sum(np.asarray(a).size for _, a in artifact))
    pool: dict[tuple[str, tuple[int, ...], bytes], list[int]] = {}
    for i, (_, array) in enumerate(fresh):
        pool.setdefault(_key(array), []).append(i)
    used: set[int] = set()
    left: list[Tensor] = []
    for name, array in artifact:
        same = pool.get(_key(array))
        if same:
            used.add(same.pop(0))
            check.bitwise_equal += 1
        else:
            left.append((name, array))
    others = [fresh[i] for i in range(len(fresh)) if i not in used]
    for name, array in left:
        a = np.asarray(array)
        match = next((j for j, (_, b) in enumerate(others) if b.dtype == a.dtype and b.shape == a.shape), None)
        if match is None:
            check.extra.append(name)
            continue
        b = np.asarray(others.pop(match)[1])
        diff = _max_abs(a, b)
        check.max_abs_diff = diff if np.isnan(diff) else max(check.max_abs_diff, diff)
        if a.dtype.kind == "f" and np.isfinite(a).all() and np.isfinite(b).all() and ulps_apart(a, b) <= WEIGHT_ULPS:
            check.within_rounding.append(name)
        else:
            check.differing.append(name)
    check.missing = [name for name, _ in others]
    check.passed = not (check.differing or check.extra or check.missing)
    return check


def _key(array: Any) -> tuple[str, tuple[int, ...], bytes]:
    import numpy as np

    a = np.ascontiguousarray(array)
    return a.dtype.str, tuple(a.shape), a.tobytes()


def _max_abs(a: Any, b: Any) -> float:
    import numpy as np

    if a.dtype.kind not in "fiub":
        return float("inf")
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    if diff.size == 0:
        return 0.0
    return float("nan") if np.isnan(diff).any() else float(diff.max())
