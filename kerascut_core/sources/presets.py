"""keras-hub presets as sources: preset directories and ``kaggle://`` / ``hf://`` handles.

A keras-hub preset is a directory that ``save_to_preset`` writes: ``config.json`` (the
backbone's class and config), ``metadata.json`` (with ``keras_hub_version``) and the weights.
kerascut takes one as a source in three ways:

- a local directory (or ``file://``), fingerprinted by the sha256 of its files (names and
  bytes, :mod:`.fingerprints`), like any directory;
- an ``s3://bucket/prefix/`` directory (the trailing ``/`` says it is one), fingerprinted by
  its listing and fetched whole into the download cache (:mod:`.directories`);
- a ``kaggle://`` or ``hf://`` handle, which keras-hub downloads itself (machines with access
  only). Its fingerprint is the handle and its version (:func:`hub_fingerprint`).

Each is loaded with ``keras_hub.models.Backbone.from_preset``; keras-hub is the optional extra
``hub`` (``pip install 'kerascut[hub]'``). Telling a preset directory from other directories
(:func:`is_preset_dir`) and fingerprinting never import keras-hub, so ``kerascut plan`` stays
free of TensorFlow.

    >>> hub_fingerprint("kaggle://keras/resnetv2/keras/resnet50_v2_imagenet/2")  # doctest: +ELLIPSIS
    'kaggle://keras/resnetv2/keras/resnet50_v2_imagenet/2?keras_hub=...'
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kerascut_core._names import short_repr
from kerascut_core.errors import SourceError
from kerascut_core.installed import keras_version
from kerascut_core.uris import HUB_SCHEMES

__all__ = ["HUB_SCHEMES", "PRESET_FILES", "hub_fingerprint", "is_preset_dir", "load_preset"]

#: The files that make a directory a keras-hub preset.
PRESET_FILES = ("config.json", "metadata.json")
_METADATA_MAX_BYTES = 1 << 20
_KAGGLE_VERSION = re.compile(r"^[^/]+/[^/]+/[^/]+/[^/]+/[0-9]+$")
_HUB_HINT = (
    "kaggle:// and hf:// handles are downloaded by keras-hub, which needs network access (and "
    "Kaggle or Hugging Face credentials for gated models); on a machine without it, save the "
    "preset elsewhere with `keras_hub.models.Backbone.from_preset(HANDLE).save_to_preset(DIR)` "
    "and use DIR (or an s3://bucket/prefix/ copy of it) as the source"
)


def is_preset_dir(path: str | Path) -> bool:
    """Whether ``path`` is a keras-hub preset directory (``config.json`` and a ``metadata.json``
    written by keras-hub or keras-nlp). Reads one small JSON file; imports nothing."""
    path = Path(path)
    if not all((path / name).is_file() for name in PRESET_FILES):
        return False
    meta = path / "metadata.json"
    try:
        if meta.stat().st_size > _METADATA_MAX_BYTES:
            return False
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and ("keras_hub_version" in data or "keras_nlp_version" in data)


def hub_fingerprint(uri: str) -> str:
    """``HANDLE?keras_hub=X.Y``: the handle (with its version) and the keras-hub major.minor.

    A ``kaggle://`` handle must end in its version (``.../resnet50_v2_imagenet/2``): an
    unpinned handle would keep its fingerprint when Kaggle publishes a new version. keras-hub's
    ``hf://`` handles have no version; the handle is their identity (pin the repository's
    content by saving it as a preset directory).
    """
    if uri.startswith("kaggle://") and not _KAGGLE_VERSION.match(uri[len("kaggle://"):]):
        raise SourceError(
            "Expected a kaggle:// handle pinned to a version, such as "
            "kaggle://keras/resnetv2/keras/resnet50_v2_imagenet/2. Received "
            f"{short_repr(uri, 200)}, which has none, so its fingerprint would not change when a "
            "new version is published. Add the version number."
        )
    return f"{uri}?keras_hub={keras_version('keras-hub', missing='none')}"


def load_preset(uri: str | Path, custom_objects: Mapping[str, Any] | None = None) -> Any:
    """``keras_hub.models.Backbone.from_preset(uri)`` with keras-hub's errors in one line.

    ``uri`` is a preset directory or a ``kaggle://`` / ``hf://`` handle. ``custom_objects``
    (``{"Name": class}``, or the registered ``"package>Name"``) are in scope while it loads, for
    a preset of custom classes that are not registered. A custom class that is missing is named
    with the ``--import`` that would fix it (:mod:`.load_errors`). Without keras-hub a
    :class:`~kerascut_core.extras.MissingExtraError` names the extra to install.
    """
    from kerascut_core.extras import require

    text = str(uri)
    keras_hub = require(
        "keras_hub", extra="hub", purpose=f"the keras-hub preset source {short_repr(text, 200)}"
    )
    import keras

    try:
        with keras.saving.custom_object_scope(dict(custom_objects or {})):
            return keras_hub.models.Backbone.from_preset(text)
    except Exception as exc:
        from kerascut_core.sources.load_errors import describe_cause, known_load_error

        known = known_load_error(text, exc)
        if known is not None:
            raise SourceError(known) from exc
        hint = (
            _HUB_HINT
            if text.startswith(HUB_SCHEMES)
            else "check that the directory is a whole keras-hub preset (save_to_preset writes "
            "config.json, metadata.json and model.weights.h5) of a keras-hub version installed here"
        )
        raise SourceError(
            f"Expected keras-hub to load the preset {short_repr(text, 200)} as a Backbone. "
            f"Received {describe_cause(exc, 400).rstrip('.')}; {hint}."
        ) from exc
