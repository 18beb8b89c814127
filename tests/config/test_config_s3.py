"""``kerascut config check`` on a config whose source is an ``s3://`` file (a real S3 API server).

The check fetches the object through the download cache and checks the layer names against it,
in a fresh process, as a user runs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import kerascut

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_keras(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import keras

    keras.backend.clear_session()
    model = keras.Sequential([keras.Input((4,), name="x"), keras.layers.Dense(3, name="dense")], name="tiny")
    path = tmp_path_factory.mktemp("src") / "tiny.keras"
    model.save(path)
    keras.backend.clear_session()
    return path


def _check(config: Path, env: dict[str, str], cache: Path) -> Any:
    return kerascut("config", "check", str(config), cwd=ROOT, env={**env, "KERASCUT_CACHE_DIR": str(cache)}, timeout=300)


def test_config_check_fetches_an_s3_source(s3_env, s3_bucket, s3_client, tiny_keras, tmp_path):
    s3_client.upload_file(str(tiny_keras), s3_bucket, "models/tiny.keras")
    uri = f"s3://{s3_bucket}/models/tiny.keras"

    good = tmp_path / "good.yaml"
    good.write_text(f"store: {tmp_path / 'store'}\nbackbones:\n  - {{name: a, source: {uri}, end: dense}}\n")
    out = _check(good, s3_env, tmp_path / "cache")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "fields ok (1 backbone(s)" in out.stdout
    assert "ok  a: inputs x -> outputs dense" in out.stdout
    assert list((tmp_path / "cache" / "s3" / s3_bucket).rglob("tiny.keras")), "fetched through the cache"

    bad = tmp_path / "bad.yaml"
    bad.write_text(f"store: {tmp_path / 'store'}\nbackbones:\n  - {{name: a, source: {uri}, end: dnese}}\n")
    out = _check(bad, s3_env, tmp_path / "cache")
    assert out.returncode != 0
    assert "backbones[0].end:" in out.stderr and "'dnese'" in out.stderr and "'dense'" in out.stderr, out.stderr[-3000:]
    assert "Traceback" not in out.stderr and "ImportError" not in out.stderr
