"""Stage a candidate in the store, read its validation report, discard it.

Candidates live under ``<store>/.staging/<name>/<version>/<run_id>/`` and are never listed as
published. Validation (in-process or on a GPU worker) reads the staged bytes and writes
``report.json`` beside them; whatever happens next, the run's staging directory is removed.

Example::

    from prefect import flow
    from kerascut.tasks.stage import discard_candidate, stage_candidate

    @flow
    def example():
        uri = stage_candidate("./backbones", "tiny", "0123abcd0123abcd", "run-1",
                              {"model.keras": "/tmp/kc/tiny.keras"})
        ...                       # validate the bytes at `uri`
        discard_candidate("./backbones", uri)

    example()
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from kerascut.tasks._common import IO_TASK
from kerascut_core.publishing.layout import REPORT, run_of

__all__ = ["REPORT_NAME", "discard_candidate", "read_report", "sibling", "stage_candidate"]

REPORT_NAME = REPORT


def sibling(uri: str, name: str) -> tuple[str, str]:
    """``(directory_uri, name)`` of the object ``name`` next to ``uri``."""
    directory = uri.rsplit("/", 1)[0] if "/" in uri else "."
    return directory, name


@task(name="stage-candidate", task_run_name="stage-{name}", timeout_seconds=3600, **IO_TASK)
def stage_candidate(store: str, name: str, version: str, run_id: str, files: dict[str, str]) -> str:
    """Upload the candidate's files (``{"model.keras": path, ...}``); return the URI of its
    ``model.keras`` under staging."""
    from kerascut_core.publishing import stage_candidate as stage
    from kerascut_core.stores import open_store

    uri = stage(open_store(store), name, version, files, run_id=run_id)
    get_run_logger().info("%s: staged %d file(s) at %s", name, len(files), uri)
    return uri


@task(name="read-report", timeout_seconds=300, **IO_TASK)
def read_report(candidate_uri: str) -> dict[str, Any] | None:
    """The ``report.json`` validation left beside ``candidate_uri``, or ``None``."""
    from kerascut_core.errors import ObjectNotFoundError
    from kerascut_core.stores import open_store

    directory, name = sibling(candidate_uri, REPORT_NAME)
    try:
        return open_store(directory).read_json(name)
    except ObjectNotFoundError:
        return None


@task(name="discard-candidate", timeout_seconds=600, **IO_TASK)
def discard_candidate(store: str, candidate_uri: str) -> int:
    """Delete the candidate's staging directory (its run); return how many objects went."""
    from kerascut_core.stores import open_store

    target = open_store(store)
    key = target.key_of(candidate_uri)
    prefix = run_of(key)  # .staging/<name>/<version>/<run_id>
    if prefix is None:
        raise ValueError(f"Expected a staged candidate URI. Received {candidate_uri!r}.")
    keys = target.list(prefix + "/")
    for item in keys:
        target.delete(item)
    if keys:
        get_run_logger().info("discarded %d staged object(s) under %s", len(keys), target.uri(prefix))
    return len(keys)
