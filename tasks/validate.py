"""Validate a staged candidate from its bytes and leave the report beside it in the store.

Wraps :func:`kerascut_core.validation.validate`: it reloads the candidate from its URI, probes
the source once (rebuilt from its URI and options, so a GPU worker needs nothing but the
store and the source), compares, and returns the report as a JSON-ready dict. The report is
also written to ``report.json`` next to the candidate and shown as a markdown artifact
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

import json
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from kerascut.tasks._common import COMPUTE_TASK, KERAS_LOCK, artifact_key
from kerascut.tasks.stage import REPORT_NAME, sibling
from kerascut_core.config import BackboneConfig, ValidationSettings

__all__ = ["validate_candidate"]


@task(name="validate", task_run_name="validate-{backbone[name]}", timeout_seconds=3600, **COMPUTE_TASK)
def validate_candidate(
    candidate_uri: str,
    backbone: dict[str, Any],
    validation: dict[str, Any],
    cache_dir: str | None = None,
) -> dict[str, Any]:
    """Validate ``candidate_uri``; write ``report.json`` beside it; return the report dict."""
    with KERAS_LOCK:
        return _validate(candidate_uri, backbone, validation, cache_dir)


def _validate(
    candidate_uri: str, backbone: dict[str, Any], validation: dict[str, Any], cache_dir: str | None
) -> dict[str, Any]:
    import keras

    from kerascut_core.sources import resolve_local
    from kerascut_core.stores import open_store
    from kerascut_core.validation import validate

    spec = BackboneConfig.model_validate(backbone)
    settings = ValidationSettings.model_validate(validation)
    logger = get_run_logger()
    # The worker fetches the source itself (through its own download cache), so a GPU worker
    # needs nothing but access to the store and the source.
    source, options = resolve_local(spec.source, cache_dir=cache_dir, **spec.source_options())
    report = validate(
        candidate_uri,
        source,
        spec.cut_spec(),
        samples=settings.samples,
        batch_size=settings.batch_size,
        atol=settings.atol,
        rtol=settings.rtol,
        seed=settings.seed,
        require_gpu=settings.require_gpu,
        data=settings.data,
        formats=tuple(spec.formats),
        source_options=options,
        allow_unsafe=spec.allow_unsafe,
    )
    keras.backend.clear_session()
    data = report.model_dump(mode="json")
    directory, name = sibling(candidate_uri, REPORT_NAME)
    open_store(directory).put_bytes(
        name, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(), overwrite=True
    )
    create_markdown_artifact(
        key=f"{artifact_key(spec.name)}-validation",
        markdown=report.to_markdown(),
        description=f"Validation of {spec.name} ({'passed' if report.passed else 'FAILED'})",
    )
    logger.info(
        "%s: validation %s, max abs diff %s on %s",
        spec.name, "passed" if report.passed else "FAILED", report.max_abs_diff,
        report.device.name if report.device else "?",
    )
    return data
