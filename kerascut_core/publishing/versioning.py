"""The version of a backbone is a content address.

It is derived from the source fingerprint, the cut spec, the input shape, and the Keras and
kerascut major.minor versions (and, for ``end: auto-pyramid``, the pyramid rule, so a change of
the rule or of the source that can move a tap makes a new version): a rerun with nothing changed maps to the version that already
exists and is skipped, and any change that can change the bytes gives a new version. Pure
Python; nothing heavy is imported.

    >>> compute_version("sha256:ab12", {"end": "block_13_expand_relu"}, [224, 224, 3], "3.15.1", "0.1.0")
    'dacbebb99180baec'

A backbone's version is :func:`backbone_version`: the same address, with the published formats
folded into the fingerprint when they are more than ``keras`` (adding ``saved_model`` changes
what a version holds). It is exactly the version the pipeline publishes.

    >>> from kerascut_core.config import BackboneConfig
    >>> b = BackboneConfig(name="mnv2", source="keras.applications/MobileNetV2", weights="none",
    ...                    input_shape=[96, 96, 3], end="block_13_expand_relu", formats=["keras", "saved_model"])
    >>> backbone_version(b, "app:MobileNetV2:weights=none", keras_version="3.15.1", kerascut_version="0.1.0")
    '123af801b1ce21a8'
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from kerascut_core.errors import StoreError
from kerascut_core.surgery.spec import AUTO_PYRAMID, AUTO_PYRAMID_RULE, CutSpec

if TYPE_CHECKING:
    from kerascut_core.config import BackboneConfig

__all__ = ["VERSION_LENGTH", "backbone_version", "compute_version", "major_minor"]

#: hex digits of sha256 kept in a version (64 bits: collisions are not a practical concern)
VERSION_LENGTH = 16


def major_minor(version: str | None) -> str:
    """``"3.15.1"`` -> ``"3.15"``; ``None`` -> ``"none"``."""
    if not version:
        return "none"
    return ".".join(str(version).split("+")[0].split(".")[:2])


def compute_version(
    fingerprint: str,
    cut_spec: CutSpec | Mapping[str, Any] | None,
    input_shape: Sequence[int | None] | None,
    keras_version: str | None,
    kerascut_version: str | None,
) -> str:
    """The content address of a backbone (16 lowercase hex digits)."""
    if not isinstance(fingerprint, str) or not fingerprint:
        raise StoreError(f"Expected a non-empty source fingerprint. Received {fingerprint!r}.")
    spec = CutSpec.from_dict(cut_spec).to_dict()
    shape = None if input_shape is None else [None if d is None else int(d) for d in input_shape]
    identity = {
        "fingerprint": fingerprint,
        "cut": spec,
        "input_shape": shape,
        "keras": major_minor(keras_version),
        "kerascut": major_minor(kerascut_version),
    }
    if spec["end"] == AUTO_PYRAMID:
        # The taps are resolved from the graph: the rule is part of what the version is made of,
        # and the source's fingerprint covers the graph.
        identity["pyramid_rule"] = AUTO_PYRAMID_RULE
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:VERSION_LENGTH]


def _identity(fingerprint: str, formats: Sequence[str]) -> str:
    """The fingerprint, plus the published formats when they are more than ``keras``.

    Adding ``saved_model`` changes what a version holds, so it must give a new version; a
    config with the default ``[keras]`` keeps the plain fingerprint.
    """
    return fingerprint if list(formats) == ["keras"] else f"{fingerprint}#formats={'+'.join(formats)}"


def backbone_version(
    backbone: BackboneConfig,
    fingerprint: str,
    *,
    keras_version: str | None = None,
    kerascut_version: str | None = None,
) -> str:
    """The version the pipeline publishes for ``backbone`` whose source has ``fingerprint``.

    The content address of :func:`compute_version` over the fingerprint (with the formats when
    they are more than ``keras``), the cut spec and the input shape. ``keras_version`` and
    ``kerascut_version`` default to the installed ones (read from package metadata: Keras is
    not imported).
    """
    if keras_version is None:
        from kerascut_core.sources import keras_version as installed_keras

        keras_version = installed_keras()
    if kerascut_version is None:
        from kerascut_core._version import __version__ as kerascut_version
    return compute_version(
        _identity(fingerprint, backbone.formats),
        backbone.cut_spec(),
        backbone.input_shape,
        keras_version,
        kerascut_version,
    )
