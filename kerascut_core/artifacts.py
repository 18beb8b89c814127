"""The files a backbone is published as: one name per format, and the format of a file name.

A base module: surgery writes these files, validation reads them, the store protocol lays them
out under ``<name>/<version>/`` (:mod:`kerascut_core.publishing.layout` re-exports them), and
events name them; none of those needs the others to spell a file name.

    >>> FORMAT_FILES["litert"], artifact_format("saved_model/variables/variables.index")
    ('model.tflite', 'saved_model')
    >>> artifact_format(ONNX), artifact_format(MODEL), artifact_format("model.h5")
    ('onnx', 'keras', 'h5')
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

__all__ = [
    "CARD",
    "FORMAT_FILES",
    "FORMAT_NAMES",
    "GRAPH",
    "LITERT",
    "MODEL",
    "ONNX",
    "SAVED_MODEL",
    "FormatName",
    "artifact_format",
]

#: A format a backbone can be published in (``formats:`` in a config).
FormatName = Literal["keras", "saved_model", "onnx", "litert"]
#: The format names in order (the config's choices, layout's files, validation's checks and the
#: CLI's ``--format`` choices read it), from :data:`FormatName` itself.
FORMAT_NAMES: tuple[str, ...] = get_args(FormatName)

#: the Keras artifact every version has
MODEL = "model.keras"
#: the picture of the backbone (stages collapsed), published when graphviz is there
GRAPH = "graph.svg"
#: the model card of a version, made from its manifest alone (:mod:`kerascut_core.publishing.card`)
CARD = "README.md"
#: the directory of the SavedModel export (``saved_model/...``), when configured
SAVED_MODEL = "saved_model"
#: the ONNX export (``formats: [onnx]``), run with onnxruntime
ONNX = "model.onnx"
#: the LiteRT (TFLite) export (``formats: [litert]``), run with the LiteRT interpreter
LITERT = "model.tflite"
#: the file (or directory) of each published format, by format name
FORMAT_FILES = dict(zip(FORMAT_NAMES, (MODEL, SAVED_MODEL, ONNX, LITERT), strict=True))


def artifact_format(path: str) -> str:
    """``model.keras`` -> ``keras``, ``model.h5`` -> ``h5``, ``saved_model/...`` -> ``saved_model``,
    ``model.onnx`` -> ``onnx``, ``model.tflite`` -> ``litert``."""
    if path.split("/", 1)[0] == SAVED_MODEL:
        return "saved_model"
    suffix = Path(path).suffix.lower().lstrip(".")
    return {"hdf5": "h5", "json": "json", "tflite": "litert"}.get(suffix, suffix or "file")
