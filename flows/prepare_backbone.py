"""``prepare-backbone``: fetch, cut, stage, validate and publish one stale backbone.

Nothing is half-published: the candidate is staged under ``.staging/``, validated from its
bytes (in-process, or on the ``validation.deployment`` GPU pool), and only a passing candidate
is committed (artifacts, then ``manifest.json``) before ``latest.json`` moves. Staging is
cleaned whatever happens. After a publish, the backbone's retention (``retention.keep_last``)
is applied; a failure to apply it is logged and reported, never fails the run. A run that
fails (a failed validation included) emits ``kerascut.backbone.failed``
(:mod:`kerascut_core.events`), then fails as before.

Example::

    from kerascut.flows.prepare_backbone import prepare_backbone

    prepare_backbone(
        backbone={"name": "tiny", "source": "keras.applications/MobileNetV2",
                  "weights": "none", "input_shape": [32, 32, 3], "end": "block_3_expand_relu"},
        store="./backbones",
        version="<from check_backbone_freshness>",
        fingerprint="<from check_backbone_freshness>",
    )
"""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_link_artifact
from prefect.runtime import flow_run

from kerascut.flows._progress import emit
from kerascut.flows.validate_backbone import CandidateRejected, summarize, validate_backbone
from kerascut.tasks.aws import aws_credentials
from kerascut.tasks.common import artifact_key
from kerascut.tasks.cut import cut_backbone
from kerascut.tasks.fetch import fetch_backbone_source
from kerascut.tasks.publish import move_latest_pointer, publish_version
from kerascut.tasks.retention import apply_retention
from kerascut.tasks.stage import (
    discard_staged_candidate,
    read_validation_report,
    stage_candidate_files,
)
from kerascut_core import events
from kerascut_core.config import BackboneConfig, RetentionSettings, ValidationSettings
from kerascut_core.durations import format_duration
from kerascut_core.errors import KerascutError
from kerascut_core.pipeline_names import PREPARE_FLOW
from kerascut_core.publishing.listing import manifest_uri
from kerascut_core.sources.imports import import_modules
from kerascut_core.text import one_line

__all__ = ["artifact_key", "prepare_backbone"]

# How often prepare-backbone looks at a validation run on another pool (how long it waits is
# the config's validation.timeout).
VALIDATION_POLL_INTERVAL_S = 2.0


