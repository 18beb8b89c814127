"""The JSON schema of a config file, for editors (``kerascut config schema``).

The committed copy is ``kerascut_core/schemas/config.schema.json`` (:func:`_schema_text`
writes it); tests/config/test_config.py checks it is up to date, and scripts/config_reference.py
renders the README's config reference from the same schema.

    >>> config_json_schema()["required"]
    ['store', 'backbones']
"""

from __future__ import annotations

import json
from typing import Any

from kerascut_core.config.models import KerascutConfig

__all__ = ["config_json_schema"]


def config_json_schema() -> dict[str, Any]:
    """The JSON schema of the config file, for editors (``kerascut config schema``)."""
    schema = KerascutConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://example.invalid/kerascut/config.schema.json"
    return schema


def _schema_text() -> str:
    return json.dumps(config_json_schema(), indent=2, sort_keys=True) + "\n"
