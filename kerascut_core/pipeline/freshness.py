"""Freshness: is a backbone's current version already published? Answered without a download.

The check fingerprints the source (a HEAD request for S3, a hash for local files, the
architecture and weights identity for ``keras.applications``), derives the version
(:func:`~kerascut_core.publishing.versioning.backbone_version`: exactly what the pipeline
publishes) and looks for that version's manifest and for ``latest.json``. TensorFlow and Keras
are not imported, so a refresh that finds nothing changed stays cheap.

    >>> check_freshness(backbone, "./backbones")                  # doctest: +SKIP
    Freshness(name='tiny', version='...', published=False, up_to_date=False, ...)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from kerascut_core.config import BackboneConfig
from kerascut_core.errors import ObjectNotFoundError
from kerascut_core.publishing.layout import latest_key, manifest_key
from kerascut_core.publishing.versioning import backbone_version
from kerascut_core.stores import Store, open_store

__all__ = ["Freshness", "check_freshness"]


class Freshness(BaseModel):
    """Where a backbone stands: its current ``version``, whether it is ``published``, what
    ``latest`` names (and whether a promote ``pinned`` it there). ``up_to_date`` is
    ``published and not force``."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    fingerprint: str
    published: bool
    latest: str | None
    up_to_date: bool
    manifest_uri: str
    pinned: bool = False


def _latest(store: Store, name: str) -> tuple[str | None, bool]:
    """The version ``latest.json`` names as it is (``None`` without one; a pointer that is not
    an object with a string version names none: the refresh moves it), and whether it is pinned."""
    try:
        pointer = store.read_json(latest_key(name))
    except ObjectNotFoundError:
        return None, False
    version = pointer.get("version") if isinstance(pointer, dict) else None
    if not isinstance(version, str):
        return None, False
    return version, bool(pointer.get("pinned"))


def check_freshness(
    backbone: BackboneConfig | Mapping[str, Any], store: Store | str, *, force: bool = False
) -> Freshness:
    """Fingerprint ``backbone``'s source and tell whether its version is published and ``latest``."""
    from kerascut_core.sources import fingerprint

    spec = BackboneConfig.model_validate(backbone)
    target = open_store(store) if isinstance(store, str) else store
    fp = fingerprint(spec.source, **spec.source_options())
    version = backbone_version(spec, fp)
    published = target.exists(manifest_key(spec.name, version))
    latest, pinned = _latest(target, spec.name)
    return Freshness(
        name=spec.name,
        version=version,
        fingerprint=fp,
        published=published,
        latest=latest,
        up_to_date=published and not force,
        manifest_uri=target.uri(manifest_key(spec.name, version)),
        pinned=pinned,
    )
