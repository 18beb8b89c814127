"""Check whether a backbone's current version is already published, without downloading it.

Wraps :func:`kerascut_core.pipeline.freshness.check_freshness`: it fingerprints the source (a HEAD
request for S3, a hash for local files, the architecture and weights identity for
``keras.applications``), derives the version exactly as it is published
(:func:`kerascut_core.backbone_version`) and looks for that version's manifest. TensorFlow is
not imported.

Example::

    from prefect import flow
    from kerascut.tasks.freshness import check_backbone_freshness

    @flow
    def example():
        backbone = {"name": "tiny", "source": "keras.applications/MobileNetV2",
                    "weights": "none", "input_shape": [32, 32, 3], "end": "block_3_expand_relu"}
        return check_backbone_freshness(backbone, store="./backbones")

    example()   # Freshness(name="tiny", version="...", up_to_date=False, ...)
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task

from kerascut.tasks.common import IO_TASK
from kerascut_core.pipeline.freshness import Freshness

__all__ = ["check_backbone_freshness"]


@task(name="check-freshness", task_run_name="check-freshness-{backbone[name]}", timeout_seconds=120, **IO_TASK)
def check_backbone_freshness(backbone: dict[str, Any], store: str, force: bool = False) -> Freshness:
    """Fingerprint the source and tell whether its version is published and ``latest``.

    Returns a :class:`~kerascut_core.pipeline.freshness.Freshness` (``name``, ``version``,
    ``fingerprint``, ``published``, ``latest``, ``up_to_date``, ``manifest_uri``);
    ``up_to_date`` is ``published and not force``.
    """
    from kerascut_core.pipeline.freshness import check_freshness

    result = check_freshness(backbone, store, force=force)
    get_run_logger().info(
        "%s: source %s fingerprint %s -> version %s (%s)",
        result.name, backbone["source"], result.fingerprint[:16], result.version,
        "published" if result.published else "not published yet",
    )
    return result
