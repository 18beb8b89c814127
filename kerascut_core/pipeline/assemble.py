"""Publishing a validated candidate: its manifest assembled, then the version committed.

The manifest records the source (URI, fingerprint, weights, ``allow_unsafe``, the sha256 of a
source file), the cut, the candidate's contract (inputs and the tensors they replace, outputs
with their address, channels and stride, the source's preprocessing, warnings) and parameters,
the full validation report, the software (the Keras backend included) and the lineage (the
Prefect flow run: given, or ``PREFECT__FLOW_RUN_ID``, which Prefect sets in a flow run's
process). :func:`publish_candidate` then stages the model card made from that manifest
(:func:`~kerascut_core.publishing.card.stage_card`) with the version's ``changes`` against the
version ``latest`` names (:func:`with_changes`, its "Changes from VERSION" section), and
:func:`~kerascut_core.publishing.commit.commit_version` commits the artifacts and refuses a
report that did not pass, so no code path publishes an unvalidated backbone.

    >>> result = publish_candidate("./backbones", staged_uri, backbone, version, fp, candidate, report)  # doctest: +SKIP
    >>> result.status, result.manifest_uri                                                             # doctest: +SKIP
    ('published', './backbones/tiny/.../manifest.json')
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from kerascut_core.config import BackboneConfig
from kerascut_core.pipeline.candidate import Candidate
from kerascut_core.publishing.card import stage_card
from kerascut_core.publishing.commit import as_manifest, commit_version
from kerascut_core.publishing.layout import manifest_key
from kerascut_core.publishing.manifest import Changes, Manifest, software_versions
from kerascut_core.stores import Store, open_store

__all__ = ["FLOW_RUN_ENV", "PublishResult", "build_manifest", "publish_candidate", "with_changes"]

#: the variable Prefect sets to the flow run's id in a flow run's process
FLOW_RUN_ENV = "PREFECT__FLOW_RUN_ID"


class PublishResult(BaseModel):
    """What publishing did: ``status="published"``, or ``"exists"`` when another run published
    the same version first (this run wrote nothing)."""

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    status: Literal["published", "exists"]
    manifest_uri: str


def build_manifest(
    backbone: BackboneConfig | Mapping[str, Any],
    version: str,
    fingerprint: str,
    candidate: Candidate | Mapping[str, Any],
    report: Mapping[str, Any],
    *,
    flow_run_id: str | None = None,
) -> Manifest:
    """The manifest of ``version`` of ``backbone`` (its artifacts are left to the publish, which
    takes them from the staged candidate); :class:`PublishRefusedError` names an invalid field.
    ``flow_run_id`` defaults to ``PREFECT__FLOW_RUN_ID`` (Prefect is never imported)."""
    spec = BackboneConfig.model_validate(backbone)
    cut = Candidate.model_validate(candidate)
    options = spec.source_options()
    run = flow_run_id or os.environ.get(FLOW_RUN_ENV) or None
    return as_manifest(
        {
            "name": spec.name,
            "version": version,
            "source": {
                "uri": spec.source,
                "fingerprint": fingerprint,
                "weights": options.get("weights"),
                "allow_unsafe": spec.allow_unsafe,
                "imports": list(cut.imports) or None,
                "sha256": cut.source_sha256,
            },
            "cut": spec.cut_spec().to_dict(),
            "inputs": [t.model_dump() for t in cut.inputs],
            "outputs": [t.model_dump() for t in cut.outputs],
            "params": cut.params.model_dump(),
            "validation": dict(report),
            "software": software_versions(cut.keras_backend).model_dump(),
            "preprocessing": cut.preprocessing.model_dump() if cut.preprocessing is not None else None,
            "warnings": list(cut.warnings),
            "lineage": {"flow_run_id": run},
        }
    )


def with_changes(store: Store, manifest: Manifest) -> Manifest:
    """``manifest`` with its ``changes`` against the version ``latest`` names now (none when
    nothing is published yet, when latest names this version, or when its manifest cannot be
    read: a change record is never worth failing a publish)."""
    from kerascut_core.errors import KerascutError
    from kerascut_core.publishing.diff import diff_manifests
    from kerascut_core.publishing.listing import read_manifest
    from kerascut_core.publishing.pointer_files import read_latest

    try:
        previous = read_latest(store, manifest.name)
        if previous is None or previous == manifest.version:
            return manifest
        changes = diff_manifests(read_manifest(store, manifest.name, previous), manifest).changes()
    except KerascutError:
        return manifest
    return manifest.model_copy(update={"changes": Changes.model_validate(changes)})


def publish_candidate(
    store: Store | str,
    candidate_uri: str,
    backbone: BackboneConfig | Mapping[str, Any],
    version: str,
    fingerprint: str,
    candidate: Candidate | Mapping[str, Any],
    report: Mapping[str, Any],
    *,
    flow_run_id: str | None = None,
) -> PublishResult:
    """Commit ``version`` from the staged candidate at ``candidate_uri``: the manifest built by
    :func:`build_manifest`, the model card made from it staged beside the candidate, then the
    artifacts (the card among them) and the manifest committed."""
    spec = BackboneConfig.model_validate(backbone)
    target = open_store(store) if isinstance(store, str) else store
    manifest = build_manifest(spec, version, fingerprint, candidate, report, flow_run_id=flow_run_id)
    manifest = stage_card(target, candidate_uri, with_changes(target, manifest))
    result = commit_version(target, spec.name, version, candidate_uri, manifest)
    return PublishResult(
        name=spec.name,
        version=version,
        status="published" if result.committed else "exists",
        manifest_uri=target.uri(manifest_key(spec.name, version)),
    )
