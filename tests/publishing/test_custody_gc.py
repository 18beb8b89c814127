"""gc and retention touch only the protocol's own objects, and pointers never dangle.

On a local store, the S3 API server and a versioned bucket (the ``store`` fixture): objects are
aged by hand on a local store, and gc runs with ``older_than=0`` on every kind. On a versioned
bucket a manifest deleted by mistake leaves a recoverable version that gc reports and keeps.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time

import pytest

from kerascut_core.errors import ObjectNotFoundError
from kerascut_core.publishing import gc, promote, read_manifest, update_latest, verify_version
from kerascut_core.publishing.history import read_history
from kerascut_core.publishing.retention import apply_retention
from tests.publishing.test_retention import committed, publish

A, B = "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"


def _age(store, rel: str) -> None:
    """Make ``rel`` a month old on a local store (S3 objects cannot be aged: gc runs with
    ``older_than=0`` on every kind)."""
    root = getattr(store, "root", None)
    if root is not None:
        old = time.time() - 30 * 86400
        os.utime(root / rel, (old, old))


def test_gc_never_deletes_a_persons_files_under_a_backbone(store, store_kind, tmp_path):
    publish(store, tmp_path, "mnv2", A)
    update_latest(store, "mnv2", A)
    mine = {"mnv2/notes/decision.md": b"keep", "mnv2/eval-results/run1/metrics.json": b"{}",
            "mnv2/ABCDEF0123456789/model.keras": b"upper"}
    for rel, data in mine.items():
        store.put_bytes(rel, data)
        _age(store, rel)
    store.put_bytes("mnv2/cccccccccccccccc/model.keras", b"leftover")  # a real uncommitted version dir
    _age(store, "mnv2/cccccccccccccccc/model.keras")
    report = gc(store, older_than=0)
    assert all(store.get_bytes(rel) == data for rel, data in mine.items())
    assert not store.exists("mnv2/cccccccccccccccc/model.keras")
    assert sum("not a directory kerascut creates" in s for s in report.skipped) == 3


@pytest.mark.parametrize("expires", ["soon", None, "1e999", "nan"])
def test_a_bad_claim_is_reported_and_gc_goes_on(store, store_kind, tmp_path, expires):
    publish(store, tmp_path, "mnv2", A)
    body = {"run_id": "r", "token": "t", "host": "elsewhere", "pid": 1}
    text = json.dumps(body)[:-1] + ', "expires_at": ' + {"soon": '"soon"', None: "null", "1e999": "1e999", "nan": "NaN"}[expires] + "}"
    store.put_bytes(".staging/mnv2/dddddddddddddddd/claim.json", text.encode())
    store.put_bytes("mnv2/eeeeeeeeeeeeeeee/model.keras", b"leftover")
    _age(store, "mnv2/eeeeeeeeeeeeeeee/model.keras")
    report = gc(store, older_than=0)
    # named in one line: by the claim rule (expires_at) or, for 1e999 and NaN, by the store's JSON parse
    assert any("claim.json" in s and ("expires_at" in s or "number" in s.lower() or "finite" in s.lower()) for s in report.skipped), report.skipped
    assert store.exists(".staging/mnv2/dddddddddddddddd/claim.json")  # recent: not provably stale yet
    assert not store.exists("mnv2/eeeeeeeeeeeeeeee/model.keras")  # gc went on


@pytest.mark.parametrize("pause", [0.0, 1.1], ids=["same-second", "next-second"])
def test_a_skewed_committer_clock_does_not_make_a_new_version_delete_itself(store, store_kind, tmp_path, pause):
    """S3 stamps whole seconds: within one, a created_at a year ahead counts as the oldest."""
    publish(store, tmp_path, "mnv2", A)
    data = json.loads(store.get_bytes(f"mnv2/{A}/manifest.json"))
    data["created_at"] = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=365)).isoformat()
    store.put_bytes(f"mnv2/{A}/manifest.json", json.dumps(data).encode(), overwrite=True)
    time.sleep(pause)
    publish(store, tmp_path, "mnv2", B)
    report = apply_retention(store, 1)
    assert report.removed_versions == [f"mnv2@{A}"] and committed(store) == [B]


def test_a_forged_last_move_never_becomes_history(store, store_kind, tmp_path):
    publish(store, tmp_path, "mnv2", A)
    publish(store, tmp_path, "mnv2", B)
    promote(store, "mnv2", A, alias="prod")
    pointer = json.loads(store.get_bytes("mnv2/aliases/prod.json"))
    pointer["last_move"] = {**pointer["last_move"], "id": "20200101T000000.000000Z-00000000",
                            "reason": "approved by security review", "at": "2020-01-01T00:00:00+00:00"}
    store.put_bytes("mnv2/aliases/prod.json", json.dumps(pointer).encode(), overwrite=True)
    promote(store, "mnv2", B, alias="prod")
    entries = read_history(store, "mnv2")[0]
    assert not any(e.reason == "approved by security review" for e in entries)
    assert not store.exists("mnv2/history/20200101T000000.000000Z-00000000.json")


def test_a_move_onto_a_removed_version_is_refused_and_nothing_written(store, store_kind, tmp_path):
    publish(store, tmp_path, "mnv2", A)
    update_latest(store, "mnv2", A)
    publish(store, tmp_path, "mnv2", B)
    apply_retention(store, 1)  # A is named by latest: kept
    assert committed(store) == [A, B]
    store.delete(f"mnv2/{B}/manifest.json")
    before = store.get_bytes("mnv2/latest.json")
    with pytest.raises(ObjectNotFoundError):
        update_latest(store, "mnv2", B)
    assert store.get_bytes("mnv2/latest.json") == before


def test_a_manifest_deleted_by_mistake_on_a_versioned_bucket_is_recoverable(s3_versioned_bucket, s3_client, tmp_path):
    from kerascut_core.stores import open_store

    store = open_store(f"s3://{s3_versioned_bucket}/backbones")
    publish(store, tmp_path, "mnv2", A)
    publish(store, tmp_path, "mnv2", B)
    update_latest(store, "mnv2", B)
    key = f"backbones/mnv2/{A}/manifest.json"
    s3_client.delete_object(Bucket=s3_versioned_bucket, Key=key)  # a person's mistake: a delete marker

    def versions() -> list[tuple[str, str]]:
        listed = s3_client.list_object_versions(Bucket=s3_versioned_bucket, Prefix=f"backbones/mnv2/{A}/")
        return sorted((v["Key"], v["VersionId"]) for v in listed.get("Versions", []))

    before = versions()
    for dry_run in (True, False):  # both report it, neither removes any of it
        report = gc(store, older_than=0, dry_run=dry_run)
        (line,) = report.recoverable
        assert store.uri(f"mnv2/{A}") in line and "aws s3api copy-object" in line
        assert not any(f"mnv2/{A}/" in removed for removed in report.removed)
        assert versions() == before
    assert apply_retention(store, 1).removed == []  # not committed now: nothing for retention either
    assert versions() == before

    # the reported command restores it: copy the newest object version back
    version_id = line.split("?versionId=", 1)[1].split('"', 1)[0]
    s3_client.copy_object(Bucket=s3_versioned_bucket, Key=key,
                          CopySource={"Bucket": s3_versioned_bucket, "Key": key, "VersionId": version_id})
    assert read_manifest(store, "mnv2", A).version == A
    assert verify_version(store, "mnv2", A, from_bytes=True) == []
