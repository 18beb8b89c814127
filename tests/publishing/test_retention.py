"""Retention (issue 13 item 4): keep the newest N committed versions per backbone.

On a local store and the S3 API server (plain and versioned buckets: the claim is a conditional
write and each removal a delete of every object version).
"""

from __future__ import annotations

import json

import pytest

from kerascut_core import open_store
from kerascut_core.errors import StoreError
from kerascut_core.publishing import (
    commit_version,
    gc,
    list_versions,
    promote,
    stage_candidate,
    update_latest,
)
from kerascut_core.publishing.retention import apply_retention, retain_after_publish
from tests.cli.test_cli_store import kerascut, one_line_error
from tests.publishing.test_publish import candidate, make_manifest

#: versions in the order they are published (commit_version sets created_at): not name order on purpose
ORDER = ["e", "c", "a", "d", "b"]




def publish(store, tmp_path, name, version):
    uri = stage_candidate(store, name, version, {"model.keras": candidate(tmp_path, f"{name}-{version}".encode()),
                                                 "graph.svg": candidate(tmp_path, b"<svg/>")})
    assert commit_version(store, name, version, uri, make_manifest(name, version)).committed


@pytest.fixture
def five(store, tmp_path):
    """mnv2 with five versions (oldest first: e c a d b), latest on the oldest, prod on the next."""
    for version in ORDER:
        publish(store, tmp_path, "mnv2", version)
    update_latest(store, "mnv2", "e")
    promote(store, "mnv2", "c", alias="prod")
    return store


def listing(store):
    return set(store.list(""))


def committed(store, name="mnv2"):
    return [v.version for v in list_versions(store, name)]


def test_keeps_the_newest_n_and_every_pointed_version(five, tmp_path):
    store = five
    report = apply_retention(store, 2)
    assert report.removed_versions == ["mnv2@a"]
    assert committed(store) == ["e", "c", "d", "b"]  # e: latest, c: prod, d and b: the newest 2
    assert report.kept == ["mnv2@e (named by latest)", "mnv2@c (named by prod)"]
    assert not store.list("mnv2/a") and not store.list(".staging")  # the claim went too
    again = apply_retention(store, 2)
    assert again.removed == [] and again.removed_versions == []
    assert apply_retention(store, 10).removed == []
    publish(store, tmp_path, "mnv2", "a")  # a removed version can be published again (now the newest)
    assert committed(store) == ["e", "c", "d", "b", "a"]


def test_the_dry_run_lists_exactly_what_a_real_run_deletes(five, tmp_path):
    store = five
    publish(store, tmp_path, "other", "x1")
    publish(store, tmp_path, "other", "x2")
    before = listing(store)
    dry = apply_retention(store, 1, dry_run=True)
    assert listing(store) == before
    assert dry.removed_versions == ["mnv2@a", "mnv2@d", "other@x1"]
    real = apply_retention(store, 1)
    assert real.removed == dry.removed and real.removed_versions == dry.removed_versions
    assert before - listing(store) == {store.key_of(uri) for uri in dry.removed}
    assert listing(store) - before == set()


def test_the_manifest_goes_first(five, monkeypatch):
    store = five
    deleted = []
    real_delete = type(store).delete
    monkeypatch.setattr(type(store), "delete", lambda self, key: (deleted.append(key), real_delete(self, key))[1])
    apply_retention(store, 2)
    ours = [k for k in deleted if k.startswith("mnv2/")]
    assert ours[0] == "mnv2/a/manifest.json" and sorted(ours[1:]) == ["mnv2/a/graph.svg", "mnv2/a/model.keras"]


