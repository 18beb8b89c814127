"""Publishing: how a validated candidate becomes an immutable, versioned backbone in a store.

The modules, one concept each, in the order a backbone goes through them:

- ``layout``: every object name and key of the store (``manifest.json``, ``latest.json``,
  ``.staging/``, ...); nothing else spells them;
- ``root``: the store root marker (``.kerascut-store.json``), and the refusal of any path that
  is not a store root (:func:`require_store_root`);
- ``versioning``: the version, a content address (:func:`compute_version`);
- ``manifest``: the :class:`Manifest` model and its JSON schema;
- ``staging``: a candidate's files under ``.staging/``, index last (:func:`stage_candidate`);
- ``claim``: one writer per version at a time (the commit lease);
- ``commit``: the commit protocol, artifacts then the manifest (:func:`commit_version`; its
  docstring states the protocol's rules);
- ``pointers``: ``latest.json`` and the named aliases (:func:`read_latest`, :func:`read_alias`,
  :func:`scan_aliases`, :func:`update_latest`, :func:`promote`);
- ``history``: the pointer history, one create-only entry per move (:func:`read_history`);
- ``listing``: reading a store (:func:`read_manifest`, :func:`list_backbones`,
  :func:`scan_versions`, :func:`list_versions`, :func:`verify_version`);
- ``garbage``: :func:`gc`, which removes only what the protocol can leave behind;
- ``retention``: :func:`apply_retention`, the newest N committed versions kept per backbone;
- ``consumer``: :func:`load_backbone`, :func:`pull`, :func:`resolve`, every sha256 checked;
- ``usage``: :func:`load_backbone_with_contract`, the model with its :class:`BackboneContract`
  (channels, strides, the preprocessing function);
- ``card``: :func:`model_card`, the version's ``README.md``, made from its manifest alone;
- ``diff``: :func:`diff` / :func:`diff_manifests`, what changed between two versions and the
  verdict (``diff_parts``: the manifest comparisons; ``diff_models``: weights and numbers).

The pipeline's steps that combine sources, surgery, validation and a store (freshness,
candidate, the validation step, manifest assembly, plan) live one layer up, in
:mod:`kerascut_core.pipeline`. Their names stay importable from here for existing code
(``_MOVED``, resolved on first use); nothing in this package uses them.

Importing this package is cheap: it imports neither boto3, TensorFlow nor Keras (Keras only when
:func:`load_backbone` loads a model).

    >>> from kerascut_core.publishing import commit_version, stage_candidate, update_latest
    >>> from kerascut_core.stores import open_store
    >>> store = open_store("./backbones")                                                  # doctest: +SKIP
    >>> uri = stage_candidate(store, "mnv2", version, {"model.keras": "/tmp/cut.keras"})   # doctest: +SKIP
    >>> commit_version(store, "mnv2", version, uri, manifest)                              # doctest: +SKIP
    >>> update_latest(store, "mnv2", version)                                               # doctest: +SKIP
"""

from __future__ import annotations

from kerascut_core._lazy import lazy_exports
from kerascut_core.publishing.card import model_card
from kerascut_core.publishing.commit import CommitResult, commit_version
from kerascut_core.publishing.consumer import load_backbone, pull, resolve
from kerascut_core.publishing.diff import VersionDiff, diff, diff_manifests
from kerascut_core.publishing.garbage import GcReport, gc
from kerascut_core.publishing.history import HistoryEntry, read_history
from kerascut_core.publishing.layout import (
    CLAIM,
    LATEST,
    MANIFEST,
    MARKER,
    STAGED_INDEX,
    STAGING,
    artifact_format,
)
from kerascut_core.publishing.listing import (
    VersionInfo,
    list_backbones,
    list_versions,
    manifest_uri,
    read_manifest,
    scan_versions,
    verify_version,
)
from kerascut_core.publishing.manifest import Artifact, Manifest
from kerascut_core.publishing.pointers import (
    promote,
    read_alias,
    read_latest,
    scan_aliases,
    update_latest,
)
from kerascut_core.publishing.retention import (
    RetentionReport,
    apply_retention,
    retain_after_publish,
)
from kerascut_core.publishing.root import (
    StoreRootError,
    ensure_store_root,
    is_store_root,
    require_store_root,
)
from kerascut_core.publishing.staging import (
    Discarded,
    discard_candidate,
    new_run_id,
    stage_candidate,
    staged_artifacts,
)
from kerascut_core.publishing.usage import (
    BackboneContract,
    LoadedBackbone,
    load_backbone_with_contract,
)
from kerascut_core.publishing.versioning import backbone_version, compute_version

__all__ = [
    "CLAIM",
    "LATEST",
    "MANIFEST",
    "MARKER",
    "STAGED_INDEX",
    "STAGING",
    "Artifact",
    "BackboneContract",
    "Candidate",
    "CommitResult",
    "Discarded",
    "FetchedSource",
    "Freshness",
    "GcReport",
    "HistoryEntry",
    "LoadedBackbone",
    "Manifest",
    "PublishResult",
    "RetentionReport",
    "StagedCandidate",
    "StoreRootError",
    "VersionDiff",
    "VersionInfo",
    "apply_retention",
    "artifact_format",
    "backbone_version",
    "build_manifest",
    "check_freshness",
    "commit_version",
    "compute_version",
    "cut_candidate",
    "diff",
    "diff_manifests",
    "discard_candidate",
    "ensure_store_root",
    "fetch_source",
    "gc",
    "is_store_root",
    "list_backbones",
    "list_versions",
    "load_backbone",
    "load_backbone_with_contract",
    "manifest_uri",
    "model_card",
    "new_run_id",
    "promote",
    "publish_candidate",
    "pull",
    "read_alias",
    "read_history",
    "read_latest",
    "read_manifest",
    "read_report",
    "require_store_root",
    "resolve",
    "retain_after_publish",
    "scan_aliases",
    "scan_versions",
    "stage_candidate",
    "staged_artifacts",
    "update_latest",
    "validate_staged",
    "verify_version",
    "write_report",
]


#: Pipeline steps of :mod:`kerascut_core.pipeline`, importable from here too for code that does.
_MOVED: dict[str, str] = {
    "Candidate": "kerascut_core.pipeline.candidate",
    "FetchedSource": "kerascut_core.pipeline.candidate",
    "StagedCandidate": "kerascut_core.pipeline.candidate",
    "cut_candidate": "kerascut_core.pipeline.candidate",
    "fetch_source": "kerascut_core.pipeline.candidate",
    "Freshness": "kerascut_core.pipeline.freshness",
    "check_freshness": "kerascut_core.pipeline.freshness",
    "read_report": "kerascut_core.pipeline.reports",
    "validate_staged": "kerascut_core.pipeline.reports",
    "write_report": "kerascut_core.pipeline.reports",
    "PublishResult": "kerascut_core.pipeline.assemble",
    "build_manifest": "kerascut_core.pipeline.assemble",
    "publish_candidate": "kerascut_core.pipeline.assemble",
}

__getattr__, __dir__ = lazy_exports(__name__, _MOVED, globals())
