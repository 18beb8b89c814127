"""validate() on a candidate staged in S3 (a real moto server): bytes, SavedModel and data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kerascut_core as kc
from tests.fixtures.models import BUILDERS

pytestmark = pytest.mark.integration
pytest.importorskip("kerascut_core.sources.fetching", reason="needs the storage layer (fetch, stores)")

SPEC = {"start": "stem", "end": {"P2": "block2_out", "P3": "block3_out"}}


def _upload_tree(client, bucket: str, root: Path, prefix: str) -> None:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(root).as_posix()}")


def test_candidate_saved_model_and_data_from_s3(s3_client, s3_bucket, tmp_path):
    source = BUILDERS["residual"]()
    model = kc.cut(source, **SPEC)
    local = tmp_path / "staged"
    local.mkdir()
    model.save(local / "model.keras")
    model.export(str(local / "saved_model"), format="tf_saved_model", verbose=False)
    np.savez(local / "samples.npz", x=np.random.default_rng(0).normal(size=(6, 8, 8, 3)).astype("float32"))
    prefix = ".staging/tiny/v1/run-1"
    _upload_tree(s3_client, s3_bucket, local, prefix)

    report = kc.validate(
        f"s3://{s3_bucket}/{prefix}/model.keras", source, SPEC,
        formats=("keras", "saved_model"), data=f"s3://{s3_bucket}/{prefix}/samples.npz",
    )
    assert report.passed, report.failures
    assert report.samples == 6
    saved = report.formats[1]
    assert saved.origin == "artifact" and saved.passed and saved.max_abs_diff == 0.0


def test_s3_candidate_without_saved_model_is_exported(s3_client, s3_bucket, tmp_path):
    source = BUILDERS["residual"]()
    kc.cut(source, **SPEC).save(tmp_path / "model.keras")
    s3_client.upload_file(str(tmp_path / "model.keras"), s3_bucket, "c/model.keras")
    report = kc.validate(f"s3://{s3_bucket}/c/model.keras", source, SPEC, formats=("saved_model",))
    assert report.passed, report.failures
    assert report.formats[1].origin == "exported"


def test_truncated_s3_candidate_fails(s3_client, s3_bucket, tmp_path):
    source = BUILDERS["residual"]()
    kc.cut(source, **SPEC).save(tmp_path / "model.keras")
    data = (tmp_path / "model.keras").read_bytes()
    s3_client.put_object(Bucket=s3_bucket, Key="t/model.keras", Body=data[: len(data) // 3])
    report = kc.validate(f"s3://{s3_bucket}/t/model.keras", source, SPEC)
    assert not report.passed
    assert any("could not be reloaded" in f for f in report.failures)


@pytest.mark.parametrize("where", ["s3", "local"])
def test_validate_what_stage_candidate_staged(where, request, tmp_path):
    from kerascut_core.publishing import stage_candidate
    from kerascut_core.publishing.manifest import ValidationSummary
    from kerascut_core.stores import open_store

    source = BUILDERS["residual"]()
    model = kc.cut(source, **SPEC)
    model.save(tmp_path / "model.keras")
    model.export(str(tmp_path / "saved_model"), format="tf_saved_model", verbose=False)
    files = {"model.keras": tmp_path / "model.keras"}
    files.update({
        f"saved_model/{p.relative_to(tmp_path / 'saved_model').as_posix()}": p
        for p in (tmp_path / "saved_model").rglob("*") if p.is_file()
    })
    if where == "s3":
        store = open_store(f"s3://{request.getfixturevalue('s3_bucket')}/backbones")
    else:
        store = open_store(str(tmp_path / "store"))
    uri = stage_candidate(store, "tiny", "v1", files, run_id="run-1")

    report = kc.validate(uri, source, SPEC, formats=("keras", "saved_model"))
    assert report.passed, report.failures
    assert report.formats[1].origin == "artifact"
    summary = ValidationSummary.model_validate(report.model_dump(mode="json"))
    assert summary.passed is True and summary.max_abs_diff == 0.0
