"""Validate a staged candidate from its bytes and leave the report beside it in the store.

Wraps :func:`kerascut_core.pipeline.reports.validate_staged`: it reloads the candidate from its
URI, probes the source once (rebuilt from its URI and options, so a GPU worker needs nothing but the
store and the source), compares, writes ``report.json`` next to the candidate and returns the
report, here as a JSON-ready dict. The report is also shown as a markdown artifact
(``kerascut-<name>-validation``).

Example::

    from prefect import flow
    from kerascut.tasks.validate import validate_candidate

    @flow
    def example():
        backbone = {"name": "tiny", "source": "keras.applications/MobileNetV2",
                    "weights": "none", "input_shape": [32, 32, 3], "end": "block_3_expand_relu"}
        return validate_candidate("./backbones/.staging/tiny/v1/run/model.keras", backbone,
                                  {"samples": 4, "atol": 0.0})

    example()["passed"]
"""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from kerascut.tasks.common import COMPUTE_TASK, KERAS_LOCK, artifact_key
from kerascut_core.errors import DeviceError
from kerascut_core.pipeline_names import GPU_POOL, VALIDATE_DEPLOYMENT

__all__ = ["GPU_HINT", "validate_candidate"]

#: Added to a refused ``require_gpu`` under Prefect: where the GPU workers are.
GPU_HINT = f"With Prefect, that is a worker of the '{GPU_POOL}' work pool (deployment '{VALIDATE_DEPLOYMENT}')."


@task(name="validate", task_run_name="validate-{backbone[name]}", timeout_seconds=3600, **COMPUTE_TASK)
def validate_candidate(
    candidate_uri: str,
    backbone: dict[str, Any],
    validation: dict[str, Any],
    cache_dir: str | None = None,
    imports: list[str] | None = None,
) -> dict[str, Any]:
    """Validate ``candidate_uri``; write ``report.json`` beside it; return the report dict.

    ``imports`` (the config's) are imported before the source and the candidate are loaded."""
    from kerascut_core.pipeline.reports import validate_staged

    name = backbone["name"]
    with KERAS_LOCK:
        try:
            report = validate_staged(candidate_uri, backbone, validation, cache_dir, imports=imports)
        except DeviceError as exc:
            raise DeviceError(f"{exc} {GPU_HINT}") from exc
    create_markdown_artifact(
        key=f"{artifact_key(name)}-validation",
        markdown=report.to_markdown(),
        description=f"Validation of {name} ({'passed' if report.passed else 'FAILED'})",
    )
    get_run_logger().info(
        "%s: validation %s, max abs diff %s on %s",
        name, "passed" if report.passed else "FAILED", report.max_abs_diff,
        report.device.name if report.device else "?",
    )
    return report.model_dump(mode="json")
