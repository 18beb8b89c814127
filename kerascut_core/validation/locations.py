"""Where validation reads from: local paths, ``file://`` URIs, and remote URIs fetched first.

A remote URI (``s3://...``) is downloaded to the local cache with the storage layer's
``fetch``; a path or a ``file://`` URI is read where it is. :func:`local_candidate` finds the
candidate's ``.keras`` file (a directory holding ``model.keras`` counts).

    >>> is_remote("s3://bucket/mnv2/model.keras"), is_remote("file:///tmp/model.keras")
    (True, False)
"""

from __future__ import annotations

import os
from pathlib import Path

from kerascut_core.errors import ValidationError

__all__ = ["fetch_local", "is_remote", "local_candidate"]


def is_remote(text: str) -> bool:
    """A URI to download (``s3://...``), as opposed to a path or a ``file://`` URI."""
    return "://" in text and not text.startswith("file://")


def fetch_local(uri: str) -> Path:
    """Download a URI to the local cache with the storage layer's ``fetch`` (imported lazily)."""
    from kerascut_core.sources import fetch

    return Path(fetch(uri))


def local_candidate(candidate: str | os.PathLike[str]) -> Path:
    """The candidate's ``.keras`` file on local disk (downloaded when it is a remote URI)."""
    text = os.fspath(candidate)
    if text.startswith("file://"):
        text = text[len("file://") :]
    if is_remote(text):
        return fetch_local(text)
    path = Path(text)
    if path.is_dir() and (path / "model.keras").is_file():
        path = path / "model.keras"
    if not path.is_file():
        raise ValidationError(
            f"Expected `candidate` to be a saved .keras file (a path or an s3:// URI). "
            f"Received {text!r}, which does not exist. Save the cut with `model.save(...)` or "
            "stage it, then pass its path."
        )
    return path
