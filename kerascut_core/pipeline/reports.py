"""The validation report of a staged candidate: made from its bytes, kept beside it in the store.

``report.json`` lives next to the candidate's ``model.keras`` under staging. The store is the
only state a CPU worker and a GPU worker share, so the report travels through it: whichever
process validated, the publishing process reads the same report.

    >>> report = validate_staged(staged_uri, backbone, settings)   # doctest: +SKIP
    >>> read_report(staged_uri)["passed"]                          # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from kerascut_core.config import BackboneConfig, ValidationSettings
from kerascut_core.errors import ObjectNotFoundError
from kerascut_core.publishing.layout import REPORT
from kerascut_core.stores import open_store

if TYPE_CHECKING:
    from kerascut_core.validation import ValidationReport

__all__ = ["read_report", "sibling", "validate_staged", "write_report"]


def sibling(uri: str, name: str) -> tuple[str, str]:
    """``(directory_uri, name)`` of the object ``name`` next to ``uri``."""
    directory = uri.rsplit("/", 1)[0] if "/" in uri else "."
    return directory, name


def write_report(candidate_uri: str, report: Mapping[str, Any]) -> str:
    """Write ``report`` (JSON-ready) as ``report.json`` beside ``candidate_uri``; return its URI."""
    directory, name = sibling(candidate_uri, REPORT)
    store = open_store(directory)
    store.put_bytes(name, (json.dumps(dict(report), indent=2, sort_keys=True) + "\n").encode(), overwrite=True)
    return store.uri(name)


def read_report(candidate_uri: str) -> dict[str, Any] | None:
    """The ``report.json`` validation left beside ``candidate_uri``, or ``None``."""
    directory, name = sibling(candidate_uri, REPORT)
    try:
        return open_store(directory).read_json(name)
    except ObjectNotFoundError:
        return None


def validate_staged(
    candidate_uri: str,
    backbone: BackboneConfig | Mapping[str, Any],
    settings: ValidationSettings | Mapping[str, Any],
    cache_dir: str | None = None,
    imports: Iterable[str] | None = None,
) -> ValidationReport:
    """Validate the staged candidate at ``candidate_uri`` and leave ``report.json`` beside it.

    The source is fetched through this process's own download cache and rebuilt from its URI
    and options, so a GPU worker needs nothing but the store and the source (and the modules of
    ``imports``, the config's, imported first). Keras's session is cleared afterwards.
    """
    import keras

    from kerascut_core.sources import resolve_local
    from kerascut_core.validation import validate

    spec = BackboneConfig.model_validate(backbone)
    options = ValidationSettings.model_validate(settings)
    source, source_options = resolve_local(spec.source, cache_dir=cache_dir, **spec.source_options())
    report = validate(
        candidate_uri,
        source,
        spec.cut_spec(),
        options,
        formats=tuple(spec.formats),
        source_options=source_options,
        allow_unsafe=spec.allow_unsafe,
        imports=imports,
    )
    keras.backend.clear_session()
    write_report(candidate_uri, report.model_dump(mode="json"))
    return report
