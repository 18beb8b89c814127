"""Fetch a backbone's source into the local download cache.

Wraps :func:`kerascut_core.pipeline.candidate.fetch_source`: ``s3://`` sources are downloaded once into
the cache (keyed by bucket, key and ETag, checked by size and checksum); local files are used
where they are; ``keras.applications/NAME`` has nothing to fetch (the architecture is built,
and weights are resolved, when it is loaded).

Example::

    from prefect import flow
    from kerascut.tasks.fetch import fetch_backbone_source

    @flow
    def example():
        backbone = {"name": "detector", "source": "s3://team-models/detector.keras"}
        return fetch_backbone_source(backbone, cache_dir="~/.cache/kerascut")

    example()   # FetchedSource(source="/home/me/.cache/kerascut/.../detector.keras", options={...})
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from kerascut.tasks.common import IO_TASK
from kerascut_core.pipeline.candidate import FetchedSource

__all__ = ["fetch_backbone_source"]


@task(name="fetch-source", task_run_name="fetch-{backbone[name]}", timeout_seconds=3600, **IO_TASK)
def fetch_backbone_source(backbone: dict[str, Any], cache_dir: str | None = None) -> FetchedSource:
    """Fetch every remote part of ``backbone``'s source into the cache.

    Returns a :class:`~kerascut_core.pipeline.candidate.FetchedSource`: ``source`` (for a file source
    the local path of its bytes; for ``keras.applications`` the URI itself) and ``options``
    (``load_model`` options, an ``s3://`` ``weights`` replaced by the local weights file).
    """
    from kerascut_core.pipeline.candidate import fetch_source

    fetched = fetch_source(backbone, cache_dir)
    logger = get_run_logger()
    if not fetched.fetched:
        logger.info("%s is built from keras.applications: nothing to download", backbone["source"])
    else:
        logger.info("fetched %s -> %s", backbone["source"], fetched.source)
    return fetched
