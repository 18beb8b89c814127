"""The version of a backbone is a content address.

It is derived from the source fingerprint, the cut spec, the input shape, and the Keras and
kerascut major.minor versions: a rerun with nothing changed maps to the version that already
exists and is skipped, and any change that can change the bytes gives a new version. Pure
Python; nothing heavy is imported.

    >>> compute_version("sha256:ab12", {"end": "block_13_expand_relu"}, [224, 224, 3], "3.15.1", "0.1.0")
    'dacbebb99180baec'
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from kerascut_core.errors import StoreError
from kerascut_core.surgery.spec import CutSpec

__all__ = ["VERSION_LENGTH", "compute_version", "major_minor"]

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
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:VERSION_LENGTH]
