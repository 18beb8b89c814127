"""Publishing: staging, the commit protocol (manifest last, claims), latest.json, listing, gc."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import multiprocessing
import os
import threading

import pytest

from kerascut_core.errors import (
    ObjectExistsError,
    ObjectNotFoundError,
    PreconditionFailedError,
    PublishRefusedError,
)
from kerascut_core.publishing import (
    CLAIM,
    commit_version,
    gc,
    list_backbones,
    list_versions,
    promote,
    read_latest,
    read_manifest,
    stage_candidate,
    staged_artifacts,
    update_latest,
    verify_version,
)
from kerascut_core.publishing.history import read_history
from kerascut_core.publishing.manifest import Manifest


def make_manifest(name: str, version: str, passed: bool = True, **extra) -> Manifest:
    return Manifest(
        name=name,
        version=version,
        source={"uri": "keras.applications/MobileNetV2", "fingerprint": "fp", "weights": "none"},
        cut={"end": "block_13_expand_relu"},
        inputs=[{"name": "input", "shape": [None, 96, 96, 3], "dtype": "float32"}],
        outputs=[{"name": "out", "shape": [None, 6, 6, 576], "dtype": "float32"}],
        params={"total_source": 100, "kept": 60},
        validation={"passed": passed, "max_abs_diff": 0.0},
        **extra,
    )


def candidate(tmp_path, payload: bytes = b"model-bytes") -> os.PathLike:
    path = tmp_path / f"cand-{payload[:8].hex()}.keras"
    path.write_bytes(payload)
    return path


def publish(store, tmp_path, name="mnv2", version="v1", payload=b"model-bytes", **kwargs):
    uri = stage_candidate(store, name, version, {"model.keras": candidate(tmp_path, payload)})
    return commit_version(store, name, version, uri, make_manifest(name, version), **kwargs)


def test_stage_commit_latest(store, tmp_path):
    uri = stage_candidate(store, "mnv2", "v1", {"model.keras": candidate(tmp_path), "graph.svg": candidate(tmp_path, b"<svg/>")})
    assert "/.staging/mnv2/v1/" in uri and uri.endswith("/model.keras")
    artifacts = staged_artifacts(store, uri, "mnv2", "v1")
    assert {a.path: a.format for a in artifacts} == {"model.keras": "keras", "graph.svg": "svg"}
    assert list_versions(store, "mnv2") == []  # staged is not published

    result = commit_version(store, "mnv2", "v1", uri, make_manifest("mnv2", "v1"))
    assert result.committed and result.uri == store.uri("mnv2/v1")
    assert sorted(store.list("mnv2/v1")) == ["mnv2/v1/graph.svg", "mnv2/v1/manifest.json", "mnv2/v1/model.keras"]
    assert store.get_bytes("mnv2/v1/model.keras") == b"model-bytes"
    manifest = read_manifest(store, "mnv2", "v1")
    assert {a.path for a in manifest.artifacts} == {"model.keras", "graph.svg"}
    assert verify_version(store, "mnv2", "v1") == []
    assert store.list(".staging") == []  # the candidate and the claim are cleaned up

    assert read_latest(store, "mnv2") is None
    latest = update_latest(store, "mnv2", "v1")
    assert latest["version"] == "v1" and read_latest(store, "mnv2") == "v1"
    assert [v.version for v in list_versions(store, "mnv2")] == ["v1"]
    assert list_versions(store, "mnv2")[0].latest
    assert list_backbones(store) == ["mnv2"]


def test_rerun_of_a_committed_version_is_skipped_and_never_overwrites(store, tmp_path):
    publish(store, tmp_path, payload=b"first")
    again = publish(store, tmp_path, payload=b"second-save-differs")
    assert again.status == "exists" and not again.committed
    assert store.get_bytes("mnv2/v1/model.keras") == b"first"
    with pytest.raises(ObjectExistsError):
        store.put_bytes("mnv2/v1/model.keras", b"evil")
    with pytest.raises(ObjectExistsError):
        store.put_bytes("mnv2/v1/manifest.json", b"{}")
    assert verify_version(store, "mnv2", "v1") == []


def test_refuses_without_a_passing_validation(store, tmp_path):
    uri = stage_candidate(store, "mnv2", "v1", candidate(tmp_path))
    with pytest.raises(PublishRefusedError, match="validation did not pass") as info:
        commit_version(store, "mnv2", "v1", uri, make_manifest("mnv2", "v1", passed=False))
    assert "\n" not in str(info.value)
    assert store.list("mnv2") == []


def test_refuses_artifacts_that_differ_from_the_candidate(store, tmp_path):
    uri = stage_candidate(store, "mnv2", "v1", candidate(tmp_path))
    manifest = make_manifest("mnv2", "v1", artifacts=[{"path": "model.keras", "format": "keras", "bytes": 3, "sha256": "0" * 64}])
    with pytest.raises(PublishRefusedError, match="do not match"):
        commit_version(store, "mnv2", "v1", uri, manifest)
    assert store.list("mnv2") == []


def test_incomplete_candidate_is_refused(store, tmp_path):
    uri = stage_candidate(store, "mnv2", "v1", candidate(tmp_path))
    store.delete(store.key_of(uri).rsplit("/", 1)[0] + "/staged.json")  # a staging cut short
    with pytest.raises(PublishRefusedError, match="incomplete"):
        commit_version(store, "mnv2", "v1", uri, make_manifest("mnv2", "v1"))


def test_crashed_writer_leftovers_are_replaced_by_the_rerun(store, tmp_path):
    """A dead writer left a claim and a half-committed version directory: the rerun completes it."""
    store.put_bytes("mnv2/v1/model.keras", b"partial-from-dead-writer")
    store.put_json(".staging/mnv2/v1/claim.json", {"run_id": "dead", "token": "t", "host": "elsewhere", "pid": 1,
                                                   "expires_at": 0})
    assert list_versions(store, "mnv2") == []  # never listed without a manifest
    with pytest.raises(ObjectNotFoundError):
        read_manifest(store, "mnv2", "v1")
    result = publish(store, tmp_path, payload=b"rerun")
    assert result.committed
    assert store.get_bytes("mnv2/v1/model.keras") == b"rerun"
    assert verify_version(store, "mnv2", "v1") == []
    assert not store.exists(f".staging/mnv2/v1/{CLAIM}")


def test_claim_of_a_dead_local_process_is_taken_over_at_once(store, tmp_path):
    import socket

    proc = multiprocessing.get_context("spawn").Process(target=int)
    proc.start()
    proc.join()
    store.put_json(".staging/mnv2/v1/claim.json", {"run_id": "killed", "token": "t", "host": socket.gethostname(),
                                                   "pid": proc.pid, "expires_at": 4e9})
    assert publish(store, tmp_path, wait_seconds=0).committed


def test_live_claim_makes_a_second_writer_wait_then_refuse(store, tmp_path):
    store.put_json(".staging/mnv2/v1/claim.json", {"run_id": "busy", "token": "t", "host": "elsewhere", "pid": 1,
                                                   "expires_at": 4e9})
    with pytest.raises(PreconditionFailedError, match="run busy") as info:
        publish(store, tmp_path, wait_seconds=0.3)
    assert "\n" not in str(info.value)
    assert store.list("mnv2") == []


def test_concurrent_writers_of_one_version_commit_exactly_once(store, tmp_path):
    results, errors = [], []

    def writer(i: int) -> None:
        try:
            results.append(publish(store, tmp_path, payload=f"save-{i}".encode()))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(r.status for r in results) == ["committed", "exists", "exists", "exists"]
    winner = next(r for r in results if r.committed)
    assert all(r.manifest.artifacts == winner.manifest.artifacts for r in results)
    assert verify_version(store, "mnv2", "v1") == []


def test_latest_race_loses_no_update(store, tmp_path):
    for v in ("v1", "v2", "v3"):
        publish(store, tmp_path, version=v, payload=v.encode())
    errors = []

    def mover(i: int) -> None:
        try:
            for j in range(4):
                update_latest(store, "mnv2", ("v1", "v2", "v3")[(i + j) % 3], run_id=f"r{i}-{j}", promoted=True)
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=mover, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    latest = store.read_json("mnv2/latest.json")
    entries = read_history(store, "mnv2")[0]  # every move is recorded in the pointer history
    assert len(entries) == 24 and all(e.pointer == "latest" for e in entries)
    assert latest["version"] == entries[-1].to
    assert all(a.to == b.from_ for a, b in itertools.pairwise(entries))  # one chain: no move lost


def test_latest_refuses_an_uncommitted_version(store, tmp_path):
    store.put_bytes("mnv2/v9/model.keras", b"x")
    with pytest.raises(ObjectNotFoundError, match="not published") as info:
        update_latest(store, "mnv2", "v9")
    assert "\n" not in str(info.value)
    assert not store.exists("mnv2/latest.json")


def test_promote_rolls_back_and_forward(store, tmp_path):
    publish(store, tmp_path, version="v1", payload=b"1")
    publish(store, tmp_path, version="v2", payload=b"2")
    update_latest(store, "mnv2", "v2")
    promote(store, "mnv2", "v1")
    assert read_latest(store, "mnv2") == "v1"
    promote(store, "mnv2", "v2")
    assert read_latest(store, "mnv2") == "v2"
    with pytest.raises(ObjectNotFoundError, match=r"Did you mean .*'v1'"):
        promote(store, "mnv2", "v3")


def test_gc_removes_orphans_and_never_committed_versions(store, tmp_path):
    publish(store, tmp_path, version="v1")
    update_latest(store, "mnv2", "v1")
    stage_candidate(store, "mnv2", "v2", candidate(tmp_path, b"orphan"))           # staged, never committed
    store.put_bytes("mnv2/v3/model.keras", b"leftover")                              # partial version dir
    store.put_json(".staging/mnv2/v3/claim.json", {"run_id": "dead", "token": "t", "host": "x", "pid": 1, "expires_at": 0})
    committed = [*sorted(store.list("mnv2/v1")), "mnv2/latest.json", *store.list("mnv2/history")]  # + the pointer history

    fresh = gc(store, older_than=dt.timedelta(hours=1))
    assert fresh.removed == []  # nothing is old enough yet
    dry = gc(store, older_than=0, dry_run=True)
    assert dry.removed and store.exists("mnv2/v3/model.keras")
    report = gc(store, older_than=0)
    assert store.uri("mnv2/v3/model.keras") in report.removed
    assert store.list(".staging") == []
    assert not store.exists("mnv2/v3/model.keras")
    assert sorted(store.list("mnv2")) == sorted(committed)
    assert verify_version(store, "mnv2", "v1") == []


def test_gc_keeps_a_live_commit(store, tmp_path):
    uri = stage_candidate(store, "mnv2", "v2", candidate(tmp_path))
    run_id = store.key_of(uri).split("/")[3]
    store.put_json(".staging/mnv2/v2/claim.json", {"run_id": run_id, "token": "t", "host": "x", "pid": 1, "expires_at": 4e9})
    gc(store, older_than=0)
    assert store.exists(store.key_of(uri))
    assert store.exists(".staging/mnv2/v2/claim.json")


def test_manifest_json_is_the_schema(store, tmp_path):
    publish(store, tmp_path)
    data = json.loads(store.get_bytes("mnv2/v1/manifest.json"))
    assert set(data) == {"schema_version", "name", "version", "created_at", "source", "cut", "inputs", "outputs",
                         "params", "artifacts", "validation", "software", "preprocessing", "warnings", "lineage", "changes"}


_KILL_SCRIPT = r"""
import os, sys, time
from kerascut_core import open_store
from kerascut_core.publishing import commit_version, stage_candidate
from tests.publishing.test_publish import make_manifest

