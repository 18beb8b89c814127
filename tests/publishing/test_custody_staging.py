"""A staged candidate is live from its first byte: gc keeps a live run's staging, whatever its age.

A run in another process stages a candidate (its run record ``run.json`` first) while
``gc --older-than 0`` runs over and over; the run then commits. A dead run's staging goes.
Local store and the S3 API server.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from kerascut_core import open_store
from kerascut_core.publishing import gc, list_versions
from kerascut_core.publishing.claim import DEFAULT_LEASE_SECONDS
from kerascut_core.publishing.root import ensure_store_root
from kerascut_core.publishing.run_record import record_is_live

STORE_KINDS = ("local", "s3")
ROOT = Path(__file__).resolve().parents[2]
VERSION = "0123456789abcdef"

_RUN = r"""
import sys, time
from kerascut_core import open_store
from kerascut_core.publishing import commit_version, stage_candidate, update_latest
from tests.support.race_world import manifest_for

store = open_store(sys.argv[1])
files = {f"part{i}.bin": sys.argv[2] for i in range(4)}
files["model.keras"] = sys.argv[2]

def slow(n):  # staging takes a while: gc runs meanwhile
    time.sleep(0.1)

uri = stage_candidate(store, "mnv2", "0123456789abcdef", files, progress=slow)
print("staged", flush=True)
if sys.argv[3] == "die":
    import os
    os._exit(0)  # a run that dies without discarding its candidate
sys.stdin.readline()  # validation would run here
data = open(sys.argv[2], "rb").read()
manifest = manifest_for("mnv2", "0123456789abcdef", b"")
result = commit_version(store, "mnv2", "0123456789abcdef", uri, manifest.model_copy(update={"artifacts": []}))
update_latest(store, "mnv2", "0123456789abcdef")
print("committed" if result.committed else result.status, flush=True)
"""


def _run(store, tmp_path, mode: str) -> subprocess.Popen:
    payload = tmp_path / "candidate.keras"
    payload.write_bytes(b"candidate-bytes")
    return subprocess.Popen([sys.executable, "-c", _RUN, store.uri(""), str(payload), mode], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=dict(os.environ))


def _staging(store) -> list[str]:
    return [k for k in store.list(".staging/mnv2") if not k.endswith("/claim.json")]


def test_gc_older_than_0_never_removes_a_live_runs_staging(store, tmp_path):
    ensure_store_root(store)
    proc = _run(store, tmp_path, "live")
    staged = threading.Event()
    lines: list[str] = []

    def read() -> None:
        for line in proc.stdout:
            lines.append(line.strip())
            staged.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    runs = removed = 0
    try:
        while not staged.is_set() and proc.poll() is None:  # gc while the run stages
            removed += len(gc(store, older_than=0).removed)
            runs += 1
        for _ in range(3):  # and while it "validates"
            removed += len(gc(store, older_than=0).removed)
            runs += 1
        assert lines[:1] == ["staged"], lines
        assert removed == 0 and len(_staging(store)) == 7  # run.json, 5 files, staged.json
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    assert lines[-1] == "committed" and runs > 3
    assert [v.version for v in list_versions(store, "mnv2")] == [VERSION]
    assert _staging(store) == []  # the run discarded its own candidate


def test_a_dead_runs_staging_is_removed(store, tmp_path):
    ensure_store_root(store)
    proc = _run(store, tmp_path, "die")
    out, _ = proc.communicate(timeout=120)
    assert out.strip() == "staged"
    assert any(k.endswith("/run.json") for k in _staging(store))
    report = gc(store, older_than=0)
    assert _staging(store) == [] and len(report.removed) == 7


def _record(**changes) -> dict:
    import socket

    body = {"run_id": "r", "host": socket.gethostname(), "pid": os.getppid(), "proc_start": None,
            "expires_at": time.time() + 60}
    return {**body, **changes}


def test_the_run_record_rules():
    now = dt.datetime.now(dt.timezone.utc)
    assert record_is_live(_record(), now)  # this host, a live process (the test's parent)
    assert not record_is_live(_record(pid=os.getpid()), now)  # the collecting process itself
    assert not record_is_live(_record(expires_at=time.time() - 1), now)  # lease expired
    assert record_is_live(_record(host="elsewhere", pid=1), now)  # another host: its lease
    assert not record_is_live(_record(host="elsewhere", expires_at=time.time() - 1), now)
    old = now - dt.timedelta(seconds=DEFAULT_LEASE_SECONDS + 5)
    for malformed in (None, [], {"expires_at": "soon"}, {"expires_at": float("nan")}):
        assert record_is_live(malformed, now)  # not provably dead yet
        assert not record_is_live(malformed, old)  # nobody rewrote it for a whole lease


def test_a_malformed_record_keeps_its_run_until_a_lease_passes(tmp_path):
    store = open_store(tmp_path / "store")
    ensure_store_root(store)
    store.put_bytes(".staging/mnv2/0123456789abcdef/run-1/run.json", b"[[[not json")
    store.put_bytes(".staging/mnv2/0123456789abcdef/run-1/model.keras", b"x")
    report = gc(store, older_than=0)
    assert report.removed == [] and len(_staging(store)) == 2
    old = time.time() - DEFAULT_LEASE_SECONDS - 60
    for path in (store.root / ".staging/mnv2/0123456789abcdef/run-1").iterdir():
        os.utime(path, (old, old))
    gc(store, older_than=0)
    assert _staging(store) == []


def test_gc_keeps_a_run_whose_record_appeared_after_its_scan(tmp_path, monkeypatch):
    """A run that starts while gc lists the store: the record is read again before deleting."""
    store = open_store(tmp_path / "store")
    ensure_store_root(store)
    run = ".staging/mnv2/0123456789abcdef/run-2"
    store.put_bytes(f"{run}/model.keras", b"x")
    old = time.time() - 3600
    os.utime(store.root / run / "model.keras", (old, old))
    real_scan = type(store).scan

    def scan_then_start(self, prefix):
        result = real_scan(self, prefix)
        body = _record(run_id="run-2")
        self.put_bytes(f"{run}/run.json", json.dumps(body).encode())
        return result

    monkeypatch.setattr(type(store), "scan", scan_then_start)
    report = gc(store, older_than=0)
    assert store.exists(f"{run}/model.keras") and report.removed == []
