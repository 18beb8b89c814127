"""What is installed, read from package metadata: nothing is imported.

Versions enter a backbone's content address (Keras's major.minor) and a preset's fingerprint
(keras-hub's), and a plan reads them without importing TensorFlow or Keras.

    >>> keras_version("no-such-package-kc", missing="none")
    'none'
"""

from __future__ import annotations

from importlib import metadata

__all__ = ["keras_version"]


def keras_version(package: str = "keras", *, missing: str = "unknown") -> str:
    """The installed major.minor of ``package`` (Keras by default), read from package metadata
    (nothing is imported); ``missing`` when it is not installed."""
    try:
        full = metadata.version(package)
    except metadata.PackageNotFoundError:
        return missing
    return ".".join(full.split(".")[:2])
