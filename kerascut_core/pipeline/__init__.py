"""The pipeline's steps: the one place that combines sources, surgery, validation and a store.

Each step is one function that an orchestrator's task wraps one to one (``kerascut.tasks`` for
Prefect), with the typed records it passes on; everything below this layer knows nothing of a
pipeline:

- ``freshness``: :func:`check_freshness` -> :class:`Freshness`: the version a backbone's config
  and source give now, and whether it is published (no TensorFlow);
- ``candidate``: :func:`fetch_source` -> :class:`FetchedSource`, :func:`cut_candidate` ->
  :class:`Candidate` (the cut saved as files, with its contract); :class:`StagedCandidate`
  once staged in the store;
- ``reports``: :func:`validate_staged` validates a staged candidate from its bytes and leaves
  ``report.json`` beside it; :func:`read_report` reads it back;
- ``assemble``: :func:`build_manifest` and :func:`publish_candidate` -> :class:`PublishResult`
  (the manifest from the candidate, the report and the versions; then the commit);
- ``plan``: :func:`plan_backbones`, what a refresh would publish and why, before it runs.

Importing this package is cheap: names are resolved from their modules on first use.

    >>> from kerascut_core.pipeline import check_freshness, plan_backbones
    >>> fresh = check_freshness(backbone, "s3://team/backbones")   # doctest: +SKIP
    >>> fresh.version, fresh.published                               # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kerascut_core._lazy import lazy_exports

if TYPE_CHECKING:
    from kerascut_core.pipeline.assemble import PublishResult, build_manifest, publish_candidate
    from kerascut_core.pipeline.candidate import (
        Candidate,
        FetchedSource,
        StagedCandidate,
        cut_candidate,
        fetch_source,
    )
    from kerascut_core.pipeline.freshness import Freshness, check_freshness
    from kerascut_core.pipeline.plan import PlanEntry, plan_backbones
    from kerascut_core.pipeline.reports import read_report, validate_staged, write_report

# public name -> module that defines it (imported on first access)
_LAZY: dict[str, str] = {
    "Candidate": "kerascut_core.pipeline.candidate",
    "FetchedSource": "kerascut_core.pipeline.candidate",
    "Freshness": "kerascut_core.pipeline.freshness",
    "PlanEntry": "kerascut_core.pipeline.plan",
    "PublishResult": "kerascut_core.pipeline.assemble",
    "StagedCandidate": "kerascut_core.pipeline.candidate",
    "build_manifest": "kerascut_core.pipeline.assemble",
    "check_freshness": "kerascut_core.pipeline.freshness",
    "cut_candidate": "kerascut_core.pipeline.candidate",
    "fetch_source": "kerascut_core.pipeline.candidate",
    "plan_backbones": "kerascut_core.pipeline.plan",
    "publish_candidate": "kerascut_core.pipeline.assemble",
    "read_report": "kerascut_core.pipeline.reports",
    "validate_staged": "kerascut_core.pipeline.reports",
    "write_report": "kerascut_core.pipeline.reports",
}

__all__ = [
    "Candidate",
    "FetchedSource",
    "Freshness",
    "PlanEntry",
    "PublishResult",
    "StagedCandidate",
    "build_manifest",
    "check_freshness",
    "cut_candidate",
    "fetch_source",
    "plan_backbones",
    "publish_candidate",
    "read_report",
    "validate_staged",
    "write_report",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
