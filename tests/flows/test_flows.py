"""The Prefect flows end to end: a real Prefect API (test harness) and a real S3 API server.

Sources are tiny Functional models saved as ``.keras`` and uploaded to the moto bucket, so a
whole refresh (fingerprint, fetch, cut, stage, validate, publish, latest) takes seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("prefect_harness")


# --- helpers ---------------------------------------------------------------------------------


def tiny_model_bytes(tmp_path: Path, seed: int, *, nan: bool = False) -> bytes:
    """A small conv net with a residual block: stem -> block1 -> (+block2) -> block3 -> head."""
    import keras
    import numpy as np

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    x = keras.Input((8, 8, 3), name="image")
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="stem")(x)
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="block1")(h)
    b = keras.layers.Conv2D(4, 3, padding="same", name="block2")(a)
    h = keras.layers.Add(name="add")([a, b])
    h = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="block3")(h)
    out = keras.layers.Dense(2, name="head")(keras.layers.GlobalAveragePooling2D(name="pool")(h))
    model = keras.Model(x, out, name="tiny")
    if nan:
        kernel, bias = model.get_layer("block3").get_weights()
        bias[0] = np.nan
        model.get_layer("block3").set_weights([kernel, bias])
    path = tmp_path / f"tiny-{seed}-{int(nan)}.keras"
    model.save(path)
    keras.backend.clear_session()
    return path.read_bytes()


def upload(s3_client: Any, bucket: str, key: str, data: bytes) -> str:
    s3_client.put_object(Bucket=bucket, Key=key, Body=data)
    return f"s3://{bucket}/{key}"


def tiny_backbone(name: str, source: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "source": source, "start": "stem", "end": "block3", **extra}


def config(store: str, *backbones: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "store": store,
        "validation": {"samples": 2, "batch_size": 2},
        "concurrency": 2,
        "backbones": list(backbones),
        **extra,
    }


def listing(s3_client: Any, bucket: str, prefix: str = "") -> dict[str, str]:
    """Every object under ``prefix`` with its ETag: equal listings mean nothing was written."""
    out: dict[str, str] = {}
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            out[item["Key"]] = item["ETag"]
    return out


def read_json(s3_client: Any, bucket: str, key: str) -> Any:
    return json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())


def refresh(cfg: dict[str, Any], **kwargs: Any) -> tuple[Any, dict[str, dict[str, Any]]]:
    """Run the parent flow; return its state and the rows by name (from the summary or error)."""
    from kerascut.flows.refresh_backbones import refresh_backbones

    state = refresh_backbones(config=cfg, return_state=True, **kwargs)
    result = state.result(raise_on_failure=False)
    rows = result["rows"] if isinstance(result, dict) else getattr(result, "rows", [])
    return state, {row["name"]: row for row in rows}


def artifact(client: Any, key: str) -> Any:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    found = client.read_latest_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    return found[0] if found else None


# --- tests -----------------------------------------------------------------------------------


def test_publish_rerun_skips_changed_source_moves_latest(
    s3_env: dict[str, str], s3_bucket: str, s3_client: Any, tmp_path: Path, prefect_client: Any
) -> None:
    source = upload(s3_client, s3_bucket, "sources/tiny.keras", tiny_model_bytes(tmp_path, 1))
    store = f"s3://{s3_bucket}/backbones"
    cfg = config(store, tiny_backbone("tiny", source), cache_dir=str(tmp_path / "cache"))

    # 1. publish
    state, rows = refresh(cfg)
    assert state.is_completed(), state.message
    first = rows["tiny"]
    assert first["status"] == "published"
    v1 = first["version"]
    manifest = read_json(s3_client, s3_bucket, f"backbones/tiny/{v1}/manifest.json")
    assert manifest["validation"]["passed"] is True and manifest["validation"]["max_abs_diff"] == 0.0
    assert manifest["source"]["uri"] == source and manifest["cut"]["start"] == "stem"
    artifacts = {a["path"]: a for a in manifest["artifacts"]}
    assert artifacts["model.keras"]["format"] == "keras"
    # the model card, made from the manifest, committed like the other artifacts (issue 13)
    from kerascut_core.publishing import Manifest, model_card

    card = s3_client.get_object(Bucket=s3_bucket, Key=f"backbones/tiny/{v1}/README.md")["Body"].read()
    assert artifacts["README.md"]["sha256"] == hashlib.sha256(card).hexdigest()
    assert card.decode() == model_card(Manifest.model_validate(manifest))
    assert manifest["schema_version"] == 2 and manifest["outputs"][0]["address"] == "block3"
    assert manifest["inputs"][0]["replaces"] == "stem" and manifest["source"]["sha256"]
    assert manifest["lineage"]["flow_run_id"] and manifest["software"]["keras_backend"] == "tensorflow"
    if shutil.which("dot"):  # the published picture of the backbone, listed like any artifact
        assert set(artifacts) == {"model.keras", "graph.svg", "README.md"} and artifacts["graph.svg"]["format"] == "svg"
        svg = s3_client.get_object(Bucket=s3_bucket, Key=f"backbones/tiny/{v1}/graph.svg")["Body"].read()
        assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg and b"stem" in svg
    else:
        assert set(artifacts) == {"model.keras", "README.md"}
    assert read_json(s3_client, s3_bucket, "backbones/tiny/latest.json")["version"] == v1
    assert first["link"] == f"{store}/tiny/{v1}/manifest.json"
    assert not listing(s3_client, s3_bucket, "backbones/.staging/"), "staging is cleaned after publishing"

    table = artifact(prefect_client, "kerascut-refresh")
    assert table is not None and table.type == "table"
    assert "tiny" in json.dumps(table.data) and v1 in json.dumps(table.data)
    link = artifact(prefect_client, "kerascut-tiny")
    assert link is not None and link.type in ("link", "markdown") and f"tiny/{v1}/manifest.json" in link.data
    report = artifact(prefect_client, "kerascut-tiny-validation")
    assert report is not None and report.type == "markdown" and "PASSED" in report.data

    # 2. a rerun with nothing changed writes nothing
    before = listing(s3_client, s3_bucket)
    state, rows = refresh(cfg)
    assert state.is_completed()
    assert rows["tiny"]["status"] == "up-to-date" and rows["tiny"]["version"] == v1
    assert listing(s3_client, s3_bucket) == before

    # 2b. --force rebuilds and revalidates, but never rewrites a published version
    state, rows = refresh(cfg, force=True)
    assert state.is_completed(), state.message
    assert rows["tiny"]["status"] == "verified"
    assert listing(s3_client, s3_bucket) == before

    # 3. a changed source publishes a new version and moves latest
    upload(s3_client, s3_bucket, "sources/tiny.keras", tiny_model_bytes(tmp_path, 2))
    state, rows = refresh(cfg)
    assert state.is_completed(), state.message
    assert rows["tiny"]["status"] == "published"
    v2 = rows["tiny"]["version"]
    assert v2 != v1
    latest = read_json(s3_client, s3_bucket, "backbones/tiny/latest.json")
    assert latest["version"] == v2 and latest["previous"] == v1
    assert f"backbones/tiny/{v1}/manifest.json" in listing(s3_client, s3_bucket), "old versions stay"

    # 4. a run killed between the manifest and latest.json: the rerun completes the work
    s3_client.delete_object(Bucket=s3_bucket, Key="backbones/tiny/latest.json")
    state, rows = refresh(cfg)
    assert state.is_completed() and rows["tiny"]["status"] == "up-to-date"
    assert read_json(s3_client, s3_bucket, "backbones/tiny/latest.json")["version"] == v2


def test_retention_is_applied_after_each_publish_and_never_fails_it(
    s3_env: dict[str, str], s3_bucket: str, s3_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`retention: {keep_last: 1}`: each publish removes the older versions no pointer names."""
    from kerascut_core.publishing import list_versions, promote
    from kerascut_core.stores import open_store

    store = f"s3://{s3_bucket}/backbones"
    cfg = config(store, tiny_backbone("tiny", f"s3://{s3_bucket}/sources/tiny.keras"), retention={"keep_last": 1})
    published = []
    for seed in (11, 12, 13):
        upload(s3_client, s3_bucket, "sources/tiny.keras", tiny_model_bytes(tmp_path, seed))
        state, rows = refresh(cfg)
        assert state.is_completed(), state.message
        assert rows["tiny"]["status"] == "published" and rows["tiny"]["message"] == ""
        published.append(rows["tiny"]["version"])
        if seed == 11:
            promote(open_store(store), "tiny", published[0], alias="prod")  # kept by its alias
    versions = [v.version for v in list_versions(open_store(store), "tiny")]
    assert versions == [published[0], published[2]]  # the second went: neither newest nor pointed
    assert not listing(s3_client, s3_bucket, f"backbones/tiny/{published[1]}/")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("store unreachable (test)")

    monkeypatch.setattr("kerascut_core.publishing.retention.scan_versions", broken)
    upload(s3_client, s3_bucket, "sources/tiny.keras", tiny_model_bytes(tmp_path, 14))
    state, rows = refresh(cfg)
    assert state.is_completed(), state.message  # the publish stands
    assert rows["tiny"]["status"] == "published"
    assert "Retention (keep_last=1) was not applied" in rows["tiny"]["message"]
    assert len(list_versions(open_store(store), "tiny")) == 3


