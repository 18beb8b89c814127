"""The ``litert`` format in the LiteRT interpreter (``ai_edge_litert``), as a :class:`Runtime`.

The file runs through its serving signature, as on a device: inputs and outputs by name (a
signature is a map, so outputs have no order to check), the batch dimension resized per call
by the signature runner. The CPU runs it with the default XNNPACK delegate.

    >>> runtime = open_litert(Path("model.tflite"))   # doctest: +SKIP
    >>> runtime.outputs                                # doctest: +SKIP
    ['C4', 'C5']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kerascut_core.errors import ValidationError
from kerascut_core.validation.runtimes import Runtime, require_runtime

__all__ = ["open_litert"]


def open_litert(path: Path) -> Runtime:
    """The interpreter's serving signature on ``path`` (one line naming ``kerascut[litert]``
    without it)."""
    modules = require_runtime("litert")
    litert = modules["ai_edge_litert"]
    interpreter = modules["ai_edge_litert.interpreter"].Interpreter(model_path=str(path))
    signatures = interpreter.get_signature_list()
    if not signatures:
        raise ValidationError(
            f"Expected {path.name} to have a serving signature (Keras's litert export writes one). "
            "Received none; export it with kerascut (formats: [litert])"
        )
    key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
    runner = interpreter.get_signature_runner(key)
    details = runner.get_input_details()
    inputs = [
        (name, tuple(None if d < 0 else int(d) for d in info["shape_signature"]), info["dtype"])
        for name, info in ((n, details[n]) for n in signatures[key]["inputs"])
    ]

    def call(feeds: dict[str, Any]) -> dict[str, Any]:
        return {name: value.copy() for name, value in runner(**feeds).items()}

    return Runtime(
        description=f"ai-edge-litert {getattr(litert, '__version__', '?')} (signature {key!r})",
        inputs=inputs,
        outputs=list(signatures[key]["outputs"]),
        ordered=False,
        call=call,
    )