@flow(
    name=PREPARE_FLOW,
    flow_run_name="prepare-{backbone[name]}",
    description="Fetch, cut, stage, validate and publish one backbone.",
    persist_result=False,
)
def prepare_backbone(
    backbone: dict[str, Any],
    store: str,
    version: str,
    fingerprint: str,
    validation: dict[str, Any] | None = None,
    cache_dir: str | None = None,
    aws_credentials_block: str | None = None,
    already_published: bool = False,
    imports: list[str] | None = None,
    import_paths: list[str] | None = None,
    retention: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Publish ``version`` of ``backbone`` to ``store``; return ``{"name", "version", "status",
    "manifest_uri", "max_abs_diff", "retention"}`` (``retention``: ``None``, or the versions it
    removed and its ``error``).

    ``validation`` and ``retention`` hold the config's top-level settings; the backbone's
    overrides are applied here. With ``already_published`` (``--force`` on a published version)
    the candidate is rebuilt and validated, but the immutable published version is left as it is.
    """
    # kerascut.backbone.failed for any error of the run, the config's imports and parameters included
    # (the refresh and its fan-out count on a FAILED prepare having announced itself), then the error.
    with _failure_announced(store, _name_of(backbone), version):
        import_modules(imports, search=import_paths or ())  # the config's: before any model loads
        spec = BackboneConfig.model_validate(backbone)
        settings = spec.resolved_validation(ValidationSettings.model_validate(validation or {}))
        keep_last = spec.resolved_retention(RetentionSettings.model_validate(retention or {})).keep_last
        logger = get_run_logger()
        run_id = flow_run.get_id() or uuid.uuid4().hex
        name = spec.name
        payload = spec.model_dump(mode="json")

        with (
            aws_credentials(aws_credentials_block),
            tempfile.TemporaryDirectory(prefix="kerascut-") as workdir,
        ):
            emit(name, "fetching", version=version)
            fetched = fetch_backbone_source(payload, cache_dir)
            emit(name, "cutting", version=version)
            candidate = cut_backbone(payload, fetched, workdir, imports=imports or None)
            for warning in candidate.warnings:  # `kerascut run` prints each as one warning: line
                emit(name, "warning", message=warning)
            emit(name, "staging", version=version)
            staged = stage_candidate_files(store, name, version, str(run_id), candidate.files)
            try:
                emit(name, "validating", version=version, where=settings.deployment or "in-process")
                report = _validate(staged.uri, payload, settings, cache_dir, aws_credentials_block,
                                   imports=imports, import_paths=import_paths)
                if already_published:
                    status, published_uri = "verified", manifest_uri(store, name, version)
                    logger.info("%s %s is already published; revalidated it", name, version)
                else:
                    emit(name, "publishing", version=version)
                    published = publish_version(
                        store, staged.uri, payload, version, fingerprint, candidate, report
                    )
                    published_uri = published.manifest_uri
                    # "exists": a concurrent run published this very version first; we did not.
                    status = "published" if published.status == "published" else "up-to-date"
                moved = move_latest_pointer(store, name, version, str(run_id))
                message = ""
                if moved.get("status") == "held":  # committed; latest stays for its consumers (not a failure)
                    status, message = "held", str(moved.get("reason") or "")
                retained = None
                if status in ("published", "held") and keep_last is not None:  # never fails the publish
                    emit(name, "retention", version=version, keep_last=keep_last)
                    applied = apply_retention(store, name, keep_last, return_state=True)
                    if applied.is_completed():
                        kept = applied.result()
                        retained = {"removed_versions": kept.removed_versions, "error": kept.error}
                    else:  # the task itself failed (a timeout): still only reported
                        retained = {"removed_versions": [], "error": f"Retention was not applied: {applied.message}"}
                        logger.warning("%s: %s", name, retained["error"])
            finally:
                # Cleaning staging must not hide the real outcome; gc removes what is left.
                cleaned = discard_staged_candidate(store, staged.uri, return_state=True)
                if not cleaned.is_completed():
                    logger.warning("%s: could not clean %s: %s", name, staged.uri, cleaned.message)

        create_link_artifact(
            key=artifact_key(name),
            link=published_uri,
            link_text=f"{name} {version} manifest",
            description=f"Manifest of backbone `{name}` version `{version}` ({status}).",
        )
        return {
            "name": name,
            "version": version,
            "status": status,
            "manifest_uri": published_uri,
            "max_abs_diff": report.get("max_abs_diff"),
            "retention": retained,
            "message": message,
            "changes": changes_line(store, name, version) if status in ("published", "held") else "",
        }


@contextlib.contextmanager
def _failure_announced(store: str, name: str, version: str) -> Iterator[None]:
    """Emit ``kerascut.backbone.failed`` for an error of this run (a failed validation included),
    then let it go on."""
    try:
        yield
    except Exception as exc:
        events.backbone_failed(store, name, version=version, reason=failure_message(exc))
        raise


def changes_line(store: str, name: str, version: str) -> str:
    """What the version changed against the version latest named when it was published (its
    manifest's ``changes``), as one line for the refresh's table; ``""`` when nothing is known."""
    from kerascut_core.errors import KerascutError
    from kerascut_core.publishing.listing import read_manifest
    from kerascut_core.stores import open_store

    try:
        changes = read_manifest(open_store(store), name, version).changes
    except KerascutError:
        return ""
    if changes is None:
        return ""
    return f"{changes.verdict} against {changes.from_version}: " + "; ".join(changes.reasons)


def _name_of(backbone: Any) -> str:
    """The backbone's name before its parameters are validated (they may not be)."""
    name = backbone.get("name") if isinstance(backbone, dict) else None
    return name if isinstance(name, str) and name else "<unnamed>"


def failure_message(exc: BaseException) -> str:
    """The one-line reason of a failure: the refresh's row and the ``kerascut.backbone.failed``
    event give the same text (a kerascut error's message, any other prefixed with its type)."""
    return one_line(exc, None) or type(exc).__name__


def _validate(
    candidate_uri: str,
    backbone: dict[str, Any],
    settings: ValidationSettings,
    cache_dir: str | None,
    aws_credentials_block: str | None,
    *,
    imports: list[str] | None = None,
    import_paths: list[str] | None = None,
) -> dict[str, Any]:
    """Run ``validate-backbone`` here or on its deployment; return its report or raise.

    The config's ``imports`` travel as parameters (only when there are any, so a deployment of
    an older flow still accepts the run); the validate flow imports them first, on its worker.
    """
    parameters: dict[str, Any] = {
        "candidate_uri": candidate_uri,
        "backbone": backbone,
        "validation": settings.model_dump(mode="json"),
        "cache_dir": cache_dir,
        "aws_credentials_block": aws_credentials_block,
    }
    if imports:
        parameters["imports"] = list(imports)
        parameters["import_paths"] = list(import_paths or [])
    if settings.deployment:
        from prefect.deployments import run_deployment

        run = run_deployment(
            name=settings.deployment,
            parameters=parameters,
            timeout=settings.timeout,
            poll_interval=VALIDATION_POLL_INTERVAL_S,
            as_subflow=True,
        )
        state = run.state
        where = f"deployment {settings.deployment!r} (flow run {run.name})"
    else:
        state = validate_backbone(**parameters, return_state=True)
        where = "in-process"

    # The report travels through the store, so it is the same for both paths.
    report = read_validation_report(candidate_uri)
    if state is None or not state.is_completed():
        message = (state.message if state is not None else None) or "no final state"
        if report is not None and not report.get("passed"):
            raise CandidateRejected(
                f"Candidate {backbone['name']!r} failed validation {where}: {summarize(report)}. "
                "It was not published."
            )
        if state is not None and not state.is_final():  # run_deployment gave up waiting
            raise KerascutError(
                f"Validation of {backbone['name']!r} did not finish {where} within validation.timeout="
                f"{format_duration(settings.timeout)} (it is {state.type.value}); raise validation.timeout, "
                "or check that a worker serves the deployment's pool."
            )
        raise KerascutError(
            f"Validation of {backbone['name']!r} did not finish {where}: "
            f"{state.type.value if state is not None else 'unknown'}: {message}"
        )
    if report is None or not report.get("passed"):
        raise CandidateRejected(
            f"Validation of {backbone['name']!r} {where} left no passing report next to "
            f"{candidate_uri}. It was not published."
        )
    return report