def test_a_crash_midway_leaves_only_what_plain_gc_removes(five, monkeypatch):
    store = five
    real_delete = type(store).delete

    def crash_after_the_manifest(self, key):
        if key.endswith("model.keras"):
            raise StoreError("Cannot delete: the process died here (test).")
        real_delete(self, key)

    monkeypatch.setattr(type(store), "delete", crash_after_the_manifest)
    report = apply_retention(store, 2)
    assert report.removed == [store.uri("mnv2/a/manifest.json"), store.uri("mnv2/a/graph.svg")]
    assert any("died here" in s for s in report.skipped)
    monkeypatch.setattr(type(store), "delete", real_delete)
    assert "a" not in committed(store)  # not committed any more: never listed or served
    assert store.exists("mnv2/a/model.keras")
    # "a" is a version named by hand through the API, not a content address: once its claim is
    # gone gc cannot tell its leftovers from a person's directory, so it reports them and leaves
    # them (tests/publishing/test_custody_gc.py shows gc removing the leftovers of a real, hex version)
    report = gc(store, older_than=0)
    assert any(s.startswith(store.uri("mnv2/a") + " (not a directory kerascut creates") for s in report.skipped)
    assert store.list("mnv2/a") == ["mnv2/a/model.keras"]
    assert committed(store) == ["e", "c", "d", "b"]


def test_a_version_being_committed_is_left(five):
    store = five
    claim = {"run_id": "r", "token": "t", "host": "elsewhere", "pid": 1, "expires_at": 4e9}
    store.put_json(".staging/mnv2/a/claim.json", claim)
    report = apply_retention(store, 2)
    assert report.removed == [] and "is committing it" in report.skipped[0]
    assert committed(store) == ["e", "c", "a", "d", "b"]
    assert store.read_json(".staging/mnv2/a/claim.json") == claim


def test_unreadable_pointers_remove_nothing(five):
    store = five
    store.put_bytes("mnv2/aliases/staging.json", b"{not json")
    before = listing(store)
    report = apply_retention(store, 1)
    assert report.removed == [] and "pointers cannot be read" in report.skipped[-1]
    assert listing(store) == before


def test_keep_last_must_be_positive(five):
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(StoreError, match="at least 1") as info:
            apply_retention(five, bad)
        assert "\n" not in str(info.value)


def test_retain_after_publish_never_raises(five, tmp_path, monkeypatch):
    store = five
    assert retain_after_publish(store, "mnv2", None).removed == []  # not configured
    report = retain_after_publish(store.root_uri, "mnv2", 2)
    assert report.error is None and report.removed_versions == ["mnv2@a"]
    assert retain_after_publish(store, "mnv2", 0).error.startswith("Retention (keep_last=0) was not applied")
    elsewhere = retain_after_publish(str(tmp_path / "elsewhere"), "mnv2", 1)  # not a store root
    assert elsewhere.error and "\n" not in elsewhere.error and not (tmp_path / "elsewhere").exists()

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("kerascut_core.publishing.retention.scan_versions", broken)
    assert "boom" in retain_after_publish(store, "mnv2", 1).error


def test_a_version_holding_a_link_is_left(tmp_path):
    store = open_store(tmp_path / "store")
    for version in ORDER:
        publish(store, tmp_path, "mnv2", version)
    (tmp_path / "store" / "mnv2" / "e" / "extra").symlink_to(tmp_path)
    report = apply_retention(store, 4)
    assert report.removed == [] and "symbolic link" in report.skipped[-1]
    assert committed(store) == ORDER


def test_cli_keep_last_dry_run_then_real_run(five, tmp_path):
    store = five
    store.put_bytes("mnv2/ffffffffffffffff/model.keras", b"uncommitted leftover")
    before = listing(store)
    dry = kerascut("gc", store.root_uri, "--keep-last", "2", "--older-than", "0", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["retention"]["removed_versions"] == ["mnv2@a"]
    assert listing(store) == before
    out = kerascut("gc", store.root_uri, "--keep-last", "2", "--older-than", "0")
    assert out.returncode == 0, out.stderr
    assert "removed" in out.stdout and "retention: removed 1 versions" in out.stderr
    gone = {store.key_of(u) for u in plan["retention"]["removed"] + plan["removed"]}
    assert before - listing(store) == gone and "mnv2/ffffffffffffffff/model.keras" in gone
    assert committed(store) == ["e", "c", "d", "b"]
    assert "--keep-last" in one_line_error(kerascut("gc", store.root_uri, "--keep-last", "0"))
    without = kerascut("gc", store.root_uri, "--older-than", "0", "--json")  # plain gc removes no committed version
    assert json.loads(without.stdout)["retention"] is None and committed(store) == ["e", "c", "d", "b"]
