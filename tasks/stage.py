"""Stage a candidate in the store, read its validation report, discard it.

Candidates live under ``<store>/.staging/<name>/<version>/<run_id>/`` and are never listed as
published. Validation (in-process or on a GPU worker) reads the staged bytes and writes
``report.json`` beside them; whatever happens next, the run's staging directory is removed.
Each task is one call: :func:`kerascut_core.publishing.staging.stage_candidate`,
:func:`kerascut_core.pipeline.reports.read_report`, :func:`kerascut_core.publishing.staging.discard_candidate`.

Example::

    from prefect import flow
    from kerascut.tasks.stage import discard_staged_candidate, stage_candidate_files

    @flow
    def example():
        staged = stage_candidate_files("./backbones", "tiny", "0123abcd0123abcd", "run-1",
                                       {"model.keras": "/tmp/kc/tiny.keras"})
        ...                       # validate the bytes at `staged.uri`
        discard_staged_candidate("./backbones", staged.uri)

    example()
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from kerascut.tasks.common import IO_TASK
from kerascut_core.pipeline.candidate import StagedCandidate
from kerascut_core.pipeline.reports import sibling
from kerascut_core.publishing.layout import REPORT

__all__ = ["REPORT_NAME", "discard_staged_candidate", "read_validation_report", "sibling", "stage_candidate_files"]

REPORT_NAME = REPORT


@task(name="stage-candidate", task_run_name="stage-{name}", timeout_seconds=3600, **IO_TASK)
def stage_candidate_files(store: str, name: str, version: str, run_id: str, files: dict[str, str]) -> StagedCandidate:
    """Upload the candidate's files (``{"model.keras": path, ...}``); return the
    :class:`~kerascut_core.pipeline.candidate.StagedCandidate` (``uri``: its ``model.keras`` under staging)."""
    from kerascut_core.publishing.staging import stage_candidate
    from kerascut_core.stores import open_store

    uri = stage_candidate(open_store(store), name, version, files, run_id=run_id)
    get_run_logger().info("%s: staged %d file(s) at %s", name, len(files), uri)
    return StagedCandidate(name=name, version=version, run_id=run_id, uri=uri)


@task(name="read-report", timeout_seconds=300, **IO_TASK)
def read_validation_report(candidate_uri: str) -> dict[str, Any] | None:
    """The ``report.json`` validation left beside ``candidate_uri``, or ``None``."""
    from kerascut_core.pipeline.reports import read_report

    return read_report(candidate_uri)


@task(name="discard-candidate", timeout_seconds=600, **IO_TASK)
def discard_staged_candidate(store: str, candidate_uri: str) -> int:
    """Delete the candidate's staging directory (its run); return how many objects went."""
    from kerascut_core.publishing.staging import discard_candidate

    discarded = discard_candidate(store, candidate_uri)
    if discarded.objects:
        get_run_logger().info("discarded %d staged object(s) under %s", discarded.objects, discarded.run_uri)
    return discarded.objects
