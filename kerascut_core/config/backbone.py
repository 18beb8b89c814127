"""One backbone of a config file: where its source comes from, where it is cut, what is published.

``name`` follows the one rule for names in a store, :func:`kerascut_core.uris.check_name`
(at most :data:`~kerascut_core.uris.NAME_MAX_LENGTH` characters). The cut is checked here, as
a :class:`~kerascut_core.surgery.spec.CutSpec`, without TensorFlow.

    >>> b = BackboneConfig(name="tiny", source="keras.applications/MobileNetV2", weights="none",
    ...                    end="block_3_expand_relu")
    >>> b.source_options()
    {'allow_unsafe': False, 'weights': 'none'}
    >>> b.formats
    ['keras']
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from kerascut_core._names import clip, short_repr
from kerascut_core.artifacts import FORMAT_NAMES, FormatName
from kerascut_core.config._fields import StrictModel, check_uri_value
from kerascut_core.config.settings import RetentionSettings, ValidationOverrides, ValidationSettings
from kerascut_core.errors import CutError, StoreError
from kerascut_core.surgery.spec import CutSpec
from kerascut_core.uris import APPLICATIONS_PREFIX, NAME_MAX_LENGTH, NAME_PATTERN, check_name

__all__ = ["FORMAT_NAMES", "BackboneConfig", "FormatName"]

#: A format a backbone can be published in: the ``.keras`` file (always), the SavedModel, the
#: ONNX export (extra ``kerascut[onnx]``) and the LiteRT ``.tflite`` (extra ``kerascut[litert]``).
def _keras_only() -> list[FormatName]:
    """The default ``formats``: a fresh ``["keras"]`` for each config."""
    return ["keras"]


class BackboneConfig(StrictModel):
    """One backbone: where its source comes from and where it is cut."""

    name: str = Field(
        description=(
            "Name in the store (<store>/<name>/...): letters, digits, '.', '_', '-', starting with "
            f"a letter or digit, at most {NAME_MAX_LENGTH} characters."
        ),
        # for editors; the validator calls check_name (tests/config/test_config.py: the two agree)
        json_schema_extra={"pattern": NAME_PATTERN, "maxLength": NAME_MAX_LENGTH},
    )
    source: str = Field(
        description=(
            "keras.applications/NAME, s3://bucket/key.keras|.h5, file:// URI or a local path; or a "
            "keras-hub preset: a directory (local or s3://bucket/prefix/) or a kaggle:// / hf:// "
            "handle (needs kerascut[hub])."
        )
    )
    weights: str | None = Field(
        None,
        description="keras.applications only: imagenet (default) | none | a weights path | an s3:// URI.",
    )
    input_shape: list[int] | None = Field(None, description="keras.applications only, e.g. [224, 224, 3].")
    include_top: bool | None = Field(None, description="keras.applications only (default false).")
    allow_unsafe: bool = Field(
        False, description="Load with safe_mode=False (Lambda layers with code). Recorded in the manifest."
    )
    start: str | list[str] | None = Field(
        None, description="Layer name(s) whose outputs become the inputs; omit to keep the inputs."
    )
    drop_first: int | None = Field(
        None,
        ge=1,
        description=(
            "Start after the first N layers instead of naming `start`: N counts model.layers in "
            "order without InputLayers (a nested model is one layer; keras.ops calls are not layers)."
        ),
    )
    end: str | list[str] | dict[str, str] | None = Field(
        None,
        description=(
            "Layer name, list, or {output_name: layer}; pyramid_outputs: the source's "
            "pyramid_outputs (keras-hub backbones), outputs named by its keys; auto-pyramid: the "
            "pyramid found from the graph (level k, output Pk: the latest valid cut point at stride "
            "2^k); omit to keep the outputs."
        ),
    )
    levels: list[int] | None = Field(
        None,
        description=(
            "With end: auto-pyramid, the levels to output, e.g. [3, 4, 5] for P3-P5 (stride 2^k); "
            "default: every level from 2 up to the model's last."
        ),
    )
    extra_inputs: Literal["error", "auto"] = Field(
        "error", description='"auto" turns skip connections crossing the start into extra inputs.'
    )
    formats: list[FormatName] = Field(
        default_factory=_keras_only,
        description=(
            "Artifacts to publish, each validated in its own runtime; keras is always included. "
            "onnx needs kerascut[onnx], litert needs kerascut[litert]."
        ),
    )
    validation: ValidationOverrides | None = Field(None, description="Overrides of the top-level validation.")
    retention: RetentionSettings | None = Field(
        None, description="Overrides of the top-level retention (a keep_last of its own)."
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        # The stores' rule, defined once in kerascut_core.uris.check_name; the message is the
        # config's (which field, which rule).
        try:
            return check_name(value)
        except StoreError:
            raise ValueError(
                "Expected a name of letters, digits, '.', '_' or '-' (starting with a letter or "
                f"digit, at most {NAME_MAX_LENGTH} characters). Received {short_repr(value)}."
            ) from None

    @field_validator("source")
    @classmethod
    def _check_source(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("Expected a source URI. Received an empty string.")
        if value.startswith(APPLICATIONS_PREFIX) and not value[len(APPLICATIONS_PREFIX):]:
            raise ValueError(
                "Expected keras.applications/NAME such as 'keras.applications/MobileNetV2'. "
                f"Received {short_repr(value)}."
            )
        return check_uri_value(value)

    @field_validator("weights")
    @classmethod
    def _check_weights(cls, value: str | None) -> str | None:
        return None if value is None else check_uri_value(value)

    @field_validator("input_shape")
    @classmethod
    def _check_shape(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and (not value or any(d < 1 for d in value)):
            raise ValueError(f"Expected a list of positive sizes like [224, 224, 3]. Received {short_repr(value)}.")
        return value

    @field_validator("start", "end", mode="before")
    @classmethod
    def _check_names(cls, value: Any, info: Any) -> Any:
        # One clear message instead of pydantic's per-union-member errors.
        label = info.field_name
        ok = value is None or isinstance(value, str)
        if isinstance(value, list):
            ok = all(isinstance(v, str) for v in value)
        elif isinstance(value, dict):
            ok = label == "end" and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        if not ok:
            kinds = "a layer name or a list of names" + (
                " or a mapping {output_name: layer}" if label == "end" else ""
            )
            raise ValueError(f"Expected {kinds}. Received {short_repr(value)}.")
        return value

    @field_validator("formats")
    @classmethod
    def _keras_first(cls, value: list[str]) -> list[str]:
        ordered = ["keras", *[f for f in value if f != "keras"]]
        return list(dict.fromkeys(ordered))

    @model_validator(mode="after")
    def _check_combination(self) -> BackboneConfig:
        try:
            self.cut_spec()
        except CutError as exc:
            raise ValueError(clip(str(exc), 600)) from None
        if not self.is_application:
            for field in ("weights", "input_shape", "include_top"):
                if getattr(self, field) is not None:
                    raise ValueError(
                        f"Expected `{field}` only with keras.applications/NAME sources. Received "
                        f"{field}={short_repr(getattr(self, field))} for source {short_repr(self.source, 200)}. "
                        f"Remove `{field}`."
                    )
        return self

    @property
    def is_application(self) -> bool:
        return self.source.startswith(APPLICATIONS_PREFIX)

    def cut_spec(self) -> CutSpec:
        """The cut spec of this backbone."""
        return CutSpec(
            start=self.start, end=self.end, drop_first=self.drop_first, extra_inputs=self.extra_inputs,
            levels=self.levels,
        )

    def source_options(self) -> dict[str, Any]:
        """Keyword options for ``load_model`` / ``fingerprint`` (only those that apply)."""
        options: dict[str, Any] = {"allow_unsafe": self.allow_unsafe}
        if self.is_application:
            options["weights"] = self.weights if self.weights is not None else "imagenet"
            if self.input_shape is not None:
                options["input_shape"] = tuple(self.input_shape)
            if self.include_top is not None:
                options["include_top"] = self.include_top
        return options

    def resolved_validation(self, defaults: ValidationSettings) -> ValidationSettings:
        """The top-level validation settings with this backbone's overrides applied."""
        if self.validation is None:
            return defaults
        # None means "not overridden" (a dumped and reloaded backbone carries explicit Nones).
        changes = {k: v for k, v in self.validation.model_dump().items() if v is not None}
        return ValidationSettings.model_validate({**defaults.model_dump(), **changes})

    def resolved_retention(self, defaults: RetentionSettings) -> RetentionSettings:
        """The top-level retention with this backbone's ``keep_last`` when it sets one."""
        if self.retention is None or self.retention.keep_last is None:
            return defaults
        return self.retention
