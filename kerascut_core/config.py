"""The YAML config that lists the backbones a team needs, validated by pydantic.

One file describes where backbones are published (``store``), when they are refreshed
(``schedule``), how they are validated (``validation``, with per-backbone overrides) and, for
each backbone, its source and its cut::

    store: s3://team-backbones/prod
    schedule: {cron: "0 3 * * 1", timezone: UTC}
    validation: {samples: 8, atol: 0.0, deployment: validate-backbone/gpu}
    backbones:
      - name: mobilenetv2-stride16
        source: keras.applications/MobileNetV2
        weights: imagenet
        input_shape: [224, 224, 3]
        start: block_3_expand_relu
        end: block_13_expand_relu

Errors are :class:`~kerascut_core.errors.ConfigError` (CLI exit code 2) with the path of the bad
field, e.g. ``backbones[2].start``, and did-you-mean suggestions for unknown keys. This module
never imports TensorFlow: a no-op refresh loads the config, fingerprints and stops.

    >>> from kerascut_core.config import parse_config
    >>> cfg = parse_config({"store": "./backbones", "backbones": [
    ...     {"name": "tiny", "source": "keras.applications/MobileNetV2", "weights": "none",
    ...      "input_shape": [32, 32, 3], "end": "block_3_expand_relu"}]})
    >>> cfg.backbones[0].resolved_validation(cfg.validation).samples
    8
"""

from __future__ import annotations

import json
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from kerascut_core._names import clip, did_you_mean, short_repr
from kerascut_core.errors import ConfigError, CutError, KerascutError
from kerascut_core.sources import check_cache_dir
from kerascut_core.surgery.spec import CutSpec
from kerascut_core.uris import APPLICATIONS_PREFIX, file_uri_path, parse_s3, parse_uri

__all__ = [
    "APPLICATIONS_PREFIX",
    "BackboneConfig",
    "KerascutConfig",
    "Schedule",
    "ValidationOverrides",
    "ValidationSettings",
    "config_json_schema",
    "load_config",
    "parse_config",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_CRON_FIELD_RE = re.compile(r"^[0-9A-Za-z*/,?#LW-]+$")

#: Limits of a config file, so that a careless or hostile file fails fast with one line.
MAX_CONFIG_BYTES = 4 * 1024 * 1024
#: YAML nodes after anchors and aliases are expanded (a "billion laughs" file is refused).
MAX_YAML_NODES = 100_000
#: Nesting of YAML collections, after alias expansion (a config needs about 6 levels).
MAX_YAML_DEPTH = 64
#: Characters of one integer scalar (Python refuses to parse more than 4300 digits anyway).
MAX_INT_DIGITS = 100


def _uri_value(value: str) -> str:
    """Refuse s3:// URIs with '..' keys, file:// URIs with a host and unknown schemes."""
    if "://" in value:
        try:
            parse_uri(value)
        except KerascutError as exc:
            raise ValueError(str(exc)) from None
    return value


def _deployment_name(value: str | None) -> str | None:
    if value is not None and (value.count("/") != 1 or not all(value.split("/"))):
        raise ValueError(
            "Expected a deployment name as 'FLOW/DEPLOYMENT' such as 'validate-backbone/gpu'. "
            f"Received {short_repr(value)}."
        )
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class Schedule(_Strict):
    """When ``kerascut deploy`` schedules the refresh: a cron string and its time zone."""

    cron: str = Field(description='Cron expression (5 fields), e.g. "0 3 * * 1" for Mondays at 03:00.')
    timezone: str = Field("UTC", description="IANA time zone the cron is read in, e.g. Europe/Berlin.")

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, value: str) -> str:
        fields = value.split()
        if len(fields) not in (5, 6) or not all(_CRON_FIELD_RE.match(f) for f in fields):
            raise ValueError(
                f'Expected a cron expression with 5 fields like "0 3 * * 1". Received {short_repr(value)}.'
            )
        return " ".join(fields)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file
            raise ValueError(
                f"Expected an IANA time zone such as 'UTC' or 'Europe/Berlin'. Received {short_repr(value)}."
                + did_you_mean(value, sorted(available_timezones()))
            ) from None
        return value


