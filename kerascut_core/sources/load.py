"""Loading source models: one public function, :func:`load_model`, with one helper per kind.

Sources handled here:

- local ``.keras`` files and legacy Keras 2 ``.h5`` / ``.hdf5`` files (also as ``file://``),
  checked by :mod:`.archive` before Keras opens them and loaded with ``safe_mode=True`` unless
  ``allow_unsafe=True`` (Keras's errors explained by :mod:`.load_errors`);
- ``s3://`` files, fetched into the download cache first (:mod:`.fetching`);
- keras-hub presets (:mod:`.presets`): a preset directory (local, ``file://`` or
  ``s3://bucket/prefix/``) or a ``kaggle://`` / ``hf://`` handle, loaded with
  ``keras_hub.models.Backbone.from_preset`` (the optional extra ``hub``);
- ``keras.applications/NAME`` (``keras.applications/MobileNetV2``), built by
  :mod:`.applications` with ``weights`` ``"imagenet"`` (downloaded by Keras), ``"none"``
  (random, seeded from the URI and options so every process builds the same model) or a path
  to a weights file.

Models with custom layers load in safe mode once the modules that register them are imported:
``imports=["my_layers"]`` imports them first (:func:`~kerascut_core.sources.imports.import_modules`),
or pass the classes as ``custom_objects``. A class Keras cannot find is named in the error,
with the ``imports`` entry that would fix it.

TensorFlow and Keras are imported only when a model is loaded.

    >>> from kerascut_core.sources import load_model
    >>> model = load_model("keras.applications/MobileNetV2", weights="none",
    ...                    input_shape=(96, 96, 3))  # doctest: +SKIP
    >>> model = load_model("resnet50.keras")  # doctest: +SKIP
    >>> backbone = load_model("presets/resnet_18/")  # a keras-hub preset directory  # doctest: +SKIP
    >>> model = load_model("detector.keras", imports=["my_layers"])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kerascut_core.errors import SourceError
from kerascut_core.sources.applications import load_application
from kerascut_core.sources.archive import check_model_file
from kerascut_core.sources.imports import import_modules
from kerascut_core.sources.load_errors import describe_load_error
from kerascut_core.sources.presets import is_preset_dir, load_preset
from kerascut_core.uris import APPLICATIONS_PREFIX, HUB_SCHEMES

__all__ = ["APPLICATIONS_PREFIX", "load_model"]

_FILE_SUFFIXES = (".keras", ".h5", ".hdf5")


def load_model(
    uri: str | Path,
    *,
    weights: str | Path | None = "imagenet",
    input_shape: Sequence[int] | None = None,
    include_top: bool | None = None,
    allow_unsafe: bool = False,
    cache_dir: str | Path | None = None,
    custom_objects: Mapping[str, Any] | None = None,
    imports: Iterable[str] | None = None,
) -> Any:
    """Load the source model that ``uri`` names and return a ``keras.Model``.

    Args:
        uri: a path, ``file://`` or ``s3://`` URI to a ``.keras`` / ``.h5`` file or a keras-hub
            preset directory (``s3://bucket/prefix/``; S3 objects are fetched through the
            download cache), a ``kaggle://`` / ``hf://`` keras-hub handle, or
            ``keras.applications/NAME``.
        weights: for ``keras.applications``: ``"imagenet"``, ``"none"`` (or ``None``) for a
            seeded random build, or a path or ``s3://`` URI of a weights file. Ignored for files.
        input_shape: for ``keras.applications``: ``(H, W, C)``.
        include_top: for ``keras.applications``: keep the classifier (Keras's default when
            ``None``).
        allow_unsafe: load files with ``safe_mode=False`` (``Lambda`` layers with Python code).
            Only for files you trust.
        cache_dir: where downloads are cached (used by remote sources).
        custom_objects: ``{"Name": class}`` for Keras's loader: custom classes that are not
            registered with ``@keras.saving.register_keras_serializable``.
        imports: modules to import before the model is loaded (found on ``sys.path``), such as
            the module whose ``register_keras_serializable`` classes the model uses.

    Raises:
        SourceError: the URI is not understood, the file is missing or unreadable, a module of
            ``imports`` does not import, or Keras could not build the model (a missing custom
            class is named, with the module to import).
    """
    import_modules(imports)
    text = str(uri)
    if text.startswith(HUB_SCHEMES):
        from kerascut_core.uris import parse_uri

        return load_preset(parse_uri(text).uri, custom_objects=custom_objects)
    remote_weights = isinstance(weights, str) and weights.startswith("s3://")
    if text.startswith("s3://") or (text.startswith(APPLICATIONS_PREFIX) and remote_weights):
        # fetched once into the download cache (checked by size and checksum), then loaded
        from kerascut_core.sources.fetching import resolve_local

        text, fetched = resolve_local(text, cache_dir=cache_dir, weights=weights)
        weights = fetched.get("weights", weights)
    if text.startswith(APPLICATIONS_PREFIX):
        return load_application(text, weights=weights, input_shape=input_shape,
                                include_top=include_top)
    if text.startswith("file://"):
        return _load_file(Path(text[len("file://"):]), allow_unsafe=allow_unsafe,
                          custom_objects=custom_objects)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise SourceError(
            f"Expected a local path, file://, s3://, kaggle:// or hf:// URI, or {APPLICATIONS_PREFIX}NAME. "
            f"Received {text!r} with the unsupported scheme {scheme!r}."
        )
    return _load_file(Path(text), allow_unsafe=allow_unsafe, custom_objects=custom_objects)


# --------------------------------------------------------------------------------------------
# files


def _load_file(path: Path, *, allow_unsafe: bool, custom_objects: Mapping[str, Any] | None) -> Any:
    if not path.exists():
        raise SourceError(f"Expected an existing model file. Received {str(path)!r}, which does not exist.")
    if path.is_dir():
        if is_preset_dir(path):
            return load_preset(path, custom_objects=custom_objects)
        raise SourceError(
            f"Expected a .keras or .h5 model file or a keras-hub preset directory (config.json "
            f"and metadata.json). Received the directory {str(path)!r} (a TensorFlow "
            "SavedModel?). Keras 3 cannot rebuild layers from a SavedModel: load it in the "
            "program that wrote it and save it with `model.save('model.keras')`."
        )
    if path.suffix.lower() not in _FILE_SUFFIXES:
        raise SourceError(
            f"Expected a model file ending in {', '.join(_FILE_SUFFIXES)}. "
            f"Received {str(path)!r}."
        )
    # Headers only: empty, truncated, renamed and zip-bomb files get a clear refusal before Keras
    # (which calls them "File not found", or inflates them) ever opens them.
    check_model_file(path)
    import keras

    try:
        return keras.saving.load_model(
            path, compile=False, safe_mode=not allow_unsafe,
            custom_objects=dict(custom_objects) if custom_objects else None,
        )
    except Exception as exc:
        raise SourceError(describe_load_error(str(path), exc)) from exc
