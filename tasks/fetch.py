"""Fetch a backbone's source into the local download cache.

``s3://`` sources are downloaded once into the cache (keyed by bucket, key and ETag, checked
by size and checksum); local files are used where they are; ``keras.applications/NAME`` has
nothing to fetch (the architecture is built, and weights are resolved, when it is loaded).

Example::

    from prefect import flow
    from tasks.fetch import fetch_source

    @flow
    def example():
        return fetch_source("s3://team-models/resnet50.keras", cache_dir="~/.cache/kerascut")

    example()   # "/home/me/.cache/kerascut/s3/team-models/.../resnet50.keras"
"""

from __future__ import annotations

from prefect import get_run_logger, task

from kerascut_core.config import APPLICATIONS_PREFIX
from tasks._common import IO_TASK

__all__ = ["fetch_source"]


@task(name="fetch-source", timeout_seconds=3600, **IO_TASK)
def fetch_source(source: str, cache_dir: str | None = None) -> str:
    """Return a local path (or, for ``keras.applications/NAME``, the URI itself) to load from."""
    logger = get_run_logger()
    if source.startswith(APPLICATIONS_PREFIX):
        logger.info("%s is built from keras.applications: nothing to download", source)
        return source
    from kerascut_core.sources import fetch

    path = fetch(source, cache_dir=cache_dir)
    logger.info("fetched %s -> %s", source, path)
    return str(path)
