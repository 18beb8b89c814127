"""A whole config file: the store, schedule, validation defaults and the backbones.

:class:`KerascutConfig` is the top of the file; the models it holds are in
:mod:`~kerascut_core.config.settings` and :mod:`~kerascut_core.config.backbone`.

    >>> cfg = KerascutConfig.model_validate({"store": "file://localhost/srv/b", "backbones": [
    ...     {"name": "tiny", "source": "keras.applications/MobileNetV2", "weights": "none"}]})
    >>> cfg.store, [b.name for b in cfg.select(["tiny"])]
    ('file:///srv/b', ['tiny'])
"""

from __future__ import annotations

from pydantic import Field, field_validator

from kerascut_core._names import clip, did_you_mean, short_repr
from kerascut_core.config._fields import Duration, StrictModel
from kerascut_core.config.backbone import BackboneConfig
from kerascut_core.config.settings import (
    PrepareSettings,
    RetentionSettings,
    Schedule,
    ValidationSettings,
)
from kerascut_core.errors import ConfigError, SourceError
from kerascut_core.sources import check_cache_dir
from kerascut_core.sources.imports import check_module_name
from kerascut_core.uris import expand_path, file_uri_path, parse_s3

__all__ = ["KerascutConfig"]


class KerascutConfig(StrictModel):
    """A kerascut config file: a store, a schedule, validation defaults and the backbones."""

    store: str = Field(description="Where backbones are published: a local directory, file:// URI or s3://bucket/prefix.")
    cache_dir: str | None = Field(None, description="Download cache (default: the user cache directory).")
    schedule: Schedule | None = Field(None, description="Cron schedule that `kerascut deploy` registers.")
    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    retention: RetentionSettings = Field(
        default_factory=RetentionSettings, description="Versions kept per backbone (default: all)."
    )
    prepare: PrepareSettings = Field(
        default_factory=PrepareSettings,
        description="Where stale backbones are prepared (default: in the refresh's own process).",
    )
    concurrency: int = Field(
        2, ge=1, le=64, description="How many backbones are prepared at the same time in one refresh."
    )
    refresh_timeout: Duration | None = Field(
        None,
        description=(
            "Bound on one whole refresh (30m, 6h or seconds): backbones not done by then are reported "
            "failed and the run fails; null waits as long as it takes."
        ),
    )
    aws_credentials_block: str | None = Field(
        None, description="Name of a prefect-aws AwsCredentials block used for S3 (else the AWS environment)."
    )
    imports: list[str] = Field(
        default_factory=list,
        description=(
            "Python modules imported before any model is loaded (those whose "
            "@keras.saving.register_keras_serializable classes the models use), found on PYTHONPATH "
            "or beside this file. Recorded in each manifest."
        ),
    )
    backbones: list[BackboneConfig] = Field(description="The backbones to publish.")

    @field_validator("store")
    @classmethod
    def _check_store(cls, value: str) -> str:
        value = expand_path(value.strip(), "store", error=ValueError)  # never a directory called $HOME
        if not value:
            raise ValueError("Expected a local directory, file:// URI or s3://bucket/prefix. Received ''.")
        if "://" in value and not value.startswith(("s3://", "file://")):
            scheme = value.split("://", 1)[0]
            raise ValueError(
                "Expected a local directory, file:// URI or s3://bucket/prefix. "
                f"Received a {clip(scheme, 20)}:// URI {short_repr(value, 200)}."
            )
        if value.startswith("s3://"):
            if not value[5:].split("/", 1)[0]:
                raise ValueError(
                    f"Expected s3://bucket/prefix with a bucket name. Received {short_repr(value, 200)}."
                )
            parse_s3(value, error=ValueError)  # a valid bucket, no '..' or '.' segments in the prefix
        elif value.startswith("file://"):
            file_uri_path(value, error=ValueError)  # any host but localhost is refused, not dropped
            if value.startswith("file://localhost/"):
                value = "file://" + value[len("file://localhost"):]  # the same directory, one spelling
        return value

    @field_validator("cache_dir")
    @classmethod
    def _check_cache_dir(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return check_cache_dir(value, "cache_dir")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("imports")
    @classmethod
    def _check_imports(cls, value: list[str]) -> list[str]:
        try:
            return list(dict.fromkeys(check_module_name(name) for name in value))
        except SourceError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("backbones")
    @classmethod
    def _unique_names(cls, value: list[BackboneConfig]) -> list[BackboneConfig]:
        if not value:
            raise ValueError("Expected at least one backbone. Received an empty list.")
        seen: set[str] = set()
        for backbone in value:
            if backbone.name in seen:
                raise ValueError(
                    f"Expected unique backbone names. Received {short_repr(backbone.name)} twice; rename one."
                )
            seen.add(backbone.name)
        return value

    def backbone(self, name: str) -> BackboneConfig:
        """The backbone called ``name``; ``ConfigError`` with the closest names otherwise."""
        for backbone in self.backbones:
            if backbone.name == name:
                return backbone
        names = [b.name for b in self.backbones]
        raise ConfigError(
            f"Expected a backbone name from the config. Received {short_repr(name)}."
            + (did_you_mean(name, names) or f" Valid names: {', '.join(map(repr, names))}.")
        )

    def select(self, only: list[str] | tuple[str, ...] | None) -> list[BackboneConfig]:
        """The backbones named in ``only`` (all when empty), in config order."""
        if not only:
            return list(self.backbones)
        wanted = {self.backbone(n).name for n in only}
        return [b for b in self.backbones if b.name in wanted]