def test_failed_validation_publishes_nothing(
    s3_env: dict[str, str], s3_bucket: str, s3_client: Any, tmp_path: Path, prefect_client: Any
) -> None:
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    source = upload(s3_client, s3_bucket, "sources/nan.keras", tiny_model_bytes(tmp_path, 3, nan=True))
    cfg = config(f"s3://{s3_bucket}/backbones", tiny_backbone("tiny-nan", source))

    state, rows = refresh(cfg)
    assert state.is_failed()
    assert rows["tiny-nan"]["status"] == "failed"
    assert "failed validation" in rows["tiny-nan"]["message"]
    # nothing published, staging cleaned: only the store's root marker (written by the first stage) is left
    assert list(listing(s3_client, s3_bucket, "backbones/")) == ["backbones/.kerascut-store.json"]

    runs = prefect_client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["validate-backbone"])))
    assert any(r.state.is_failed() and r.name == "validate-tiny-nan" for r in runs)
    report = artifact(prefect_client, "kerascut-tiny-nan-validation")
    assert report is not None and "FAILED" in report.data


def test_one_failing_backbone_does_not_stop_the_others(
    s3_env: dict[str, str], s3_bucket: str, s3_client: Any, tmp_path: Path
) -> None:
    source = upload(s3_client, s3_bucket, "sources/tiny.keras", tiny_model_bytes(tmp_path, 4))
    cfg = config(
        f"s3://{s3_bucket}/backbones",
        tiny_backbone("bad-layer", source, end="blokc3"),
        tiny_backbone("good", source),
        tiny_backbone("needs-gpu", source, validation={"require_gpu": True}),
        tiny_backbone("missing", f"s3://{s3_bucket}/sources/nope.keras"),
    )
    state, rows = refresh(cfg)
    assert state.is_failed()
    assert "3 of 4 backbones failed" in state.message or "3 of 4 backbones failed" in str(
        state.result(raise_on_failure=False)
    )
    assert rows["good"]["status"] == "published"
    assert "blokc3" in rows["bad-layer"]["message"] and "block3" in rows["bad-layer"]["message"]
    assert rows["needs-gpu"]["status"] == "failed" and "GPU" in rows["needs-gpu"]["message"]
    assert "kerascut-gpu" in rows["needs-gpu"]["message"], "the Prefect task names its GPU work pool"
    assert rows["missing"]["status"] == "failed" and "nope.keras" in rows["missing"]["message"]

    published = listing(s3_client, s3_bucket, "backbones/")
    good = rows["good"]["version"]
    assert f"backbones/good/{good}/manifest.json" in published
    assert not any(k.startswith(("backbones/bad-layer", "backbones/needs-gpu", "backbones/missing")) for k in published)
    assert not [k for k in published if k.startswith("backbones/.staging/") and not k.endswith("claim.json")]


