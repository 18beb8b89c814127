"""The YAML config that lists the backbones a team needs, validated by pydantic.

One file describes where backbones are published (``store``), when they are refreshed
(``schedule``), how they are validated (``validation``, with per-backbone overrides) and, for
each backbone, its source and its cut::

    store: s3://team-backbones/prod
    schedule: {cron: "0 3 * * 1", timezone: UTC}
    validation: {samples: 8, atol: 0.0, deployment: validate-backbone/gpu}
    retention: {keep_last: 10}
    prepare: {deployment: prepare-backbone/cpu}   # optional: fan out over the CPU pool's workers
    backbones:
      - name: mobilenetv2-stride16
        source: keras.applications/MobileNetV2
        weights: imagenet
        input_shape: [224, 224, 3]
        start: block_3_expand_relu
        end: block_13_expand_relu

Errors are :class:`~kerascut_core.errors.ConfigError` (CLI exit code 2) with the path of the bad
field, e.g. ``backbones[2].start``, and did-you-mean suggestions for unknown keys. This package
never imports TensorFlow: a no-op refresh loads the config, fingerprints and stops.

The modules, one concept each: ``settings`` (schedule, validation, retention and prepare settings), ``backbone``
(one backbone; its name follows :func:`kerascut_core.uris.check_name`), ``models`` (the whole
file, :class:`KerascutConfig`), ``yaml_loader`` (reading a file: bounded, unique keys),
``describe`` (pydantic errors as one line), ``load`` (:func:`load_config`,
:func:`parse_config`) and ``schema`` (the JSON schema for editors).

    >>> from kerascut_core.config import parse_config
    >>> cfg = parse_config({"store": "./backbones", "backbones": [
    ...     {"name": "tiny", "source": "keras.applications/MobileNetV2", "weights": "none",
    ...      "input_shape": [32, 32, 3], "end": "block_3_expand_relu"}]})
    >>> cfg.backbones[0].resolved_validation(cfg.validation).samples
    8
"""

from __future__ import annotations

from kerascut_core.config.backbone import BackboneConfig
from kerascut_core.config.load import load_config, parse_config
from kerascut_core.config.models import KerascutConfig
from kerascut_core.config.schema import config_json_schema
from kerascut_core.config.settings import (
    PrepareSettings,
    RetentionSettings,
    Schedule,
    ValidationOverrides,
    ValidationSettings,
)
from kerascut_core.config.yaml_loader import (
    MAX_CONFIG_BYTES,
    MAX_INT_DIGITS,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
)
from kerascut_core.uris import APPLICATIONS_PREFIX

# MAX_* are re-exported to be read; to change them, set them on ``config.yaml_loader`` (where
# the reading step looks them up at call time).
__all__ = [
    "APPLICATIONS_PREFIX",
    "MAX_CONFIG_BYTES",
    "MAX_INT_DIGITS",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "BackboneConfig",
    "KerascutConfig",
    "PrepareSettings",
    "RetentionSettings",
    "Schedule",
    "ValidationOverrides",
    "ValidationSettings",
    "config_json_schema",
    "load_config",
    "parse_config",
]
