"""Publish a validated candidate (artifacts, then ``manifest.json``) and move ``latest``.

:func:`publish_version` wraps :func:`kerascut_core.pipeline.assemble.publish_candidate` (the
manifest assembled by :func:`~kerascut_core.pipeline.assemble.build_manifest`, then
:func:`~kerascut_core.publishing.commit_version`); :func:`move_latest_pointer` wraps
:func:`kerascut_core.publishing.update_latest`. The manifest records the source, the cut, the
candidate's inputs and outputs, its parameters and the full validation report;
``commit_version`` refuses a report that did not pass, so no code path publishes an
unvalidated backbone.

Example::

    from prefect import flow
    from kerascut.tasks.publish import move_latest_pointer, publish_version

    @flow
    def example(staged, backbone, version, fingerprint, candidate, report):
        published = publish_version("./backbones", staged.uri, backbone, version,
                                    fingerprint, candidate, report)
        move_latest_pointer("./backbones", backbone["name"], version)
        return published.manifest_uri
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from kerascut.tasks.common import IO_TASK
from kerascut_core.pipeline.assemble import PublishResult
from kerascut_core.pipeline.candidate import Candidate

__all__ = ["move_latest_pointer", "publish_version"]


@task(name="publish", task_run_name="publish-{backbone[name]}", timeout_seconds=3600, **IO_TASK)
def publish_version(
    store: str,
    candidate_uri: str,
    backbone: dict[str, Any],
    version: str,
    fingerprint: str,
    cut: Candidate | dict[str, Any],
    report: dict[str, Any],
) -> PublishResult:
    """Commit ``version``; return a :class:`~kerascut_core.pipeline.assemble.PublishResult` whose
    ``status`` is ``"published"``, or ``"exists"`` when another run published the same version
    first. The manifest's lineage records the flow run this task runs in."""
    from prefect.runtime import flow_run

    from kerascut_core.pipeline.assemble import publish_candidate

    result = publish_candidate(
        store, candidate_uri, backbone, version, fingerprint, cut, report, flow_run_id=flow_run.get_id()
    )
    logger = get_run_logger()
    if result.status == "published":
        logger.info("%s: published %s (%s)", result.name, version, result.manifest_uri)
    else:
        logger.info("%s: %s was published by another run meanwhile; nothing written", result.name, version)
    return result


@task(name="update-latest", task_run_name="update-latest-{name}", timeout_seconds=300, **IO_TASK)
def move_latest_pointer(store: str, name: str, version: str, run_id: str | None = None) -> dict[str, Any]:
    """Point ``<name>/latest.json`` at ``version`` (conditional update; a no-op when it does),
    unless a person pinned it or the version breaks a registered consumer of ``latest``: then
    ``latest`` is held where it is (``status="held"``, the consumers and the one-line reason;
    ``kerascut.backbone.held`` is emitted). Wraps
    :func:`kerascut_core.publishing.holding.advance_latest`; returns its
    :class:`~kerascut_core.publishing.holding.LatestUpdate` as a dict whose ``version`` is what
    latest names after.

    ``run_id`` (the Prefect flow run) is recorded in the pointer's history.
    """
    from kerascut_core.publishing.holding import advance_latest
    from kerascut_core.stores import open_store

    update = advance_latest(open_store(store), name, version, run_id=run_id)
    logger = get_run_logger()
    if update.status == "held":
        logger.warning("%s: %s committed, latest held on %s: %s", name, version, update.latest, update.reason)
    else:
        logger.info("%s: latest -> %s (%s)", name, update.latest, update.status)
    return {**update.model_dump(mode="json"), "version": update.latest}