store = open_store(sys.argv[1])
path = sys.argv[2]
uri = stage_candidate(store, "mnv2", "v1", {"model.keras": path, "graph.svg": path})

def stall(n):  # called after each artifact is copied: stop after the first one
    print("copied", flush=True)
    time.sleep(600)

commit_version(store, "mnv2", "v1", uri, make_manifest("mnv2", "v1"), progress=stall)
"""


def test_sigkilled_commit_is_completed_by_the_rerun(store, tmp_path):
    """A writer SIGKILLed mid-commit (claim held, one artifact copied) does not block the rerun."""
    import subprocess
    import sys

    source = candidate(tmp_path, b"killed-writer")
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, store.uri(""), str(source)],
                            stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert proc.stdout.readline().strip() == "copied"
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert store.exists(".staging/mnv2/v1/claim.json")
    assert store.list("mnv2/v1") != [] and not store.exists("mnv2/v1/manifest.json")
    assert list_versions(store, "mnv2") == []  # the half-committed version is invisible

    result = publish(store, tmp_path, payload=b"rerun", wait_seconds=5)  # same host, dead pid: no lease wait
    assert result.committed
    assert store.get_bytes("mnv2/v1/model.keras") == b"rerun"
    assert not store.exists("mnv2/v1/graph.svg")  # the dead writer's leftover went
    assert verify_version(store, "mnv2", "v1") == []
    gc(store, older_than=0)
    assert store.list(".staging") == []


def test_promote_pins_latest_against_automatic_updates(store, tmp_path):
    for v in ("v1", "v2", "v3"):
        publish(store, tmp_path, version=v, payload=v.encode())
    update_latest(store, "mnv2", "v2")
    assert promote(store, "mnv2", "v1")["pinned"] is True  # a person rolls back
    kept = update_latest(store, "mnv2", "v3", run_id="scheduled")  # the next refresh does not undo it
    assert kept["version"] == "v1" and kept["pinned"]
    assert read_latest(store, "mnv2") == "v1"
    promote(store, "mnv2", "v2", pin=False)
    assert update_latest(store, "mnv2", "v3")["version"] == "v3"


_RACE_SCRIPT = r"""
import json, sys
from kerascut_core import open_store
from kerascut_core.publishing import commit_version, stage_candidate, update_latest
from tests.publishing.test_publish import make_manifest