class ValidationSettings(_Strict):
    """How candidates are validated before they are published (defaults for every backbone)."""

    samples: int = Field(8, ge=1, description="Random (or data) samples pushed through source and candidate.")
    batch_size: int = Field(8, ge=1, description="Batch size for the comparison forward passes.")
    atol: float = Field(0.0, ge=0.0, description="Absolute tolerance; 0.0 on the same device and dtype.")
    rtol: float = Field(0.0, ge=0.0, description="Relative tolerance, for cross-device validation.")
    seed: int = Field(0, description="Seed of the random inputs.")
    require_gpu: bool = Field(False, description="Refuse to validate on a worker without a GPU.")
    data: str | None = Field(None, description="Sample data (.npz/.npy, local path or s3:// URI) instead of random inputs.")
    deployment: str | None = Field(
        None,
        description=(
            'Run validation as this Prefect deployment ("validate-backbone/gpu", a GPU work pool) '
            "through run_deployment and wait for it; null validates in-process."
        ),
    )

    @field_validator("deployment")
    @classmethod
    def _check_deployment(cls, value: str | None) -> str | None:
        return _deployment_name(value)

    @field_validator("data")
    @classmethod
    def _check_data(cls, value: str | None) -> str | None:
        return None if value is None else _uri_value(value)


class ValidationOverrides(_Strict):
    """Per-backbone overrides of :class:`ValidationSettings`; unset fields keep the defaults."""

    samples: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=1)
    atol: float | None = Field(None, ge=0.0)
    rtol: float | None = Field(None, ge=0.0)
    seed: int | None = None
    require_gpu: bool | None = None
    data: str | None = None
    deployment: str | None = None

    @field_validator("deployment")
    @classmethod
    def _check_deployment(cls, value: str | None) -> str | None:
        return _deployment_name(value)

    @field_validator("data")
    @classmethod
    def _check_data(cls, value: str | None) -> str | None:
        return None if value is None else _uri_value(value)


class BackboneConfig(_Strict):
    """One backbone: where its source comes from and where it is cut."""

    name: str = Field(description="Name in the store (<store>/<name>/...), letters, digits, '.', '_', '-'.")
    source: str = Field(
        description="keras.applications/NAME, s3://bucket/key.keras|.h5, file:// URI or a local path."
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
        None, ge=1, description="Drop the first N layers instead of naming `start`."
    )
    end: str | list[str] | dict[str, str] | None = Field(
        None, description="Layer name, list, or {output_name: layer}; omit to keep the outputs."
    )
    extra_inputs: Literal["error", "auto"] = Field(
        "error", description='"auto" turns skip connections crossing the start into extra inputs.'
    )
    formats: list[Literal["keras", "saved_model"]] = Field(
        default_factory=lambda: ["keras"], description="Artifacts to publish; keras is always included."
    )
    validation: ValidationOverrides | None = Field(None, description="Overrides of the top-level validation.")

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME_RE.match(value) or ".." in value:
            raise ValueError(
                "Expected a name of letters, digits, '.', '_' or '-' (starting with a letter or "
                f"digit, at most 100 characters). Received {short_repr(value)}."
            )
        return value

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
        return _uri_value(value)

    @field_validator("weights")
    @classmethod
    def _check_weights(cls, value: str | None) -> str | None:
        return None if value is None else _uri_value(value)

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
            start=self.start, end=self.end, drop_first=self.drop_first, extra_inputs=self.extra_inputs
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


class KerascutConfig(_Strict):
    """A kerascut config file: a store, a schedule, validation defaults and the backbones."""

    store: str = Field(description="Where backbones are published: a local directory, file:// URI or s3://bucket/prefix.")
    cache_dir: str | None = Field(None, description="Download cache (default: the user cache directory).")
    schedule: Schedule | None = Field(None, description="Cron schedule that `kerascut deploy` registers.")
    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    concurrency: int = Field(
        2, ge=1, le=64, description="How many backbones are prepared at the same time in one refresh."
    )
    aws_credentials_block: str | None = Field(
        None, description="Name of a prefect-aws AwsCredentials block used for S3 (else the AWS environment)."
    )
    backbones: list[BackboneConfig] = Field(description="The backbones to publish.")

    @field_validator("store")
    @classmethod
    def _check_store(cls, value: str) -> str:
        value = value.strip()
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


# --- loading and error formatting -------------------------------------------------------------


