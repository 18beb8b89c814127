"""Publishing a validated candidate: its manifest assembled, then the version committed.

The manifest records the source (URI, fingerprint, weights, ``allow_unsafe``), the cut, the
candidate's inputs, outputs and parameters, and the full validation report;
:func:`~kerascut_core.publishing.commit.commit_version` fills in the artifacts from the staged
candidate and refuses a report that did not pass, so no code path publishes an unvalidated
backbone.

    >>> result = publish_candidate("./backbones", staged_uri, backbone, version, fp, candidate, report)  # doctest: +SKIP
    >>> result.status, result.manifest_uri                                                             # doctest: +SKIP
    ('published', './backbones/tiny/.../manifest.json')
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from kerascut_core.config import BackboneConfig
from kerascut_core.publishing.candidate import Candidate
from kerascut_core.publishing.commit import as_manifest, commit_version
from kerascut_core.publishing.layout import manifest_key
from kerascut_core.publishing.manifest import Manifest
from kerascut_core.stores import Store, open_store

__all__ = ["PublishResult", "build_manifest", "publish_candidate"]


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
) -> Manifest:
    """The manifest of ``version`` of ``backbone`` (its artifacts are left to the commit, which
    takes them from the staged candidate); :class:`PublishRefusedError` names an invalid field."""
    spec = BackboneConfig.model_validate(backbone)
    cut = Candidate.model_validate(candidate)
    options = spec.source_options()
    return as_manifest(
        {
            "name": spec.name,
            "version": version,
            "source": {
                "uri": spec.source,
                "fingerprint": fingerprint,
                "weights": options.get("weights"),
                "allow_unsafe": spec.allow_unsafe,
            },
            "cut": spec.cut_spec().to_dict(),
            "inputs": [t.model_dump() for t in cut.inputs],
            "outputs": [t.model_dump() for t in cut.outputs],
            "params": cut.params.model_dump(),
            "validation": dict(report),
        }
    )


def publish_candidate(
    store: Store | str,
    candidate_uri: str,
    backbone: BackboneConfig | Mapping[str, Any],
    version: str,
    fingerprint: str,
    candidate: Candidate | Mapping[str, Any],
    report: Mapping[str, Any],
) -> PublishResult:
    """Commit ``version`` from the staged candidate at ``candidate_uri`` (artifacts, then the
    manifest built by :func:`build_manifest`)."""
    spec = BackboneConfig.model_validate(backbone)
    target = open_store(store) if isinstance(store, str) else store
    manifest = build_manifest(spec, version, fingerprint, candidate, report)
    result = commit_version(target, spec.name, version, candidate_uri, manifest)
    return PublishResult(
        name=spec.name,
        version=version,
        status="published" if result.committed else "exists",
        manifest_uri=target.uri(manifest_key(spec.name, version)),
    )
