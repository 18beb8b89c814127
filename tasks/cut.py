"""Cut a source model and save the candidate to local files.

Wraps :func:`kerascut_core.pipeline.candidate.cut_candidate`: it loads the source (``safe_mode`` unless
the backbone sets ``allow_unsafe``), cuts it with the backbone's cut spec and saves the result
(``model.keras``, ``graph.svg``, ``saved_model/...`` when configured), so the next task can
stage the bytes. It returns the files and a small summary, never the model object.

Example::

    from prefect import flow
    from kerascut.tasks.cut import cut_backbone

    @flow
    def example():
        backbone = {"name": "tiny", "source": "keras.applications/MobileNetV2",
                    "weights": "none", "input_shape": [32, 32, 3],
                    "start": "block_1_expand_relu", "end": "block_3_expand_relu"}
        fetched = {"source": "keras.applications/MobileNetV2",
                   "options": {"weights": "none", "input_shape": [32, 32, 3]}}
        return cut_backbone(backbone, fetched, workdir="/tmp/kc")

    example()   # Candidate(files={"model.keras": "/tmp/kc/model.keras", ...}, inputs=[...], ...)
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from kerascut.tasks.common import COMPUTE_TASK, KERAS_LOCK
from kerascut_core.pipeline.candidate import Candidate, FetchedSource

__all__ = ["cut_backbone"]


@task(name="cut", task_run_name="cut-{backbone[name]}", timeout_seconds=1800, **COMPUTE_TASK)
def cut_backbone(
    backbone: dict[str, Any],
    fetched: FetchedSource | dict[str, Any],
    workdir: str,
    imports: list[str] | None = None,
) -> Candidate:
    """Load the fetched source, cut it as ``backbone`` says and save it under ``workdir``.

    ``imports`` (the config's) are imported first; the candidate records them.

    ``fetched`` is what :func:`kerascut.tasks.fetch.fetch_source` returned. Returns a
    :class:`~kerascut_core.pipeline.candidate.Candidate`: ``files`` (``{"model.keras": path,
    "saved_model/...": path, ...}``), ``bytes``, ``inputs``, ``outputs``, ``params``.
    """
    from kerascut_core.pipeline.candidate import cut_candidate

    logger = get_run_logger()
    name = backbone["name"]
    with KERAS_LOCK:
        candidate = cut_candidate(
            backbone, fetched, workdir,
            on_draw_error=lambda reason: logger.warning("%s: publishing without graph.svg: %s", name, reason),
            imports=imports,
        )
    logger.info(
        "%s: cut kept %s of %s parameters; inputs %s, outputs %s",
        name, candidate.params.kept, candidate.params.total_source,
        [i.shape for i in candidate.inputs], [o.shape for o in candidate.outputs],
    )
    for warning in candidate.warnings:
        logger.warning("%s: %s", name, warning)
    return candidate
