"""Check whether a backbone's current version is already published, without downloading it.

The check fingerprints the source (a HEAD request for S3, a hash for local files, the
architecture and weights identity for ``keras.applications``), derives the version from the
fingerprint and the cut, and looks for that version's manifest. TensorFlow is not imported.

Example::

    from prefect import flow
    from kerascut.tasks.freshness import check_freshness

    @flow
    def example():
        backbone = {"name": "tiny", "source": "keras.applications/MobileNetV2",
                    "weights": "none", "input_shape": [32, 32, 3], "end": "block_3_expand_relu"}
        return check_freshness(backbone, store="./backbones")

    example()   # {"name": "tiny", "version": "...", "up_to_date": False, ...}
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from kerascut.tasks._common import IO_TASK
from kerascut_core.config import BackboneConfig

__all__ = ["check_freshness"]


@task(name="check-freshness", task_run_name="check-freshness-{backbone[name]}", timeout_seconds=120, **IO_TASK)
def check_freshness(backbone: dict[str, Any], store: str, force: bool = False) -> dict[str, Any]:
    """Fingerprint the source and tell whether its version is published and ``latest``.

    Returns ``{"name", "version", "fingerprint", "published", "latest", "up_to_date",
    "manifest_uri"}``; ``up_to_date`` is ``published and not force``.
    """
    from kerascut_core import __version__ as kerascut_version
    from kerascut_core.publishing.layout import manifest_key
    from kerascut_core.publishing.versioning import compute_version
    from kerascut_core.sources import fingerprint, keras_version
    from kerascut_core.stores import open_store

    spec = BackboneConfig.model_validate(backbone)
    logger = get_run_logger()
    fp = fingerprint(spec.source, **spec.source_options())
    version = compute_version(
        _identity(fp, spec.formats),
        spec.cut_spec(),
        spec.input_shape,
        keras_version(),
        kerascut_version,
    )
    target = open_store(store)
    published = target.exists(manifest_key(spec.name, version))
    latest = _latest(target, spec.name)
    logger.info(
        "%s: source %s fingerprint %s -> version %s (%s)",
        spec.name, spec.source, fp[:16], version,
        "published" if published else "not published yet",
    )
    return {
        "name": spec.name,
        "version": version,
        "fingerprint": fp,
        "published": published,
        "latest": latest,
        "up_to_date": published and not force,
        "manifest_uri": target.uri(manifest_key(spec.name, version)),
    }


def _latest(store: Any, name: str) -> str | None:
    from kerascut_core.errors import ObjectNotFoundError
    from kerascut_core.publishing.layout import latest_key

    try:
        pointer = store.read_json(latest_key(name))
    except ObjectNotFoundError:
        return None
    return (pointer or {}).get("version")


def _identity(fp: str, formats: list[str]) -> str:
    """The fingerprint, plus the published formats when they are more than ``keras``.

    Adding ``saved_model`` changes what a version holds, so it must give a new version; a
    config with the default ``[keras]`` keeps the plain fingerprint.
    """
    return fp if list(formats) == ["keras"] else f"{fp}#formats={'+'.join(formats)}"
