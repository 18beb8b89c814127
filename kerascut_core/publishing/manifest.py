"""The manifest: what a published backbone is, where it came from and how it was checked.

``<store>/<name>/<version>/manifest.json`` is written last; its presence commits the version.
Its JSON schema is exported to ``kerascut_core/schemas/manifest.schema.json`` so consumers in
other languages can rely on it (``python -m kerascut_core.publishing.manifest`` regenerates it).

Schema version 2 (kerascut 0.1) adds what a consumer needs to use the backbone: per output its
``address``, ``channels`` and ``stride``; per input the source tensor it ``replaces``; the
source's ``preprocessing`` (and which in-graph preprocessing layers the cut keeps); ``warnings``;
``source.sha256``, ``software.keras_backend`` and ``lineage.flow_run_id``; for a pyramid found
from the graph (``end: auto-pyramid``), ``cut.levels`` and per output its ``pyramid`` tap (level,
stride, exact or nominal); and ``changes``: what the version changed against the version
``latest`` named when it was published. Every new field is optional, so a version 1 manifest
reads as it is (its new fields are ``None`` or empty).

    >>> m = Manifest.model_validate_json(Path("manifest.json").read_text())  # doctest: +SKIP
    >>> m.artifacts[0].sha256                                                 # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

__all__ = [
    "SCHEMA_PATH",
    "SCHEMA_VERSION",
    "Artifact",
    "Changes",
    "CutInfo",
    "InGraphLayer",
    "InputInfo",
    "Lineage",
    "Manifest",
    "OutputInfo",
    "Params",
    "Preprocessing",
    "PyramidTap",
    "Software",
    "SourceInfo",
    "TensorInfo",
    "ValidationSummary",
    "export_schema",
    "keras_backend",
    "software_versions",
]

SCHEMA_VERSION = 2
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "manifest.schema.json"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Optional(_Strict):
    """A model whose ``_OMITTED_WHEN_NONE`` fields are left out of its dump when they are ``None``:
    a manifest without a pyramid reads as it did, also to a reader that predates the field."""

    _OMITTED_WHEN_NONE: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _omit_none(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for name in self._OMITTED_WHEN_NONE:
                if data.get(name, 0) is None:
                    del data[name]
        return data


_SHA256 = r"^[0-9a-f]{64}$"


class SourceInfo(_Strict):
    """The source as fetched: ``uri``, its ``fingerprint``, the ``weights`` used, ``allow_unsafe``
    and (v2) the ``sha256`` of its bytes when it is a file that was fetched or read."""

    uri: str
    fingerprint: str
    weights: str | None = None
    allow_unsafe: bool = False
    imports: list[str] | None = Field(
        default=None,
        description=(
            "the modules imported before the source was loaded (config `imports:`, `--import`): "
            "those whose register_keras_serializable classes it uses; a consumer imports them too"
        ),
    )
    sha256: str | None = Field(default=None, pattern=_SHA256)


class CutInfo(_Optional):
    """The cut spec (see :class:`kerascut_core.CutSpec`)."""

    _OMITTED_WHEN_NONE = ("levels",)

    start: str | list[str] | None = None
    end: str | list[str] | dict[str, str] | None = None
    drop_first: int | None = None
    extra_inputs: Literal["error", "auto"] = "error"
    levels: list[int] | None = Field(default=None, description='the levels of end "auto-pyramid"')


class PyramidTap(_Strict):
    """What ``end: auto-pyramid`` found of an output: ``level`` k (``stride`` 2^k), whether the
    stride is ``exact`` or nominal (``valid`` padding), and the ``reduction`` measured."""

    rule: Literal["auto-pyramid"] = "auto-pyramid"
    level: int = Field(ge=0)
    stride: int = Field(ge=1)
    exact: bool
    reduction: float | None = None


class TensorInfo(_Strict):
    """An input or output of the backbone; ``None`` in ``shape`` is a free (batch) dimension."""

    name: str
    shape: list[int | None]
    dtype: str


class InputInfo(TensorInfo):
    """An input of the backbone; (v2) ``replaces`` is the graph-view address of the source tensor
    it stands for (the source's own input when the cut keeps it)."""

    replaces: str | None = None


class OutputInfo(TensorInfo, _Optional):
    """An output of the backbone; (v2) its graph-view ``address`` in the source, its ``channels``
    (the last axis for ``channels_last``) and its ``stride``: source-input pixels per output pixel
    along each spatial axis, ``None`` where the static shapes do not tell (see
    :func:`kerascut_core.surgery.contract.stride`)."""

    _OMITTED_WHEN_NONE = ("pyramid",)

    address: str | None = None
    channels: int | None = None
    stride: list[int | None] | None = None
    pyramid: PyramidTap | None = None


class InGraphLayer(_Strict):
    """A ``Rescaling`` / ``Normalization`` layer of the source before the cut's start (dropped) or
    in the cut (kept)."""

    address: str
    type: str
    kept: bool


class Preprocessing(_Strict):
    """How raw images become the source's inputs (v2); see :mod:`kerascut_core.sources.preprocessing`.

    ``function`` is the dotted name of the function to apply (``keras.applications.resnet.preprocess_input``),
    ``None`` when the graph does it or nothing is known. ``applies_to_inputs`` is whether the
    backbone's inputs are the source's (raw-image preprocessing applies to them) or tensors
    from inside it.
    """

    mode: Literal["caffe", "tf", "torch", "in_graph", "scale_offset", "unknown"] = "unknown"
    function: str | None = None
    scale: float | list[float] | None = None
    offset: float | list[float] | None = None
    layers: list[InGraphLayer] = Field(default_factory=list)
    applies_to_inputs: bool = True
    data_format: Literal["channels_last", "channels_first"] = "channels_last"
    note: str | None = None

    @property
    def dropped(self) -> list[InGraphLayer]:
        """The in-graph preprocessing layers the cut dropped."""
        return [layer for layer in self.layers if not layer.kept]


class Lineage(_Strict):
    """Where the backbone was made (v2): the Prefect flow run that published it, if any."""

    flow_run_id: str | None = None


class Changes(_Strict):
    """What this version changed against the version ``latest`` named when it was published
    (``from_version``): the verdict (``identical``, ``compatible``, ``breaking``) and one line
    per change of the interface, the preprocessing, the weights and the lineage, from the two
    manifests (see :func:`kerascut_core.publishing.diff.diff_manifests`)."""

    from_version: str
    verdict: Literal["identical", "compatible", "breaking"]
    reasons: list[str] = Field(default_factory=list)
    interface: list[str] = Field(default_factory=list)
    preprocessing: list[str] = Field(default_factory=list)
    weights: str | None = None
    lineage: list[str] = Field(default_factory=list)


class Params(_Strict):
    """Parameter counts of the source and of what the cut kept."""

    total_source: int = Field(ge=0)
    kept: int = Field(ge=0)


class Artifact(_Strict):
    """A file of the version, relative to ``<name>/<version>/``."""

    path: str
    format: str
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=_SHA256)


