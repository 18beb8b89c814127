"""kerascut_core: cut pretrained Keras models into validated, versioned backbones.

Importing this package is cheap: TensorFlow and Keras are imported only by the modules that
need them, and only when their functions are called. Public names are resolved lazily.

    >>> import kerascut_core as kc
    >>> model = kc.load_model("keras.applications/MobileNetV2", weights="none")  # doctest: +SKIP
    >>> kc.cut_points(model)[:3]                                                  # doctest: +SKIP
    >>> backbone = kc.cut(model, start="block_3_expand_relu", end="block_13_expand_relu")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kerascut_core._lazy import lazy_exports
from kerascut_core._version import __version__
from kerascut_core.errors import (
    ConfigError,
    CutError,
    DeviceError,
    IntegrityError,
    KerascutError,
    ObjectExistsError,
    ObjectNotFoundError,
    PreconditionFailedError,
    PublishRefusedError,
    SourceError,
    StoreError,
    ValidationError,
)
from kerascut_core.sources import fetch, fingerprint, resolve_local
from kerascut_core.surgery.spec import CutSpec

if TYPE_CHECKING:  # the lazy names below, for type checkers and IDEs (tests/test_lazy_names.py)
    from kerascut_core.publishing.commit import commit_version
    from kerascut_core.publishing.consumer import load_backbone, pull
    from kerascut_core.publishing.diff import VersionDiff, diff
    from kerascut_core.publishing.garbage import gc
    from kerascut_core.publishing.listing import list_versions
    from kerascut_core.publishing.manifest import Manifest
    from kerascut_core.publishing.pointers import promote, update_latest
    from kerascut_core.publishing.staging import stage_candidate
    from kerascut_core.publishing.usage import BackboneContract, load_backbone_with_contract
    from kerascut_core.publishing.versioning import backbone_version, compute_version
    from kerascut_core.sources.imports import import_modules
    from kerascut_core.sources.load import load_model
    from kerascut_core.stores.registry import open_store
    from kerascut_core.surgery.dominators import cut_points
    from kerascut_core.surgery.feature_pyramid import pyramid
    from kerascut_core.surgery.graph import graph_view
    from kerascut_core.surgery.plan import CutPlan, plan_cut
    from kerascut_core.surgery.rebuild import cut
    from kerascut_core.surgery.view import GraphView
    from kerascut_core.validation.report import ValidationReport
    from kerascut_core.validation.run import validate

# ``fingerprint``, ``fetch`` and ``resolve_local`` are imported here (kerascut_core.sources is
# cheap: no boto3, TensorFlow or Keras at import). No module is named like them (they live in
# ``sources/fingerprints.py`` and ``sources/fetching.py``), so ``kerascut_core.fingerprint`` is
# the function whatever is imported first.

# public name -> module that defines it (imported on first access)
_LAZY: dict[str, str] = {
    # graph view and surgery
    "GraphView": "kerascut_core.surgery.view",
    "graph_view": "kerascut_core.surgery.graph",
    "CutPlan": "kerascut_core.surgery.plan",
    "plan_cut": "kerascut_core.surgery.plan",
    "cut": "kerascut_core.surgery.rebuild",
    "cut_points": "kerascut_core.surgery.dominators",
    "pyramid": "kerascut_core.surgery.feature_pyramid",
    # sources
    "load_model": "kerascut_core.sources.load",
    "import_modules": "kerascut_core.sources.imports",
    # stores, versions, manifests, consumers
    "open_store": "kerascut_core.stores.registry",
    "Manifest": "kerascut_core.publishing.manifest",
    "compute_version": "kerascut_core.publishing.versioning",
    "backbone_version": "kerascut_core.publishing.versioning",
    "stage_candidate": "kerascut_core.publishing.staging",
    "commit_version": "kerascut_core.publishing.commit",
    "update_latest": "kerascut_core.publishing.pointers",
    "promote": "kerascut_core.publishing.pointers",
    "list_versions": "kerascut_core.publishing.listing",
    "gc": "kerascut_core.publishing.garbage",
    "load_backbone": "kerascut_core.publishing.consumer",
    "load_backbone_with_contract": "kerascut_core.publishing.usage",
    "BackboneContract": "kerascut_core.publishing.usage",
    "pull": "kerascut_core.publishing.consumer",
    "diff": "kerascut_core.publishing.diff",
    "VersionDiff": "kerascut_core.publishing.diff",
    # validation
    "validate": "kerascut_core.validation.run",
    "ValidationReport": "kerascut_core.validation.report",
}

__all__ = [
    "BackboneContract",
    "ConfigError",
    "CutError",
    "CutPlan",
    "CutSpec",
    "DeviceError",
    "GraphView",
    "IntegrityError",
    "KerascutError",
    "Manifest",
    "ObjectExistsError",
    "ObjectNotFoundError",
    "PreconditionFailedError",
    "PublishRefusedError",
    "SourceError",
    "StoreError",
    "ValidationError",
    "ValidationReport",
    "VersionDiff",
    "__version__",
    "backbone_version",
    "commit_version",
    "compute_version",
    "cut",
    "cut_points",
    "diff",
    "fetch",
    "fingerprint",
    "gc",
    "graph_view",
    "import_modules",
    "list_versions",
    "load_backbone",
    "load_backbone_with_contract",
    "load_model",
    "open_store",
    "plan_cut",
    "promote",
    "pull",
    "pyramid",
    "resolve_local",
    "stage_candidate",
    "update_latest",
    "validate",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