def load_config(path: str | os.PathLike[str]) -> KerascutConfig:
    """Read and validate a YAML config file.

    Raises ``ConfigError`` (one line: file, field path, reason, fix) for a missing file, a YAML
    syntax error or a field that does not validate. A file is refused, before any of it is
    turned into Python objects, when it is larger than :data:`MAX_CONFIG_BYTES` (4 MiB), nests
    deeper than :data:`MAX_YAML_DEPTH` (64) levels, expands through anchors and aliases to more
    than :data:`MAX_YAML_NODES` (100,000) nodes (a "billion laughs" file) or holds an integer of
    more than :data:`MAX_INT_DIGITS` (100) characters. Small anchors such as
    ``<<: *defaults`` are fine.

        >>> cfg = load_config("deployments/quickstart.yaml")  # doctest: +SKIP
        >>> [b.name for b in cfg.backbones]                     # doctest: +SKIP
    """
    path = Path(path).expanduser()
    shown = clip(str(path), 300)
    if not path.is_file():
        raise ConfigError(
            f"Expected a config file. Received {short_repr(str(path), 300)}, which "
            + ("is a directory." if path.is_dir() else "does not exist.")
            + " See deployments/quickstart.yaml for an example."
        )
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{shown}: Expected a config file of at most {MAX_CONFIG_BYTES // (1024 * 1024)} MiB. "
                "Received a larger file; a config names backbones and settings, not data: split it "
                "into several configs."
            )
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Could not read config {short_repr(str(path), 300)}: {clip(str(exc), 300)}.") from None
    try:
        data = _load_yaml(text)
    except _LimitError as exc:
        mark = exc.problem_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{shown}{where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"{shown}{where}: Expected valid YAML. Received a syntax error: {clip(problem, 300)}. "
            "Fix the YAML there."
        ) from None
    except (ValueError, OverflowError) as exc:  # belt and braces: constructors are wrapped above
        raise ConfigError(
            f"{shown}: Expected valid YAML values. Received one that cannot be read: "
            f"{clip(str(exc), 200)}. Fix the value."
        ) from None
    except RecursionError:  # belt and braces: the depth limit comes first
        raise ConfigError(
            f"{shown}: Expected YAML nested at most {MAX_YAML_DEPTH} levels deep. Received nesting "
            "too deep to read; flatten it."
        ) from None
    return parse_config(data, source=shown)


class _LimitError(yaml.MarkedYAMLError):
    """A YAML document over one of the limits; ``problem`` is the whole one-line message."""