class ValidationSummary(BaseModel):
    """The validation report (``ValidationReport.model_dump(mode="json")``); extra fields are kept."""

    model_config = ConfigDict(extra="allow")

    passed: bool
    max_abs_diff: float | None = None


class Software(_Strict):
    """Versions of what produced the backbone."""

    kerascut: str
    keras: str | None = None
    tensorflow: str | None = None
    python: str
    keras_backend: str | None = None


class Manifest(_Strict):
    """The manifest of one published version (``manifest.json``)."""

    schema_version: int = SCHEMA_VERSION
    name: str
    version: str
    created_at: dt.datetime = Field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    source: SourceInfo
    cut: CutInfo
    inputs: list[InputInfo]
    outputs: list[OutputInfo]
    params: Params
    artifacts: list[Artifact] = Field(default_factory=list)
    validation: ValidationSummary
    software: Software = Field(default_factory=lambda: software_versions())
    preprocessing: Preprocessing | None = None
    warnings: list[str] = Field(default_factory=list)
    lineage: Lineage | None = None
    changes: Changes | None = None

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"

    def artifact(self, path: str) -> Artifact | None:
        return next((a for a in self.artifacts if a.path == path), None)

    @property
    def primary(self) -> Artifact | None:
        """The artifact a consumer loads: the ``keras`` one, else the first."""
        return next((a for a in self.artifacts if a.format == "keras"), self.artifacts[0] if self.artifacts else None)


def _version_of(package: str) -> str | None:
    for name in (package, f"{package}-cpu") if package == "tensorflow" else (package,):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def keras_backend() -> str | None:
    """The Keras backend: Keras's own answer when it is imported, else ``KERAS_BACKEND``, else
    ``None`` (not known without importing Keras)."""
    keras = sys.modules.get("keras")
    config = getattr(keras, "config", None)
    if config is not None and hasattr(config, "backend"):
        return str(config.backend())
    return os.environ.get("KERAS_BACKEND") or None


def software_versions(backend: str | None = None) -> Software:
    """Installed versions, read from package metadata (nothing heavy is imported); ``backend``
    is the Keras backend the backbone was cut with (default: :func:`keras_backend`)."""
    from kerascut_core._version import __version__

    return Software(
        kerascut=__version__,
        keras=_version_of("keras"),
        tensorflow=_version_of("tensorflow"),
        python=platform.python_version(),
        keras_backend=backend or keras_backend(),
    )


def schema() -> dict[str, Any]:
    return Manifest.model_json_schema()


def export_schema(path: str | Path | None = None) -> Path:
    """Write the manifest's JSON schema (default: the packaged ``schemas/manifest.schema.json``)."""
    target = Path(path) if path is not None else SCHEMA_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(schema(), indent=2, sort_keys=True) + "\n")
    return target


if __name__ == "__main__":  # python -m kerascut_core.publishing.manifest
    print(export_schema())
