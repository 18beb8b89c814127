"""The manifest: what a published backbone is, where it came from and how it was checked.

``<store>/<name>/<version>/manifest.json`` is written last; its presence commits the version.
Its JSON schema is exported to ``kerascut_core/schemas/manifest.schema.json`` so consumers in
other languages can rely on it (``python -m kerascut_core.publishing.manifest`` regenerates it).

    >>> m = Manifest.model_validate_json(Path("manifest.json").read_text())  # doctest: +SKIP
    >>> m.artifacts[0].sha256                                                 # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "SCHEMA_PATH",
    "SCHEMA_VERSION",
    "Artifact",
    "CutInfo",
    "Manifest",
    "Params",
    "Software",
    "SourceInfo",
    "TensorInfo",
    "ValidationSummary",
    "export_schema",
    "software_versions",
]

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "manifest.schema.json"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceInfo(_Strict):
    """The source as fetched: ``uri``, its ``fingerprint``, the ``weights`` used, ``allow_unsafe``."""

    uri: str
    fingerprint: str
    weights: str | None = None
    allow_unsafe: bool = False


class CutInfo(_Strict):
    """The cut spec (see :class:`kerascut_core.CutSpec`)."""

    start: str | list[str] | None = None
    end: str | list[str] | dict[str, str] | None = None
    drop_first: int | None = None
    extra_inputs: Literal["error", "auto"] = "error"


class TensorInfo(_Strict):
    """An input or output of the backbone; ``None`` in ``shape`` is a free (batch) dimension."""

    name: str
    shape: list[int | None]
    dtype: str


class Params(_Strict):
    """Parameter counts of the source and of what the cut kept."""

    total_source: int = Field(ge=0)
    kept: int = Field(ge=0)


class Artifact(_Strict):
    """A file of the version, relative to ``<name>/<version>/``."""

    path: str
    format: str
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


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


class Manifest(_Strict):
    """The manifest of one published version (``manifest.json``)."""

    schema_version: int = SCHEMA_VERSION
    name: str
    version: str
    created_at: dt.datetime = Field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    source: SourceInfo
    cut: CutInfo
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    params: Params
    artifacts: list[Artifact] = Field(default_factory=list)
    validation: ValidationSummary
    software: Software = Field(default_factory=lambda: software_versions())

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


def software_versions() -> Software:
    """Installed versions, read from package metadata (nothing heavy is imported)."""
    from kerascut_core import __version__

    return Software(
        kerascut=__version__,
        keras=_version_of("keras"),
        tensorflow=_version_of("tensorflow"),
        python=platform.python_version(),
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
