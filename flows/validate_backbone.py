"""``validate-backbone``: prove that a staged candidate computes what its source computed.

Its own flow so that it can run on a GPU work pool (``validation.deployment``, e.g.
``validate-backbone/gpu``) while the refresh runs on CPU. It reloads the candidate from the
staged bytes, probes the source once, compares, writes ``report.json`` next to the candidate
in the store (the store is the only state the CPU and GPU workers share) and shows the report
as a markdown artifact. It fails when the candidate does not pass, so the UI shows it red.

Example (in-process, with a candidate staged by ``prepare-backbone``)::

    from kerascut.flows.validate_backbone import validate_backbone

    report = validate_backbone(
        candidate_uri="./backbones/.staging/tiny/<version>/<run>/model.keras",
        backbone={"name": "tiny", "source": "keras.applications/MobileNetV2",
                  "weights": "none", "input_shape": [32, 32, 3], "end": "block_3_expand_relu"},
        validation={"samples": 4, "atol": 0.0},
    )
    report["passed"], report["max_abs_diff"]
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from kerascut.tasks.aws import aws_credentials
from kerascut.tasks.validate import validate_candidate
from kerascut_core.config import BackboneConfig, ValidationSettings
from kerascut_core.errors import KerascutError
from kerascut_core.pipeline_names import VALIDATE_FLOW
from kerascut_core.sources.imports import import_modules
from kerascut_core.text import one_line

__all__ = ["CandidateRejected", "validate_backbone"]


class CandidateRejected(KerascutError):
    """The candidate ran through validation and did not compute what the source computed."""


@flow(
    name=VALIDATE_FLOW,
    flow_run_name="validate-{backbone[name]}",
    description="Reload a staged candidate from its bytes and compare it with its source.",
    persist_result=False,
)
def validate_backbone(
    candidate_uri: str,
    backbone: dict[str, Any],
    validation: dict[str, Any] | None = None,
    cache_dir: str | None = None,
    aws_credentials_block: str | None = None,
    imports: list[str] | None = None,
    import_paths: list[str] | None = None,
) -> dict[str, Any]:
    """Validate ``candidate_uri`` against ``backbone``'s source; return the report as a dict.

    ``validation`` is a :class:`~kerascut_core.config.ValidationSettings` dict (already merged
    with the backbone's overrides). ``imports`` (the config's) are imported first, looked for on
    this worker's PYTHONPATH and in ``import_paths`` (the config file's directory) where they
    exist. Raises :class:`CandidateRejected` when the report fails.
    """
    import_modules(imports, search=import_paths or ())  # before any model loads, on this worker
    spec = BackboneConfig.model_validate(backbone)
    settings = ValidationSettings.model_validate(validation or {})
    with aws_credentials(aws_credentials_block):
        report = validate_candidate(
            candidate_uri, spec.model_dump(mode="json"), settings.model_dump(mode="json"), cache_dir,
            imports=imports or None,
        )
    if not report.get("passed"):
        raise CandidateRejected(
            f"Candidate {spec.name!r} failed validation: {summarize(report)}. It was not published."
        )
    get_run_logger().info("%s passed validation: %s", spec.name, summarize(report))
    return report


def summarize(report: dict[str, Any]) -> str:
    """One line: max abs diff, tolerance and the reason a report failed."""
    parts = [f"max_abs_diff={report.get('max_abs_diff')}"]
    for key in ("atol", "rtol"):
        if report.get(key) is not None:
            parts.append(f"{key}={report[key]}")
    # ValidationReport lists why it failed in ``failures``; a diff of 0.0 can still fail
    # (weights, structure, SavedModel checks), and the user must see which check it was.
    failures = report.get("failures") or []
    reason = report.get("reason") or report.get("failure") or report.get("message")
    if not report.get("passed"):
        if failures:
            shown = "; ".join(one_line(str(f), None) for f in failures[:2])
            more = f" (and {len(failures) - 2} more)" if len(failures) > 2 else ""
            parts.append(f"failed checks: {shown}{more}")
        elif reason:
            parts.append(str(reason))
    return ", ".join(parts)