store = open_store(sys.argv[1])
uri = stage_candidate(store, "mnv2", "v1", {"model.keras": sys.argv[2]})
result = commit_version(store, "mnv2", "v1", uri, make_manifest("mnv2", "v1"), wait_seconds=120)
latest = update_latest(store, "mnv2", "v1", run_id=sys.argv[3])
print(json.dumps({"status": result.status, "sha256": result.manifest.artifacts[0].sha256, "latest": latest["version"]}))
"""


def test_concurrent_processes_publish_one_copy(store, tmp_path):
    """Four processes race to publish the same version (each saved different bytes)."""
    import subprocess
    import sys

    procs = []
    for i in range(4):
        source = candidate(tmp_path, f"process-{i}".encode())
        procs.append(subprocess.Popen([sys.executable, "-c", _RACE_SCRIPT, store.uri(""), str(source), f"p{i}"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ)))
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out))
    assert sorted(o["status"] for o in outputs) == ["committed", "exists", "exists", "exists"]
    assert len({o["sha256"] for o in outputs}) == 1  # every run reports the one copy that was published
    assert all(o["latest"] == "v1" for o in outputs)
    assert verify_version(store, "mnv2", "v1") == []
    assert read_latest(store, "mnv2") == "v1"
    assert store.list(".staging") == []  # claims released, every candidate discarded
