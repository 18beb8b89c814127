"""Loading a config: a YAML file (:func:`load_config`) or an already parsed dict (:func:`parse_config`).

Both return a validated :class:`~kerascut_core.config.models.KerascutConfig` or raise one
``ConfigError`` line (CLI exit code 2): the file or source, the field path, the reason, the fix.

    >>> parse_config({"store": "./b", "backbones": []})
    Traceback (most recent call last):
    kerascut_core.errors.ConfigError: config: backbones: Expected at least one backbone. Received an empty list.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from kerascut_core._names import clip
from kerascut_core.config.describe import describe
from kerascut_core.config.models import KerascutConfig
from kerascut_core.config.yaml_loader import MAX_YAML_DEPTH, read_config_file
from kerascut_core.errors import ConfigError

__all__ = ["load_config", "parse_config"]


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
    data, shown = read_config_file(path)
    return parse_config(data, source=shown)


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
        raise ConfigError(f"{source}: {clip(describe(exc), 1000)}") from None
    except RecursionError:
        raise ConfigError(
            f"{source}: Expected a config nested at most {MAX_YAML_DEPTH} levels deep. Received "
            "deeper nesting; flatten it."
        ) from None
