"""Apply a backbone's retention after a publish (``retention: {keep_last: N}`` in the config).

Wraps :func:`kerascut_core.publishing.retain_after_publish`, which never raises: a failure to
apply retention is logged here as a warning and reported in the returned
:class:`~kerascut_core.publishing.RetentionReport` (``error``); it never fails the publish.

Example::

    from prefect import flow
    from kerascut.tasks.retention import apply_retention

    @flow
    def example():
        report = apply_retention("./backbones", "tiny", 5)
        return report.removed_versions
"""

from __future__ import annotations

from prefect import get_run_logger, task

from kerascut.tasks.common import IO_TASK
from kerascut_core.publishing.retention import RetentionReport

__all__ = ["apply_retention"]


@task(name="apply-retention", task_run_name="retention-{name}", timeout_seconds=1800, **IO_TASK)
def apply_retention(store: str, name: str, keep_last: int | None) -> RetentionReport:
    """Remove ``name``'s committed versions beyond the newest ``keep_last`` (none named by a
    pointer); ``keep_last=None`` does nothing. Never fails: see ``RetentionReport.error``."""
    from kerascut_core.publishing.retention import retain_after_publish

    report = retain_after_publish(store, name, keep_last)
    logger = get_run_logger()
    if report.error:
        logger.warning("%s: %s", name, report.error)
    for item in report.skipped:
        logger.warning("%s: retention skipped %s", name, item)
    if report.removed_versions:
        logger.info("%s: retention (keep_last=%s) removed %s", name, keep_last, ", ".join(report.removed_versions))
    return report
