"""The ``onnx`` format in onnxruntime: the session a consumer would open, as a :class:`Runtime`.

On a GPU worker the CUDA execution provider comes first when onnxruntime has it (with TF32
off, so float32 stays float32, and convolution algorithms chosen by cuDNN's heuristics rather
than timed, so that two sessions on the same file pick the same kernels and round alike), and
the CPU provider is always the fallback (:func:`providers`). The provider that actually runs is recorded in the report.

    >>> providers(["CUDAExecutionProvider", "CPUExecutionProvider"], gpu=False)
    ['CPUExecutionProvider']
    >>> [p if isinstance(p, str) else p[0] for p in providers(["CUDAExecutionProvider", "CPUExecutionProvider"], gpu=True)]
    ['CUDAExecutionProvider', 'CPUExecutionProvider']
    >>> providers(["CPUExecutionProvider"], gpu=True)
    ['CPUExecutionProvider']
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kerascut_core.validation.runtimes import Runtime, require_runtime

__all__ = ["open_onnx", "providers"]

_CPU = "CPUExecutionProvider"
_CUDA = "CUDAExecutionProvider"
#: ONNX tensor element types a backbone's inputs use -> numpy dtype names
_DTYPES = {
    "tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
    "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(uint8)": "uint8", "tensor(bool)": "bool",
}


def providers(available: Sequence[str], *, gpu: bool) -> list[Any]:
    """The execution providers to ask for: CUDA first on a GPU worker when ``available`` has it
    (TF32 off: cuDNN would otherwise round float32 matmuls to 10 bits; kernels chosen by
    heuristics, the same in every session), then the CPU."""
    chosen: list[Any] = []
    if gpu and _CUDA in available:
        chosen.append((_CUDA, {"use_tf32": "0", "cudnn_conv_algo_search": "HEURISTIC"}))
    return [*chosen, _CPU]


def open_onnx(path: Path, *, gpu: bool = False) -> Runtime:
    """An onnxruntime session on ``path`` (one line naming ``kerascut[onnx]`` without it)."""
    ort = require_runtime("onnx")["onnxruntime"]

    options = ort.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initializers are not the consumer's
    session = ort.InferenceSession(
        str(path), sess_options=options, providers=providers(ort.get_available_providers(), gpu=gpu)
    )
    outputs = [o.name for o in session.get_outputs()]

    def call(feeds: dict[str, Any]) -> dict[str, Any]:
        return dict(zip(outputs, session.run(outputs, feeds), strict=True))

    return Runtime(
        description=f"onnxruntime {ort.__version__} ({session.get_providers()[0]})",
        inputs=[
            (i.name, tuple(d if isinstance(d, int) else None for d in i.shape), _DTYPES.get(i.type, "float32"))
            for i in session.get_inputs()
        ],
        outputs=outputs,
        ordered=True,  # session.run(None, ...) returns them in this order
        call=call,
    )
