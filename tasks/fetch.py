"""Fetch a backbone's source into the local download cache.

``s3://`` sources are downloaded once into the cache (keyed by bucket, key and ETag, checked
by size and checksum); local files are used where they are; ``keras.applications/NAME`` has
nothing to fetch (the architecture is built, and weights are resolved, when it is loaded).

Example::

    from prefect import flow
    from kerascut.tasks.fetch import fetch_source

    @flow
    def example():
        backbone = {"name": "detector", "source": "s3://team-models/detector.keras"}
        return fetch_source(backbone, cache_dir="~/.cache/kerascut")

    example()   # {"source": "/home/me/.cache/kerascut/.../detector.keras", "options": {...}}
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from kerascut.tasks._common import IO_TASK
from kerascut_core.config import BackboneConfig

__all__ = ["fetch_source"]


@task(name="fetch-source", task_run_name="fetch-{backbone[name]}", timeout_seconds=3600, **IO_TASK)
def fetch_source(backbone: dict[str, Any], cache_dir: str | None = None) -> dict[str, Any]:
    """Fetch every remote part of ``backbone``'s source into the cache.

    Returns ``{"source": local_uri, "options": load_model_options}``: for a file source the
    local path of its bytes; for ``keras.applications`` the URI itself, with an ``s3://``
    ``weights`` option replaced by the local path of the weights file.
    """
    from kerascut_core.sources import resolve_local

    spec = BackboneConfig.model_validate(backbone)
    logger = get_run_logger()
    local, options = resolve_local(spec.source, cache_dir=cache_dir, **spec.source_options())
    if spec.is_application and local == spec.source and options == spec.source_options():
        logger.info("%s is built from keras.applications: nothing to download", spec.source)
    else:
        logger.info("fetched %s -> %s", spec.source, local)
    if "input_shape" in options and options["input_shape"] is not None:
        options["input_shape"] = list(options["input_shape"])
    return {"source": local, "options": options}
