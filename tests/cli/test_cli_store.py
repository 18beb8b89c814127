"""`kerascut ls / pull / promote / gc` through the real CLI, on a local store and the S3 API server."""

from __future__ import annotations

import json
import subprocess

import pytest

from kerascut_core import open_store
from kerascut_core.publishing import read_latest, stage_candidate, update_latest
from tests.publishing.test_publish import publish
from tests.support.cli import kerascut as run_kerascut


def kerascut(*args: str, env: dict[str, str] | None = None, process: bool = False):
    """The CLI, in this process (tests/support/cli.py) unless ``process``."""
    return run_kerascut(*args, env=env, timeout=120, process=process)


def one_line_error(out: subprocess.CompletedProcess) -> str:
    assert out.returncode != 0, out.stdout
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


STORE_KINDS = ("local", "s3")
#: an uncommitted version directory (gc removes only directories named like a version)
V4 = "4444444444444444"


@pytest.fixture
def published(store_uri, tmp_path):
    store = open_store(store_uri)
    publish(store, tmp_path, version="v1", payload=b"one")
    publish(store, tmp_path, version="v2", payload=b"two")
    update_latest(store, "mnv2", "v2")
    stage_candidate(store, "mnv2", "v3", {"model.keras": tmp_path / "cand-6f6e65.keras"})  # staged, not published
    store.put_bytes(f"mnv2/{V4}/model.keras", b"uncommitted")  # a crashed commit's leftover
    return store


def test_ls_lists_only_committed_versions(published, store_uri):
    out = kerascut("ls", store_uri)
    assert out.returncode == 0, out.stderr
    assert "mnv2" in out.stdout and "v2" in out.stdout
    out = kerascut("ls", store_uri, "mnv2", "--json")
    rows = json.loads(out.stdout)
    assert [r["version"] for r in rows] == ["v1", "v2"]
    assert [r["latest"] for r in rows] == [False, True]
    assert all(r["problems"] == [] for r in rows)
    table = kerascut("ls", store_uri, "mnv2").stdout
    assert "* v2" in table and "v3" not in table and V4 not in table


def test_pull_writes_verified_files(published, store_uri, tmp_path):
    out = kerascut("pull", f"{store_uri}/mnv2@v1", "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "out" / "model.keras").read_bytes() == b"one"
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["version"] == "v1"
    out = kerascut("pull", f"{store_uri}/mnv2", "-o", str(tmp_path / "latest"), "-q", "--cache-dir", str(tmp_path / "c"))
    assert out.returncode == 0 and out.stderr == ""
    assert (tmp_path / "latest" / "model.keras").read_bytes() == b"two"


def test_pull_refuses_a_corrupt_artifact(published, store_uri, tmp_path):
    published.put_bytes("mnv2/v1/model.keras", b"ONE", overwrite=True)  # same size, other bytes
    out = kerascut("pull", f"{store_uri}/mnv2@v1", "-o", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c"))
    assert "does not match the manifest" in one_line_error(out)
    assert not (tmp_path / "out" / "model.keras").exists()


def test_promote_rolls_back(published, store_uri):
    out = kerascut("promote", f"{store_uri}/mnv2", "v1")
    assert out.returncode == 0, out.stderr
    assert "latest is now v1 (was v2); pinned" in out.stdout
    assert read_latest(published, "mnv2") == "v1"
    line = one_line_error(kerascut("promote", f"{store_uri}/mnv2", V4))  # uncommitted
    assert "no such published version" in line
    assert read_latest(published, "mnv2") == "v1"


def test_gc_never_touches_committed_versions(published, store_uri):
    before = sorted(k for k in published.list("mnv2") if k.startswith(("mnv2/v1/", "mnv2/v2/", "mnv2/history/")) or k == "mnv2/latest.json")
    dry = kerascut("gc", store_uri, "--older-than", "0s", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert any(f"mnv2/{V4}/model.keras" in r for r in json.loads(dry.stdout)["removed"])
    assert published.exists(f"mnv2/{V4}/model.keras")
    recent = kerascut("gc", store_uri)  # default 24h: everything here is recent
    assert recent.returncode == 0 and published.exists(f"mnv2/{V4}/model.keras")
    out = kerascut("gc", store_uri, "--older-than", "0")
    assert out.returncode == 0, out.stderr
    assert sorted(published.list("mnv2")) == before
    assert published.list(".staging") == []


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["ls", "{store}", "../x"], "one path segment"),
        (["ls", "s3://bucket/a/../b"], "'..'"),
        (["pull", "{store}/mnv2@nope", "-o", "{tmp}/o"], "not published"),
        (["pull", "{store}/..", "-o", "{tmp}/o"], "one path segment"),
        (["promote", "{store}/mnv2@v1", "v2"], "without @version"),
        (["gc", "{store}", "--older-than", "soon"], "30m, 24h or 7d"),
    ],
)
def test_bad_input_is_one_line(published, store_uri, tmp_path, args, fragment):
    listing = sorted(published.list(""))
    args = [a.format(store=store_uri, tmp=tmp_path) for a in args]
    assert fragment in one_line_error(kerascut(*args))
    assert sorted(published.list("")) == listing


def test_missing_store(tmp_path, s3_env):
    assert "no such directory" in one_line_error(kerascut("ls", str(tmp_path / "nope")))
    assert "bucket does not exist" in one_line_error(kerascut("ls", "s3://kc-missing-bucket/x"))


def test_ls_verify_reports_a_corrupt_version(published, store_uri):
    published.put_bytes("mnv2/v1/model.keras", b"ONE", overwrite=True)  # same size, other bytes
    rows = {r["version"]: r for r in json.loads(kerascut("ls", store_uri, "mnv2", "--json", "--verify").stdout)}
    assert rows["v2"]["problems"] == []
    assert "sha256" in rows["v1"]["problems"][0]
    assert "BROKEN" in kerascut("ls", store_uri, "mnv2", "--verify").stdout
