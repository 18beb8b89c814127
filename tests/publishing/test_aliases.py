"""Aliases and the pointer history (issue 13 item 3), on a local store and the S3 API server.

``<name>/aliases/<alias>.json`` names a version like ``latest.json`` does; every move of any
pointer appends one create-only ``<name>/history/<stamp>-<8 hex>.json``; ``@x`` resolves an alias
first, then a version; gc never removes either directory.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from kerascut_core import load_backbone, open_store
from kerascut_core.errors import (
    IntegrityError,
    ObjectNotFoundError,
    PublishRefusedError,
    StoreError,
)
from kerascut_core.publishing import (
    commit_version,
    gc,
    promote,
    read_latest,
    stage_candidate,
    update_latest,
)
from kerascut_core.publishing.consumer import pull, resolve
from kerascut_core.publishing.history import read_history
from kerascut_core.publishing.layout import alias_key, history_dir, version_dir
from kerascut_core.publishing.pointers import read_alias, scan_aliases
from tests.cli.test_cli_store import kerascut, one_line_error
from tests.publishing.test_consumer import tiny_model_file  # noqa: F401  (a fixture)
from tests.publishing.test_publish import candidate, make_manifest, publish

HEX = "0123456789abcdef"


STORE_KINDS = ("local", "s3")


@pytest.fixture
def versions(store, tmp_path):
    """mnv2 with v1, v2, v3 committed and latest on v3."""
    for v in ("v1", "v2", "v3"):
        publish(store, tmp_path, version=v, payload=v.encode())
    update_latest(store, "mnv2", "v3")
    return store


def moves(store, pointer=None):
    entries, problems = read_history(store, "mnv2")
    assert problems == []
    return [e for e in entries if pointer is None or e.pointer == pointer]


def under(store, *prefixes):
    """{key: bytes} of every object under the prefixes."""
    return {k: store.get_bytes(k) for p in prefixes for k in store.list(p)}


def test_promote_moves_a_named_alias_and_records_it(versions, monkeypatch):
    store = versions
    monkeypatch.setenv("PREFECT__FLOW_RUN_ID", "flow-run-1")
    result = promote(store, "mnv2", "v1", alias="prod", reason="passed A/B")
    assert read_alias(store, "mnv2", "prod") == "v1"
    assert read_latest(store, "mnv2") == "v3"  # latest is not touched
    stored = store.read_json(alias_key("mnv2", "prod"))
    assert {"version", "manifest", "updated_at", "previous"} <= set(stored) and stored == result
    assert (stored["version"], stored["manifest"], stored["previous"]) == ("v1", "v1/manifest.json", None)
    promote(store, "mnv2", "v2", alias="prod")
    assert store.read_json(alias_key("mnv2", "prod"))["previous"] == "v1"

    entries = moves(store, "prod")
    assert [(e.from_, e.to, e.reason, e.flow_run_id) for e in entries] == [
        (None, "v1", "passed A/B", "flow-run-1"), ("v1", "v2", None, "flow-run-1")]
    data = store.read_json(f"{history_dir('mnv2')}/{entries[0].id}.json")
    assert set(data) == {"pointer", "from", "to", "at", "by", "flow_run_id", "reason"}
    assert set(data["by"]) == {"user", "host"} and data["by"]["host"]
    assert scan_aliases(store, "mnv2") == ({"prod": "v2"}, [])


def test_every_move_of_latest_appends_one_entry(versions, monkeypatch):
    store = versions
    monkeypatch.delenv("PREFECT__FLOW_RUN_ID", raising=False)
    assert [(e.pointer, e.from_, e.to) for e in moves(store)] == [("latest", None, "v3")]  # update_latest
    update_latest(store, "mnv2", "v3")  # no move: no entry
    promote(store, "mnv2", "v1", reason="rollback")  # pins latest
    update_latest(store, "mnv2", "v2")  # pinned: no move, no entry
    promote(store, "mnv2", "v2", pin=False)
    update_latest(store, "mnv2", "v3", run_id="scheduled")
    assert [(e.from_, e.to, e.reason) for e in moves(store, "latest")] == [
        (None, "v3", None), ("v3", "v1", "rollback"), ("v1", "v2", None), ("v2", "v3", None)]
    assert all(e.flow_run_id is None for e in moves(store))
    ids = [e.id for e in moves(store)]
    assert ids == sorted(ids) and len(set(ids)) == 4
    # `--alias latest` is latest itself
    promote(store, "mnv2", "v1", alias="latest")
    assert read_latest(store, "mnv2") == "v1" and not store.list("mnv2/aliases")


def test_an_alias_names_only_committed_validated_whole_versions(versions, tmp_path):
    store = versions
    before = under(store, "mnv2")
    store.put_bytes("mnv2/v4/model.keras", b"uncommitted")
    with pytest.raises(ObjectNotFoundError, match="no such published version"):
        promote(store, "mnv2", "v4", alias="prod")
    uri = stage_candidate(store, "mnv2", "v5", candidate(tmp_path, b"v5"))
    with pytest.raises(PublishRefusedError):  # commit refuses it; a hand-written manifest is refused too
        commit_version(store, "mnv2", "v5", uri, make_manifest("mnv2", "v5", passed=False))
    store.put_bytes("mnv2/v5/manifest.json", make_manifest("mnv2", "v5", passed=False).to_json().encode())
    with pytest.raises(IntegrityError, match="validation did not pass"):
        promote(store, "mnv2", "v5", alias="prod")
    store.put_bytes("mnv2/v1/model.keras", b"V1", overwrite=True)  # same size, other bytes
    with pytest.raises(IntegrityError, match="sha256") as info:
        promote(store, "mnv2", "v1", alias="prod")
    assert "\n" not in str(info.value)
    assert read_alias(store, "mnv2", "prod") is None
    assert {k for k in under(store, "mnv2") if "/aliases/" in k or "/history/" in k} == \
        {k for k in before if "/history/" in k}


@pytest.mark.parametrize("alias, fragment", [
    (HEX, "look like a version"), ("manifest", "reserved for a store object"), ("../x", "one path segment"),
    ("a" * 129, "one path segment"), ("prod\n", "one path segment"),
])
def test_bad_alias_names_are_refused(versions, alias, fragment):
    store = versions
    before = under(store, "mnv2")
    with pytest.raises(StoreError, match=fragment) as info:
        promote(store, "mnv2", "v1", alias=alias)
    assert "\n" not in str(info.value) and str(info.value).startswith("Expected")
    assert under(store, "mnv2") == before


def test_reserved_names_are_never_versions():
    for name in ("aliases", "history"):
        with pytest.raises(StoreError, match="reserved"):
            version_dir("mnv2", name)


def test_resolve_alias_then_version(versions, tmp_path):
    store = versions
    publish(store, tmp_path, version=HEX, payload=b"hex")
    promote(store, "mnv2", "v1", alias="prod")
    root = store.root_uri
    assert resolve(f"{root}/mnv2@prod")[2] == "v1"
    assert resolve(f"{root}/mnv2", version="prod")[2] == "v1"
    assert resolve(f"{root}/mnv2@v2")[2] == "v2"
    assert resolve(f"{root}/mnv2@{HEX}")[2] == HEX
    assert resolve(f"{root}/mnv2@latest")[2] == "v3" == resolve(f"{root}/mnv2")[2]
    # an alias named like a version can only be planted by hand, and @<version> ignores it
    store.put_json(f"mnv2/aliases/{HEX}.json", {"version": "v2"})
    assert resolve(f"{root}/mnv2@{HEX}")[2] == HEX
    assert scan_aliases(store, "mnv2")[0] == {"prod": "v1"}
    with pytest.raises(ObjectNotFoundError, match="no alias of that name") as info:
        resolve(f"{root}/mnv2@prud")
    assert "Did you mean 'prod'?" in str(info.value) and "\n" not in str(info.value)
    _, out = pull(f"{root}/mnv2@prod", tmp_path / "out", cache_dir=tmp_path / "cache")
    assert (out / "model.keras").read_bytes() == b"v1"


def test_an_alias_on_a_removed_version_says_so(versions):
    store = versions
    promote(store, "mnv2", "v1", alias="prod")
    store.delete("mnv2/v1/manifest.json")
    with pytest.raises(ObjectNotFoundError, match=r"@prod: it names v1, which is not published.*--alias prod"):
        resolve(f"{store.root_uri}/mnv2@prod")


def test_load_backbone_at_an_alias(store, tiny_model_file, tmp_path):  # noqa: F811
    path, expected = tiny_model_file
    for v in ("v1", "v2"):
        uri = stage_candidate(store, "tiny", v, {"model.keras": path})
        commit_version(store, "tiny", v, uri, make_manifest("tiny", v))
    update_latest(store, "tiny", "v2")
    promote(store, "tiny", "v1", alias="prod")
    model = load_backbone(f"{store.root_uri}/tiny@prod", cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(model.predict(np.ones((2, 4), "float32"), verbose=0), expected)
    assert any(p.name == "v1" for p in (tmp_path / "cache").rglob("v1"))


def test_concurrent_promotes_to_one_alias_lose_nothing(versions, tmp_path):
    """4 promotes at once of 4 versions to one alias: one wins, 4 entries, a consistent chain."""
    store = versions
    publish(store, tmp_path, version="v4", payload=b"v4")
    targets = ["v1", "v2", "v3", "v4"]
    start = threading.Barrier(len(targets))
    errors = []

    def mover(version: str) -> None:
        try:
            # each thread its own store object (its own client), as separate processes would have
            mine = open_store(store.root_uri)
            start.wait()
            promote(mine, "mnv2", version, alias="prod", reason=f"to {version}")
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=mover, args=(v,)) for v in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    entries = moves(store, "prod")
    assert len(entries) == 4 and sorted(e.to for e in entries) == targets
    assert entries[0].from_ is None
    assert [e.from_ for e in entries[1:]] == [e.to for e in entries[:-1]]  # in the order applied
    assert read_alias(store, "mnv2", "prod") == entries[-1].to
    assert [e.reason for e in entries] == [f"to {e.to}" for e in entries]
    assert store.read_json(alias_key("mnv2", "prod"))["previous"] == entries[-1].from_


def test_a_move_whose_entry_was_not_written_is_shown_from_the_pointer(versions):
    """A writer that dies between the pointer and its entry: the entry is shown from the pointer
    until the next move, which records only its own move (a pointer file is not evidence of a
    move, so nothing in it is copied into the create-only history); its ``from`` keeps the chain."""
    store = versions
    promote(store, "mnv2", "v1", alias="prod")
    lost = moves(store, "prod")[0]
    store.delete(f"{history_dir('mnv2')}/{lost.id}.json")  # as if the writer died right there
    assert moves(store, "prod") == [lost]  # read_history takes it from the pointer
    promote(store, "mnv2", "v2", alias="prod")
    assert not store.exists(f"{history_dir('mnv2')}/{lost.id}.json")
    assert [(e.from_, e.to) for e in moves(store, "prod")] == [("v1", "v2")]


def test_gc_leaves_aliases_and_history_byte_for_byte(versions, tmp_path):
    store = versions
    promote(store, "mnv2", "v1", alias="prod", reason="r")
    promote(store, "mnv2", "v2", alias="staging")
    promote(store, "mnv2", "v2")
    store.put_bytes("mnv2/9999999999999999/model.keras", b"leftover")  # real garbage beside them
    store.put_bytes("mnv2/history/notes.txt", b"planted by hand")  # not ours, but under history/
    kept = under(store, "mnv2/aliases", "mnv2/history")
    assert len([k for k in kept if k.startswith("mnv2/history/")]) == 5 and len(kept) == 7
    for dry_run in (True, False):
        report = gc(store, older_than=0, dry_run=dry_run)
        assert not [r for r in report.removed if "/aliases/" in r or "/history/" in r]
    assert not store.exists("mnv2/9999999999999999/model.keras")
    assert under(store, "mnv2/aliases", "mnv2/history") == kept
    out = kerascut("gc", store.root_uri, "--older-than", "0")
    assert out.returncode == 0, out.stderr
    assert under(store, "mnv2/aliases", "mnv2/history") == kept


def test_gc_keeps_a_local_temp_file_under_history(tmp_path):
    store = open_store(tmp_path / "store")
    publish(store, tmp_path)
    update_latest(store, "mnv2", "v1")
    temp = tmp_path / "store" / "mnv2" / "history" / ".kerascut-tmp-crashed"
    temp.write_bytes(b"x")
    gc(store, older_than=0)
    assert temp.read_bytes() == b"x"


def test_cli_promote_ls_history_and_pull(versions, tmp_path):
    store = versions
    ref = f"{store.root_uri}/mnv2"
    out = kerascut("promote", ref, "v1", "--alias", "prod", "--reason", "ok\x1b[2J")
    assert out.returncode == 0, out.stderr
    assert "mnv2: prod is now v1" in out.stdout and "pinned" not in out.stdout
    assert "no such published version" in one_line_error(kerascut("promote", ref, "v9", "--alias", "prod"))
    assert "look like a version" in one_line_error(kerascut("promote", ref, "v2", "--alias", HEX))
    assert "--no-pin only" in one_line_error(kerascut("promote", ref, "v2", "--alias", "prod", "--no-pin"))

    rows = json.loads(kerascut("ls", store.root_uri, "--json").stdout)
    assert rows == [{"name": "mnv2", "latest": "v3", "versions": 3, "aliases": {"prod": "v1"}}]
    assert "prod=v1" in kerascut("ls", store.root_uri).stdout
    rows = json.loads(kerascut("ls", store.root_uri, "mnv2", "--json").stdout)
    assert [(r["version"], r["latest"], r["aliases"]) for r in rows] == [
        ("v1", False, ["prod"]), ("v2", False, []), ("v3", True, [])]
    table = kerascut("ls", store.root_uri, "mnv2").stdout.splitlines()
    assert "ALIASES" in table[0] and " prod " in table[1] and table[3].startswith("* v3")

    history = json.loads(kerascut("history", ref, "--json").stdout)
    assert [(h["pointer"], h["from"], h["to"]) for h in history] == [("latest", None, "v3"), ("prod", None, "v1")]
    assert history[1]["reason"] == "ok\x1b[2J"
    text = kerascut("history", ref)
    assert text.returncode == 0 and "\x1b" not in text.stdout and "ok\\x1b[2J" in text.stdout
    assert "POINTER" in text.stdout.splitlines()[0]

    out = kerascut("pull", f"{ref}@prod", "-o", str(tmp_path / "out"), "-q", "--cache-dir", str(tmp_path / "c"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "out" / "model.keras").read_bytes() == b"v1"
