"""The refresh flow and a consumer of ``latest`` (a real Prefect API harness, the S3 API server).

A compatible refresh (other weights) moves ``latest`` and its row says what changed; a refresh
whose version changes the output a consumer relies on commits the version, holds ``latest``
where it was, and shows ``held`` with the reason in its row and in the Prefect table artifact.
The run does not fail.

Three whole refreshes take minutes on two shared cores, so this is ``slow``; the main slice
covers the same step in tests/publishing/test_consumers_gate.py (``advance_latest`` holding and moving
latest) and tests/flows/test_consumers_prefect.py (the held event read back from a Prefect API).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.flows.test_flows import (
    artifact,
    config,
    read_json,
    refresh,
    tiny_backbone,
    tiny_model_bytes,
    upload,
)

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]


def wider_model_bytes(tmp_path: Path) -> bytes:
    """The tiny net of tests/flows/test_flows.py with 16 channels at block3 instead of 8."""
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(3)
    x = keras.Input((8, 8, 3), name="image")
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="stem")(x)
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="block1")(h)
    b = keras.layers.Conv2D(4, 3, padding="same", name="block2")(a)
    h = keras.layers.Add(name="add")([a, b])
    h = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="block3")(h)
    out = keras.layers.Dense(2, name="head")(keras.layers.GlobalAveragePooling2D(name="pool")(h))
    path = tmp_path / "wider.keras"
    keras.Model(x, out, name="tiny").save(path)
    keras.backend.clear_session()
    return path.read_bytes()


def test_a_refresh_holds_latest_for_a_consumer_and_moves_it_when_compatible(
    s3_env: dict[str, str], s3_bucket: str, s3_client: Any, tmp_path: Path, prefect_client: Any
) -> None:
    from kerascut_core.publishing.consumer_registry import register_consumer
    from kerascut_core.stores import open_store

    store = f"s3://{s3_bucket}/backbones"
    source = upload(s3_client, s3_bucket, "sources/tiny.keras", tiny_model_bytes(tmp_path, 1))
    cfg = config(store, tiny_backbone("tiny", source), cache_dir=str(tmp_path / "cache"))
    state, rows = refresh(cfg)
    assert state.is_completed(), state.message
    v1 = rows["tiny"]["version"]
    (output,) = read_json(s3_client, s3_bucket, f"backbones/tiny/{v1}/manifest.json")["outputs"]
    register_consumer(open_store(store), "tiny", "detector", outputs=[output["name"]])

    upload(s3_client, s3_bucket, "sources/tiny.keras", tiny_model_bytes(tmp_path, 2))  # other weights only
    state, rows = refresh(cfg)
    assert state.is_completed(), state.message
    v2 = rows["tiny"]["version"]
    assert rows["tiny"]["status"] == "published" and rows["tiny"]["changes"].startswith(f"compatible against {v1}")
    assert read_json(s3_client, s3_bucket, "backbones/tiny/latest.json")["version"] == v2

    upload(s3_client, s3_bucket, "sources/tiny.keras", wider_model_bytes(tmp_path))  # block3: 8 -> 16 channels
    state, rows = refresh(cfg)
    assert state.is_completed(), state.message  # a hold is not a failure
    row = rows["tiny"]
    v3 = row["version"]
    assert row["status"] == "held" and "consumer 'detector'" in row["message"] and "channels 8 -> 16" in row["message"]
    assert row["changes"].startswith(f"breaking against {v2}")
    assert read_json(s3_client, s3_bucket, "backbones/tiny/latest.json")["version"] == v2
    assert read_json(s3_client, s3_bucket, f"backbones/tiny/{v3}/manifest.json")["changes"]["verdict"] == "breaking"
    table = artifact(prefect_client, "kerascut-refresh")
    data = table.data if isinstance(table.data, str) else json.dumps(table.data)
    assert '"status": "held"' in data and "consumer 'detector'" in data and "breaking against" in data
