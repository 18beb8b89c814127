"""The preprocessing contract of a source: what a raw image must go through before the model.

``keras.applications`` models each come with a ``preprocess_input`` of one of three modes, or do
their preprocessing in the graph (``Rescaling`` / ``Normalization`` layers right after the
input). :data:`APPLICATION_PREPROCESSING` records which, per architecture; it is checked against
the installed ``keras/src/applications/*.py`` by ``tests/publishing/test_contract.py``. A keras-hub model
carries an image converter whose ``scale`` and ``offset`` say the same; anything else is
``unknown``.

- ``caffe``: RGB to BGR, then the ImageNet mean subtracted per channel (pixels in [0, 255]);
- ``tf``: pixels scaled from [0, 255] to [-1, 1];
- ``torch``: pixels scaled to [0, 1], then normalised with the ImageNet mean and std;
- ``in_graph``: the model's own ``Rescaling`` / ``Normalization`` layers do it (feed pixels in
  [0, 255]); whether a cut keeps them is the cut's business
  (:func:`kerascut_core.surgery.contract.cut_contract`);
- ``scale_offset``: ``x * scale + offset`` (a keras-hub image converter);
- ``unknown``: kerascut cannot tell (a ``.keras`` file from elsewhere).

Pure Python; the function a contract names is imported only when :func:`resolve_function` is
called.

    >>> application_preprocessing("ResNet50")["function"]
    'keras.applications.resnet.preprocess_input'
    >>> application_preprocessing("EfficientNetB0")["mode"], application_preprocessing("DenseNet121")["mode"]
    ('in_graph', 'torch')
    >>> source_preprocessing("s3://team/detector.keras")["mode"]
    'unknown'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from kerascut_core.errors import SourceError
from kerascut_core.uris import APPLICATIONS_PREFIX

__all__ = [
    "APPLICATION_PREPROCESSING",
    "MODES",
    "application_preprocessing",
    "model_preprocessing",
    "resolve_function",
    "source_preprocessing",
]

#: what each mode does to a raw image, in words (model cards and ``kerascut show``)
MODES: dict[str, str] = {
    "caffe": "RGB to BGR, then the ImageNet mean subtracted per channel, no scaling (pixels in [0, 255])",
    "tf": "pixels scaled from [0, 255] to [-1, 1]",
    "torch": "pixels scaled to [0, 1], then normalised with the ImageNet mean and std",
    "in_graph": "done by the source's own Rescaling/Normalization layers (feed pixels in [0, 255])",
    "scale_offset": "x * scale + offset (the keras-hub image converter)",
    "unknown": "not known to kerascut: see where the source model came from",
}


def _family(mode: str, module: str, *names: str) -> dict[str, tuple[str, str]]:
    return {name: (mode, module) for name in names}


#: architecture (``keras.applications`` name) -> (mode, module of ``keras.applications``)
APPLICATION_PREPROCESSING: dict[str, tuple[str, str]] = {
    **_family("caffe", "resnet", "ResNet50", "ResNet101", "ResNet152"),
    **_family("caffe", "vgg16", "VGG16"),
    **_family("caffe", "vgg19", "VGG19"),
    **_family("tf", "resnet_v2", "ResNet50V2", "ResNet101V2", "ResNet152V2"),
    **_family("tf", "mobilenet", "MobileNet"),
    **_family("tf", "mobilenet_v2", "MobileNetV2"),
    **_family("tf", "xception", "Xception"),
    **_family("tf", "inception_v3", "InceptionV3"),
    **_family("tf", "inception_resnet_v2", "InceptionResNetV2"),
    **_family("tf", "nasnet", "NASNetMobile", "NASNetLarge"),
    **_family("torch", "densenet", "DenseNet121", "DenseNet169", "DenseNet201"),
    # MobileNetV3 is built with include_preprocessing=True: a Rescaling(1/127.5, -1) layer
    **_family("in_graph", "mobilenet_v3", "MobileNetV3Small", "MobileNetV3Large"),
    **_family("in_graph", "efficientnet", *(f"EfficientNetB{i}" for i in range(8))),
    **_family("in_graph", "efficientnet_v2", *(f"EfficientNetV2{v}" for v in ("B0", "B1", "B2", "B3", "S", "M", "L"))),
    **_family("in_graph", "convnext", *(f"ConvNeXt{v}" for v in ("Tiny", "Small", "Base", "Large", "XLarge"))),
}


def _contract(mode: str, **fields: Any) -> dict[str, Any]:
    return {"mode": mode, "function": None, "scale": None, "offset": None, "note": None, **fields}


def application_preprocessing(architecture: str) -> dict[str, Any]:
    """The contract of ``keras.applications.<architecture>``: ``mode``, ``function`` (the dotted
    name of the ``preprocess_input`` to apply; ``None`` when the graph does it), ``scale``,
    ``offset`` and ``note``. An architecture kerascut does not know is ``unknown``."""
    found = APPLICATION_PREPROCESSING.get(architecture)
    if found is None:
        return _contract("unknown", note=f"keras.applications/{architecture} is not in kerascut's preprocessing table")
    mode, module = found
    if mode == "in_graph":
        return _contract(mode, note=f"keras.applications.{module}.preprocess_input does nothing: the graph preprocesses")
    return _contract(mode, function=f"keras.applications.{module}.preprocess_input")


def model_preprocessing(model: Any) -> dict[str, Any] | None:
    """The contract a loaded model carries itself: a keras-hub model's image converter (its
    ``scale`` and ``offset``), or ``None`` when the model says nothing."""
    if not type(model).__module__.startswith("keras_hub"):
        return None
    converter = getattr(getattr(model, "preprocessor", None), "image_converter", None)
    if converter is None:
        converter = getattr(model, "image_converter", None)
    if converter is None:
        return _contract("unknown", note="a keras-hub model without an image converter: see its preset's preprocessor")
    return _contract("scale_offset", scale=_number(getattr(converter, "scale", None)),
                     offset=_number(getattr(converter, "offset", None)))


def _number(value: Any) -> float | list[float] | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        try:
            return [float(v) for v in value]
        except (TypeError, ValueError):
            return None


def source_preprocessing(uri: str, model: Any = None) -> dict[str, Any]:
    """The contract of the source ``uri`` (``model``, when loaded, may carry its own): the table
    for ``keras.applications/NAME``, the image converter of a keras-hub model, else ``unknown``."""
    if uri.startswith(APPLICATIONS_PREFIX):
        return application_preprocessing(uri[len(APPLICATIONS_PREFIX):])
    carried = model_preprocessing(model) if model is not None else None
    if carried is not None:
        return carried
    return _contract("unknown", note="a model file: kerascut cannot tell how its inputs were preprocessed")


def resolve_function(dotted: str) -> Callable[..., Any]:
    """The function a contract names (``keras.applications.resnet.preprocess_input``), imported
    now; :class:`SourceError` when it cannot be."""
    module_name, _, attribute = dotted.rpartition(".")
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        raise SourceError(
            f"Cannot import the preprocessing function {dotted!r}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}. "
            "Install the package that provides it (the manifest names it), or preprocess as the model card says."
        ) from None
    if not callable(function):
        raise SourceError(f"Expected {dotted!r} to be a function. Received a {type(function).__name__}; preprocess as the model card says.")
    return function