def _load_yaml(text: str) -> Any:
    """``yaml.load`` with :class:`_UniqueKeyLoader`, the alias expansion checked in between."""
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a composed document that aliases expand past the node or depth limits.

    Aliases are shared nodes in the composed graph, so the expanded size is counted once per
    distinct node (memoised, iteratively): the check costs the size of the file, not of the
    expansion. Counts saturate just above the limit.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            on_path.discard(key)
            size[key] = min(MAX_YAML_NODES + 1, 1 + sum(size[id(c)] for c in children))
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            continue
        if key in size:
            continue
        if key in on_path:
            raise _LimitError(
                None, None,
                "Expected YAML without recursive aliases. Received an alias inside its own anchor "
                "here; a config cannot contain itself, write the value out.",
                node.start_mark,
            )
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in size)
    if size[id(root)] > MAX_YAML_NODES:
        raise _LimitError(
            None, None,
            f"Expected at most {MAX_YAML_NODES:,} YAML values once anchors and aliases are expanded. "
            "Received aliases that expand to more (a 'billion laughs' document); write the values "
            "out, or alias only small blocks such as `<<: *defaults`.",
            None,
        )
    if depth[id(root)] > MAX_YAML_DEPTH:
        raise _LimitError(
            None, None,
            f"Expected YAML nested at most {MAX_YAML_DEPTH} levels deep once aliases are expanded. "
            "Received aliases nested inside each other deeper than that; write the values out.",
            None,
        )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a key given twice in one mapping, with limits.

    PyYAML silently keeps the last value, so ``end: c3`` and a later ``end: c1`` in the same
    backbone would cut somewhere the reader of the file does not expect. Merge keys
    (``<<: *defaults``) work as in YAML 1.1: the keys written out override merged ones.
    Nesting deeper than :data:`MAX_YAML_DEPTH` and integers longer than :data:`MAX_INT_DIGITS`
    are refused while the file is read (PyYAML composes recursively, and ``int()`` refuses
    4300+ digits with a bare ``ValueError``).
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise _LimitError(
                    None, None,
                    f"Expected YAML nested at most {MAX_YAML_DEPTH} levels deep. Received deeper "
                    "nesting here; flatten it (a config needs about 6 levels).",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:  # e.g. the date 2024-13-45
            value = short_repr(node.value, 60) if isinstance(node, yaml.ScalarNode) else f"<{node.id}>"
            raise yaml.constructor.ConstructorError(
                None, None, f"the value {value} cannot be read ({clip(str(exc), 100)})", node.start_mark,
            ) from None

    def _construct_int(self, node: yaml.ScalarNode) -> int:
        text = str(node.value)
        if len(text) > MAX_INT_DIGITS:
            raise _LimitError(
                None, None,
                f"Expected integers of at most {MAX_INT_DIGITS} digits. Received an integer of "
                f"{len(text):,} characters here; use a sensible number.",
                node.start_mark,
            )
        return self.construct_yaml_int(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults`: the base class merges, and explicit keys win
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key; the base class reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"found the key {short_repr(key)} twice in one mapping; keep one",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _UniqueKeyLoader._construct_int)


def parse_config(data: Any, *, source: str = "config") -> KerascutConfig:
    """Validate an already parsed config (a dict, e.g. a Prefect parameter)."""
    if isinstance(data, KerascutConfig):
        return data
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: Expected a mapping with `store` and `backbones` at the top level. "
            f"Received {type(data).__name__ if data is not None else 'an empty file'}."
        )
    try:
        return KerascutConfig.model_validate(data)
    except PydanticValidationError as exc:
        raise ConfigError(f"{source}: {clip(_describe(exc), 1000)}") from None
    except RecursionError:
        raise ConfigError(
            f"{source}: Expected a config nested at most {MAX_YAML_DEPTH} levels deep. Received "
            "deeper nesting; flatten it."
        ) from None


def _describe(exc: PydanticValidationError) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = tuple(first["loc"])
    message = _message(first, loc)
    more = len(errors) - 1
    return f"{_path(loc)}: {message}" + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + clip(str(part), 60)
    return out or "(top level)"


def _message(error: dict[str, Any], loc: tuple[Any, ...]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        key = str(loc[-1])
        options = sorted(model.model_fields) if model else []
        hint = did_you_mean(key, options) or (f" Valid keys: {', '.join(options)}." if options else "")
        return f"Unknown key {short_repr(key)}.{hint} Remove or rename it."
    if kind == "missing":
        return "Expected this required field. Received nothing; add it."
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"Expected one of {expected}. Received {short_repr(error.get('input'))}."
    msg = error["msg"]
    if msg.startswith("Value error, "):
        return msg[len("Value error, "):]
    return f"{msg[0].upper()}{msg[1:]}. Received {short_repr(error.get('input'))}."


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that sits at ``loc`` inside :class:`KerascutConfig`."""
    current: Any = KerascutConfig
    for part in loc:
        model = _as_model(current)
        if isinstance(part, int):
            current = _item_type(current)
        elif model is not None and part in model.model_fields:
            current = model.model_fields[part].annotation
        else:
            return None
    return _as_model(current)


def _as_model(tp: Any) -> type[BaseModel] | None:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    if typing.get_origin(tp) in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            found = _as_model(arg)
            if found is not None:
                return found
    return None


def _item_type(tp: Any) -> Any:
    if typing.get_origin(tp) in (Union, types.UnionType):
        for arg in typing.get_args(tp):
            if typing.get_origin(arg) is list:
                return typing.get_args(arg)[0]
    if typing.get_origin(tp) is list:
        return typing.get_args(tp)[0]
    return None


def config_json_schema() -> dict[str, Any]:
    """The JSON schema of the config file, for editors (``kerascut config schema``)."""
    schema = KerascutConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://example.invalid/kerascut/config.schema.json"
    return schema


def _schema_text() -> str:
    return json.dumps(config_json_schema(), indent=2, sort_keys=True) + "\n"
