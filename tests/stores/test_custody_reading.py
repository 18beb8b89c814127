"""Reading a store defensively, in bounded memory, in the store's own order.

Every JSON object a store holds (pointers, aliases, claims, history entries, manifests) is
parsed through one bounded parse: depth, integer size, non-finite numbers and item count are
one-line StoreErrors naming the file, never a RecursionError or a ValueError. Listings (``ls``,
``show``, ``history``) skip and report a bad entry and show the rest. Listings keep one small
record per version, never the manifests, and order versions by the store's time of each
manifest, not by the committer's clock. Local stores and the S3 API server (moto, a real
subprocess reached over HTTP); each CLI case compares the store and a sentinel directory outside
it byte for byte before and after.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import subprocess
import time
import tracemalloc
import types
from pathlib import Path
from typing import Any

import pytest

from kerascut_core import open_store
from kerascut_core.errors import StoreError
from kerascut_core.publishing import (
    commit_version,
    list_versions,
    promote,
    read_manifest,
    scan_versions,
    stage_candidate,
    update_latest,
)
from kerascut_core.publishing.history import new_entry, read_history
from kerascut_core.publishing.layout import alias_key, history_key, latest_key, manifest_key
from kerascut_core.publishing.manifest import Manifest
from kerascut_core.stores import MAX_JSON_DEPTH, MAX_JSON_INT_DIGITS, parse_json
from tests.publishing.test_publish import make_manifest
from tests.support.cli import kerascut as cli

V1, V2, V3 = "0a1b2c3d4e5f6071", "1b2c3d4e5f607182", "2c3d4e5f60718293"

#: store files that parse badly, as a careless or hostile writer leaves them
HOSTILE: dict[str, bytes] = {
    "deep": b"[" * 400_000 + b"]" * 400_000,
    "deep-object": b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    "big-int": b'{"version": ' + b"7" * 5_000 + b"}",
    "nan": b'{"version": "0a1b2c3d4e5f6071", "expires_at": NaN}',
    "infinity": b'{"version": "0a1b2c3d4e5f6071", "expires_at": -Infinity}',
    "overflow": b'{"version": "0a1b2c3d4e5f6071", "expires_at": 1e999}',
    "many-items": b"[" + b"0," * 400_000 + b"0]",
    "not-json": b"\xff\xfe\x00garbage",
    "truncated": b'{"version": "0a1b2c3d',
}
REASON = {
    "deep": "nested", "deep-object": "nested", "big-int": "digits", "nan": "NaN", "infinity": "Infinity",
    "overflow": "not finite", "many-items": "items", "not-json": "not valid JSON", "truncated": "not valid JSON",
}


# -- the parse itself ---------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_parse_json_refuses_in_one_line_naming_the_file(case):
    with pytest.raises(StoreError) as err:
        parse_json(HOSTILE[case], "s3://b/store/mnv2/aliases/prod.json")
    message = str(err.value)
    assert "\n" not in message and len(message) < 400
    assert message.startswith("Cannot parse s3://b/store/mnv2/aliases/prod.json: ")
    assert REASON[case] in message
    assert message.endswith("Restore or delete it.")


def test_parse_json_keeps_what_kerascut_writes():
    value = {"version": V1, "n": -(10 ** (MAX_JSON_INT_DIGITS - 1)), "x": 1.5e300, "s": "[[[{{{,,,", "e": "\u202e"}
    nested: Any = value
    for _ in range(MAX_JSON_DEPTH - 1):
        nested = [nested]
    assert parse_json(json.dumps(nested).encode(), "x.json") == nested
    # brackets and commas inside strings (escaped quotes included) are text, not structure
    text = {"k": '\\"' + "[" * 10_000 + '"', "l": "," * 300_000}
    assert parse_json(json.dumps(text).encode(), "x.json") == text


# -- stores: local and the S3 API server ---------------------------------------------------------
@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return open_store(tmp_path / "store")
    return open_store(f"s3://{request.getfixturevalue('s3_bucket')}/backbones")


def publish(store, tmp_path: Path, version: str, *, name: str = "mnv2", payload: bytes | None = None, **extra) -> None:
    path = tmp_path / f"cand-{version}.keras"
    path.write_bytes(payload or version.encode())
    uri = stage_candidate(store, name, version, {"model.keras": path})
    body = {**make_manifest(name, version).model_dump(), **extra}
    assert commit_version(store, name, version, uri, Manifest.model_validate(body)).committed


@pytest.fixture
def published(store, tmp_path):
    for version in (V1, V2, V3):
        publish(store, tmp_path, version)
    update_latest(store, "mnv2", V3)
    promote(store, "mnv2", V1, alias="prod", reason="passed A/B")
    promote(store, "mnv2", V2, alias="canary")
    return store


@pytest.mark.parametrize("case", ["deep", "big-int", "nan", "overflow", "many-items"])
@pytest.mark.parametrize("where", ["latest", "alias", "history", "claim"])
def test_store_json_objects_are_one_line_store_errors(published, case, where):
    entry = new_entry("prod", V1, V2)
    key = {
        "latest": latest_key("mnv2"),
        "alias": alias_key("mnv2", "prod"),
        "history": history_key("mnv2", entry.id),
        "claim": ".staging/mnv2/3d4e5f6071829304/claim.json",
    }[where]
    published.put_bytes(key, HOSTILE[case], overwrite=True)
    with pytest.raises(StoreError) as err:
        published.read_json(key)
    assert str(err.value).startswith(f"Cannot parse {published.uri(key)}: ")
    assert REASON[case] in str(err.value)


@pytest.mark.parametrize("case", ["deep", "big-int", "nan", "many-items", "wrong-type"])
def test_a_bad_manifest_is_reported_and_the_listing_goes_on(published, case):
    body = b'{"name": "mnv2", "version": 7}' if case == "wrong-type" else HOSTILE[case]
    published.put_bytes(manifest_key("mnv2", V2), body, overwrite=True)
    versions, problems = scan_versions(published, "mnv2")
    assert [v.version for v in versions] == [V1, V3]
    assert len(problems) == 1 and published.uri(manifest_key("mnv2", V2)) in problems[0]
    assert "\n" not in problems[0]
    with pytest.raises(StoreError, match=r"Cannot (parse|read) .*manifest\.json: "):
        read_manifest(published, "mnv2", V2)


def test_history_skips_a_bad_entry_and_a_bad_pointer(published):
    entries, problems = read_history(published, "mnv2")
    assert problems == [] and len(entries) == 3
    bad = new_entry("prod", V1, V2)
    published.put_bytes(history_key("mnv2", bad.id), HOSTILE["nan"], overwrite=True)
    published.put_bytes(alias_key("mnv2", "canary"), HOSTILE["deep"], overwrite=True)
    entries, problems = read_history(published, "mnv2")
    assert len(entries) == 3
    assert len(problems) == 2
    assert any(published.uri(history_key("mnv2", bad.id)) in p and "NaN" in p for p in problems)
    assert any(published.uri(alias_key("mnv2", "canary")) in p and "nested" in p for p in problems)


# -- the CLI: one warning line per bad entry, the rest shown, nothing changed ---------------------
def kerascut(*args: str) -> Any:
    return cli(*args, timeout=120)


def _local_tree(root: Path) -> dict[str, str]:
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and ".kerascut-locks" not in path.parts:
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def snapshot(store, sentinel: Path) -> dict[str, Any]:
    """Every byte of the store (every object of its bucket on S3) and of a directory outside it."""
    if hasattr(store, "root"):
        inside = _local_tree(store.root)
    else:
        client = store.client
        inside = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket):
            for item in page.get("Contents", []):
                body = client.get_object(Bucket=store.bucket, Key=item["Key"])["Body"].read()
                inside[item["Key"]] = hashlib.sha256(body).hexdigest()
    return {"store": inside, "sentinel": _local_tree(sentinel)}


@pytest.fixture
def sentinel(tmp_path):
    where = tmp_path / "outside"
    where.mkdir()
    (where / "notes.md").write_text("a person's file beside the store\n")
    return where


def warnings_of(out: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in out.stderr and "unexpected" not in out.stderr, out.stderr
    return [line for line in out.stderr.splitlines() if line.startswith("warning: ")]


@pytest.mark.parametrize("case", ["deep", "big-int"])
def test_one_bad_alias_breaks_neither_ls_show_nor_history(published, sentinel, case):
    key = alias_key("mnv2", "canary")
    published.put_bytes(key, HOSTILE[case], overwrite=True)
    before = snapshot(published, sentinel)
    uri = published.root_uri

    out = kerascut("ls", uri, "mnv2", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["version"] for r in rows] == [V1, V2, V3]
    assert [r["aliases"] for r in rows] == [["prod"], [], []]
    (warning,) = warnings_of(out)
    assert published.uri(key) in warning and REASON[case] in warning

    out = kerascut("ls", uri)
    assert out.returncode == 0 and "prod=" + V1 in out.stdout and V3 in out.stdout
    assert len(warnings_of(out)) == 1

    out = kerascut("show", f"{uri}/mnv2@{V1}")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"mnv2@{V1}  (prod)") and f"latest -> {V3}" in out.stdout
    assert len(warnings_of(out)) == 1

    out = kerascut("history", f"{uri}/mnv2", "--json")
    assert out.returncode == 0, out.stderr
    assert [(e["pointer"], e["to"]) for e in json.loads(out.stdout)] == [("latest", V3), ("prod", V1), ("canary", V2)]
    assert len(warnings_of(out)) == 1
    assert snapshot(published, sentinel) == before


def test_a_bad_latest_hides_no_version(published, sentinel):
    published.put_bytes(latest_key("mnv2"), HOSTILE["nan"], overwrite=True)
    bad_entry = new_entry("latest", V2, V3)
    published.put_bytes(history_key("mnv2", bad_entry.id), HOSTILE["deep-object"])
    before = snapshot(published, sentinel)
    uri = published.root_uri

    out = kerascut("ls", uri, "mnv2", "--json")
    assert out.returncode == 0, out.stderr
    assert [(r["version"], r["latest"]) for r in json.loads(out.stdout)] == [(V1, False), (V2, False), (V3, False)]
    assert any("latest.json" in w and "NaN" in w for w in warnings_of(out))

    out = kerascut("show", f"{uri}/mnv2@{V2}")
    assert out.returncode == 0, out.stderr
    assert "latest -> -" in out.stdout and "canary -> " + V2 in out.stdout
    assert any("latest.json" in w for w in warnings_of(out))

    out = kerascut("show", f"{uri}/mnv2")  # latest itself cannot be resolved: one line, a store error
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1
    assert out.stderr.startswith(f"error: Cannot parse {published.uri(latest_key('mnv2'))}: NaN ")
    assert "--debug" not in out.stderr  # a known error, not an unexpected one

    out = kerascut("history", f"{uri}/mnv2")
    assert out.returncode == 0, out.stderr
    shown = warnings_of(out)
    assert len(shown) == 2 and any(bad_entry.id in w and "nested" in w for w in shown)
    assert out.stdout.count(V1) >= 1 and "canary" in out.stdout
    assert snapshot(published, sentinel) == before


def test_ls_reports_a_manifest_with_a_huge_integer_and_lists_the_rest(published, sentinel):
    body = json.loads(read_manifest(published, "mnv2", V2).to_json())
    body["params"]["kept"] = int("9" * 4_000)  # within Python's own limit, far over kerascut's
    text = json.dumps(body).encode()
    published.put_bytes(manifest_key("mnv2", V2), text, overwrite=True)
    before = snapshot(published, sentinel)
    out = kerascut("ls", published.root_uri, "mnv2", "--json")
    assert out.returncode == 0, out.stderr
    assert [r["version"] for r in json.loads(out.stdout)] == [V1, V3]
    (warning,) = warnings_of(out)
    assert "manifest.json" in warning and "4000 digits" in warning
    assert snapshot(published, sentinel) == before


# -- order: the store's, not the committer's clock ----------------------------------------------
def committed_by_clock(monkeypatch, offset: dt.timedelta) -> None:
    """Commit as a worker whose clock is ``offset`` off (commit stamps ``created_at`` from it)."""
    from kerascut_core.publishing import commit

    class Skewed(dt.datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[override]
            return dt.datetime.now(tz) + offset

    monkeypatch.setattr(commit, "dt", types.SimpleNamespace(datetime=Skewed, timezone=dt.timezone))


def test_versions_are_listed_in_commit_order_whatever_created_at_says(store, tmp_path, sentinel, monkeypatch):
    with monkeypatch.context() as patch:
        committed_by_clock(patch, dt.timedelta(days=365))  # a worker whose clock runs a year ahead
        publish(store, tmp_path, V3)
    time.sleep(1.1)  # S3 reports times to the second
    publish(store, tmp_path, V1)
    time.sleep(1.1)
    with monkeypatch.context() as patch:
        committed_by_clock(patch, -dt.timedelta(days=9000))  # and one a quarter of a century behind
        publish(store, tmp_path, V2)
    versions, problems = scan_versions(store, "mnv2")
    assert problems == []
    assert [v.version for v in versions] == [V3, V1, V2]
    assert versions[0].created_at > dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=300)
    assert versions[2].created_at.year < 2010
    assert versions[0].last_modified < versions[1].last_modified < versions[2].last_modified
    before = snapshot(store, sentinel)
    out = kerascut("ls", store.root_uri, "mnv2", "--json")
    assert [r["version"] for r in json.loads(out.stdout)] == [V3, V1, V2]
    table = kerascut("ls", store.root_uri, "mnv2").stdout.splitlines()[1:]
    assert [line.split()[0] for line in table] == [V3, V1, V2]
    assert snapshot(store, sentinel) == before


# -- memory: one small record per version, never the manifests ----------------------------------
def test_listing_records_hold_no_manifest_but_can_read_it(store, tmp_path):
    publish(store, tmp_path, V1, warnings=["w" * 1000] * 50)
    (info,) = list_versions(store, "mnv2")
    held = [getattr(info, f.name) for f in dataclasses.fields(info)]
    assert not any(isinstance(value, Manifest) for value in held)
    assert (info.name, info.version, info.passed, info.size, info.source_uri) == (
        "mnv2", V1, True, len(V1.encode()), "keras.applications/MobileNetV2")
    assert info.manifest == read_manifest(store, "mnv2", V1)  # read again when asked for
    assert len(info.manifest.warnings) == 50


def test_listing_memory_is_that_of_one_manifest(tmp_path):
    """Peak traced memory of scan_versions over 12 versions with 1 MB manifests stays near one's."""
    store = open_store(tmp_path / "store")
    many = [f"{i:016x}" for i in range(12)]
    rows = [{"row": i, "diff": i * 0.5, "name": f"layer_{i}"} for i in range(15_000)]  # ~1 MB of small items

    def peak(name: str) -> int:
        tracemalloc.start()
        try:
            versions, problems = scan_versions(store, name)
            assert problems == [] and versions
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    publish(store, tmp_path, many[0], name="one", validation={"passed": True, "max_abs_diff": 0.0, "rows": rows})
    for version in many:
        publish(store, tmp_path, version, name="many", validation={"passed": True, "max_abs_diff": 0.0, "rows": rows})
    assert len(list_versions(store, "many")) == 12
    one, twelve = peak("one"), peak("many")
    assert one > 1_000_000  # the manifest was parsed whole
    assert twelve < 1.5 * one, (one, twelve)