def test_aws_credentials_block(
    s3_env: dict[str, str], s3_bucket: str, s3_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 settings from a prefect-aws block; the secret never reaches artifacts or manifests."""
    from prefect_aws import AwsClientParameters, AwsCredentials

    source = upload(s3_client, s3_bucket, "sources/tiny.keras", tiny_model_bytes(tmp_path, 5))
    AwsCredentials(
        aws_access_key_id=s3_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=s3_env["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
        aws_client_parameters=AwsClientParameters(endpoint_url=s3_env["AWS_ENDPOINT_URL"]),
    ).save("kerascut-test-s3", overwrite=True)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key)
    from kerascut_core.aws import client as _s3

    _s3.clear_clients()
    cfg = config(f"s3://{s3_bucket}/backbones", tiny_backbone("tiny", source), aws_credentials_block="kerascut-test-s3")
    state, rows = refresh(cfg)
    assert state.is_completed(), state.message
    assert rows["tiny"]["status"] == "published"
    assert "AWS_SECRET_ACCESS_KEY" not in os.environ, "the block's values are removed after the run"


def _cli_env(s3_env: dict[str, str]) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    return {**os.environ, **s3_env, "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": str(ROOT)}


def test_noop_rerun_does_not_import_tensorflow(
    s3_env: dict[str, str], s3_bucket: str, s3_client: Any, tmp_path: Path
) -> None:
    source = upload(s3_client, s3_bucket, "sources/tiny.keras", tiny_model_bytes(tmp_path, 6))
    cfg = config(f"s3://{s3_bucket}/backbones", tiny_backbone("tiny", source))
    state, _ = refresh(cfg)
    assert state.is_completed(), state.message

    path = tmp_path / "kerascut.yaml"
    path.write_text(json.dumps(cfg))  # JSON is YAML
    code = (
        "import sys\n"
        "from kerascut_core.cli.app import main\n"
        f"rc = main(['run', {str(path)!r}])\n"
        "print('RESULT', rc, sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_cli_env(s3_env), capture_output=True, text=True, timeout=300
    )
    assert "RESULT 0 []" in out.stdout, out.stdout + out.stderr
    assert "up-to-date" in out.stdout + out.stderr


def test_cli_run_exit_code_1_and_table_when_a_backbone_fails(
    s3_env: dict[str, str], s3_bucket: str, tmp_path: Path
) -> None:
    path = tmp_path / "kerascut.yaml"
    path.write_text(
        json.dumps(config(f"s3://{s3_bucket}/backbones", tiny_backbone("gone", f"s3://{s3_bucket}/nope.keras")))
    )
    out = subprocess.run(
        [sys.executable, "-m", "kerascut_core", "run", str(path), "--quiet"],
        cwd=ROOT, env=_cli_env(s3_env), capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "gone" in out.stdout and "failed" in out.stdout  # the final table
    assert "error: 1 of 1 backbone(s) failed" in out.stderr
    assert "checking" not in out.stderr and "refreshing" not in out.stderr  # --quiet: no progress
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_quickstart_publishes_two_backbones(tmp_path: Path) -> None:
    """The README's main command, in a scratch directory (two keras.applications backbones)."""
    from prefect.settings import PREFECT_API_URL

    (tmp_path / "deployments").mkdir()
    config = (ROOT / "deployments" / "quickstart.yaml").read_text()
    (tmp_path / "deployments" / "quickstart.yaml").write_text(config)
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "kerascut_core", "run", "deployments/quickstart.yaml"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    for name in ("mobilenetv2-stride16", "resnet50-c3-c5"):
        latest = json.loads((tmp_path / "backbones" / name / "latest.json").read_text())
        manifest = json.loads((tmp_path / "backbones" / name / latest["version"] / "manifest.json").read_text())
        assert manifest["validation"]["passed"] is True and manifest["validation"]["max_abs_diff"] == 0.0
