"""Events for downstream automation (issue 14 item 2): the core's emitter registry and payloads.

A recording emitter is registered through the core API (``kerascut_core.events.register``);
versions are published, promoted, aliased and rolled back on a real local store, and the events
it received are compared with what the store says. The Prefect emitter is checked for when it is
active and how it maps an event; sending to a real server is tests/flows/test_events_prefect.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from kerascut_core import events
from kerascut_core.publishing import promote, read_manifest, update_latest
from tests.publishing.test_publish import publish

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def recorded():
    seen: list[dict[str, Any]] = []
    unregister = events.register(seen.append)
    yield seen
    unregister()


STORE_KINDS = ("local",)


def _only(seen, name):
    return [e for e in seen if e["event"] == name]


def _no_prefect_env(tmp_path: Path) -> dict[str, str]:
    """This environment without any Prefect setting, and an empty Prefect home (no profile)."""
    home = tmp_path / "prefect-home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return {**env, "PREFECT_HOME": str(home), "PYTHONPATH": str(ROOT)}


def test_publish_emits_published_and_the_latest_move(store, tmp_path, recorded):
    result = publish(store, tmp_path, version="v1", payload=b"one")
    assert result.committed
    (published,) = _only(recorded, events.PUBLISHED)
    manifest = read_manifest(store, "mnv2", "v1")
    assert published["resource"] == {"id": "kerascut.backbone.mnv2", "name": "mnv2", "kerascut.version": "v1"}
    assert published["related"] == [{"id": f"kerascut.store.{store.root_uri}", "role": "store", "name": store.root_uri}]
    assert published["payload"] == {
        "store": store.root_uri, "name": "mnv2", "version": "v1",
        "manifest_uri": store.uri("mnv2/v1/manifest.json"),
        "model_sha256": manifest.artifact("model.keras").sha256,
        "verdict": None, "verdict_reasons": [], "compared_with": None,  # nothing published before it
    }
    assert published["id"] and published["occurred"].endswith("+00:00")
    assert _only(recorded, events.PROMOTED) == []  # committing does not move latest

    # the same version again: already published, nothing new to announce
    assert not publish(store, tmp_path, version="v1", payload=b"one").committed
    assert len(_only(recorded, events.PUBLISHED)) == 1

    update_latest(store, "mnv2", "v1", run_id="r1")
    (moved,) = _only(recorded, events.PROMOTED)
    assert moved["payload"]["pointer"] == "latest" and moved["payload"]["alias"] is None
    assert moved["payload"]["previous_version"] is None
    assert moved["payload"]["manifest_uri"] == published["payload"]["manifest_uri"]
    assert moved["payload"]["model_sha256"] == published["payload"]["model_sha256"]
    update_latest(store, "mnv2", "v1")  # a no-op: no move, no event
    assert len(_only(recorded, events.PROMOTED)) == 1


def test_promote_alias_and_rollback_each_emit_promoted(store, tmp_path, recorded):
    for v in ("v1", "v2"):
        publish(store, tmp_path, version=v, payload=v.encode())
    update_latest(store, "mnv2", "v2")
    recorded.clear()

    promote(store, "mnv2", "v1", reason="roll back: accuracy drop")  # a rollback of latest
    promote(store, "mnv2", "v1", alias="prod", reason="passed A/B")  # an alias set
    promote(store, "mnv2", "v2", alias="prod")                       # and moved
    got = [(e["payload"]["pointer"], e["payload"]["alias"], e["payload"]["previous_version"],
            e["payload"]["version"], e["payload"]["reason"]) for e in recorded]
    assert got == [
        ("latest", None, "v2", "v1", "roll back: accuracy drop"),
        ("prod", "prod", None, "v1", "passed A/B"),
        ("prod", "prod", "v1", "v2", None),
    ]
    assert all(e["event"] == events.PROMOTED for e in recorded)
    assert recorded[1]["resource"]["kerascut.alias"] == "prod" and "kerascut.alias" not in recorded[0]["resource"]
    v2 = read_manifest(store, "mnv2", "v2")
    assert recorded[2]["payload"]["model_sha256"] == v2.artifact("model.keras").sha256
    assert recorded[2]["payload"]["manifest_uri"] == store.uri("mnv2/v2/manifest.json")
    # the verdict against the version the pointer named before (the same interface: other bytes)
    assert [(e["payload"]["verdict"], e["payload"]["compared_with"]) for e in recorded] == [
        ("compatible", "v2"), (None, None), ("compatible", "v1")]


def test_a_failing_emitter_is_a_warning_and_the_move_stands(store, tmp_path, recorded):
    publish(store, tmp_path, version="v1")

    def broken(event):
        raise ConnectionError("no route to\nthe API")

    class Undecided:
        def active(self):
            raise RuntimeError("cannot tell")

        def __call__(self, event):  # pragma: no cover - never active
            raise AssertionError("called although not active")

    off = [events.register(broken), events.register(Undecided())]
    try:
        with pytest.warns(events.EventWarning) as caught:
            promote(store, "mnv2", "v1")
    finally:
        for unregister in off:
            unregister()
    messages = [str(w.message) for w in caught]
    assert any("kerascut.backbone.promoted" in m and "ConnectionError: no route to the API" in m for m in messages)
    assert any("cannot tell" in m for m in messages)
    assert all("\n" not in m for m in messages)
    assert store.read_json("mnv2/latest.json")["version"] == "v1"
    assert len(_only(recorded, events.PROMOTED)) == 1  # the other emitters still got it


@pytest.mark.timeout(60)
def test_cli_promote_replays_another_warning_once_and_returns(store, tmp_path, capsys):
    """A warning that is not an EventWarning, raised while `kerascut promote` moves the pointer,
    is replayed once after the move (it used to be replayed into the list being read: a hang)."""
    from kerascut_core.cli.app import main

    publish(store, tmp_path, version="v1")

    def chatty(event):
        warnings.warn("the emitter's own warning", UserWarning, stacklevel=1)

    unregister = events.register(chatty)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert main(["promote", store.uri("mnv2"), "v1"]) == 0
    finally:
        unregister()
    assert [str(w.message) for w in caught if w.category is UserWarning] == ["the emitter's own warning"]
    assert store.read_json("mnv2/latest.json")["version"] == "v1"
    assert "latest is now v1" in capsys.readouterr().out


def test_inactive_emitters_cost_nothing(store, tmp_path):
    calls = []

    class Off:
        def active(self):
            calls.append("active?")
            return False

        def __call__(self, event):  # pragma: no cover - never active
            calls.append(event)

    unregister = events.register(Off())
    try:
        assert not events.enabled()
        assert events.backbone_failed(store, "mnv2", reason="x") == 0
        publish(store, tmp_path, version="v1")
    finally:
        unregister()
    assert calls and set(calls) == {"active?"}


def test_each_event_asks_an_emitter_whether_it_is_active_once(store, tmp_path):
    calls: list[str] = []

    class On:
        def active(self):
            calls.append("active?")
            return True

        def __call__(self, event):
            calls.append(event["event"])

    unregister = events.register(On())
    try:
        events.backbone_failed(store, "mnv2", reason="x")
        publish(store, tmp_path, version="v1")
        events.backbone_promoted(store, {"name": "mnv2", "version": "v1", "artifacts": []},
                                 manifest_uri=store.uri("mnv2/v1/manifest.json"))
    finally:
        unregister()
    assert calls == ["active?", events.FAILED, "active?", events.PUBLISHED, "active?", events.PROMOTED]


def test_failed_event_payload(recorded):
    assert events.backbone_failed("s3://team/backbones", "mnv2", version="v9", reason="CandidateRejected:\n  NaN") == 1
    (failed,) = recorded
    assert failed["event"] == events.FAILED
    assert failed["payload"] == {"store": "s3://team/backbones", "name": "mnv2", "version": "v9",
                                 "manifest_uri": None, "model_sha256": None, "reason": "CandidateRejected: NaN"}
    assert failed["related"][0]["id"] == "kerascut.store.s3://team/backbones"


def test_the_prefect_emitter_is_an_entry_point_and_the_core_imports_no_prefect(tmp_path):
    """Publish, promote and the CLI's promote, with the entry points loaded and no API configured:
    nothing of Prefect is imported, and the Prefect emitter says it is inactive."""
    code = f"""
import sys, importlib.metadata as md
sys.path.insert(0, {str(ROOT)!r})
from pathlib import Path
from kerascut_core import events, open_store
from kerascut_core.publishing import promote
from kerascut_core.cli.app import main
from tests.publishing.test_publish import publish
eps = {{e.name: e.value for e in md.entry_points(group=events.ENTRY_POINT_GROUP)}}
assert eps == {{"prefect": "kerascut.flows.events:emitter"}}, eps
store = open_store(Path({str(tmp_path)!r}) / "store")
publish(store, Path({str(tmp_path)!r}), version="v1")
promote(store, "mnv2", "v1", alias="prod")
assert main(["promote", store.uri("mnv2"), "v1"]) == 0
assert [type(e).__name__ for e in events._entry_point_emitters()] == ["PrefectEmitter"]
assert not events.enabled()
print(sorted(m for m in sys.modules if m == "prefect" or m.startswith("prefect.")))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=_no_prefect_env(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert "warning" not in out.stderr


def test_the_prefect_emitter_is_active_only_with_an_api(tmp_path, monkeypatch):
    from kerascut.flows import events as prefect_events

    env = _no_prefect_env(tmp_path)
    monkeypatch.setattr(os, "environ", dict(env))  # no API; the profile file does not exist
    emitter = prefect_events.PrefectEmitter()
    assert not emitter.active()
    (tmp_path / "prefect-home" / "profiles.toml").write_text('active = "x"\n[profiles.x]\n')
    assert not emitter.active()
    os.environ["PREFECT_API_URL"] = "http://127.0.0.1:9/api"
    assert emitter.active()


def test_the_prefect_event_of_a_core_event(recorded):
    from kerascut.flows.events import to_prefect

    events.backbone_promoted("s3://team/backbones", {"name": "mnv2", "version": "v2", "artifacts": [
        {"path": "model.keras", "format": "keras", "sha256": "ab" * 32, "bytes": 3}]}, pointer="prod", previous="v1",
        manifest_uri="s3://team/backbones/mnv2/v2/manifest.json")
    (event,) = recorded
    prefect_event = to_prefect(event)
    assert prefect_event.event == "kerascut.backbone.promoted"
    assert prefect_event.resource.id == "kerascut.backbone.mnv2"
    assert dict(prefect_event.resource)["kerascut.alias"] == "prod"
    (store,) = prefect_event.related
    assert store.id == "kerascut.store.s3://team/backbones" and store.role == "store"
    assert prefect_event.payload["model_sha256"] == "ab" * 32
    assert prefect_event.payload["manifest_uri"] == "s3://team/backbones/mnv2/v2/manifest.json"
    assert str(prefect_event.id) == event["id"]
    json.dumps(prefect_event.model_dump(mode="json"))


def test_the_downstream_example_trigger():
    """deployments/downstream.yaml: on kerascut.backbone.published for mnv2, the manifest URI as
    the parameter (the real automation is created in tests/flows/test_events_prefect.py)."""
    sys.path.insert(0, str(ROOT / "deployments"))
    try:
        import downstream_example
    finally:
        sys.path.remove(str(ROOT / "deployments"))
    (trigger,) = downstream_example.triggers()
    assert trigger.expect == {"kerascut.backbone.published"}
    assert trigger.match.root == {"prefect.resource.id": "kerascut.backbone.mnv2"}
    assert trigger.parameters == {"manifest_uri": "{{ event.payload.manifest_uri }}"}
    assert downstream_example.backbone_ref("s3://team/backbones/mnv2/3f9a/manifest.json") == "s3://team/backbones/mnv2@3f9a"
    with pytest.raises(ValueError, match=r"manifest\.json"):
        downstream_example.backbone_ref("s3://team/backbones/mnv2/3f9a/model.keras")


def test_each_failure_of_a_refresh_is_announced_once(prefect_harness, tmp_path, recorded):
    """A refresh (real flow runs, harness API) with a source that is missing and one whose model
    outputs NaN: both rows fail as before, and each has one kerascut.backbone.failed (the check's
    from the refresh, the failed validation's from prepare-backbone), with the version and why."""
    from tests.flows.test_flows import config, refresh, tiny_backbone, tiny_model_bytes

    source = tmp_path / "nan.keras"
    source.write_bytes(tiny_model_bytes(tmp_path, 3, nan=True))
    store = str(tmp_path / "store")
    state, rows = refresh(config(store, tiny_backbone("tiny-nan", str(source)),
                                 tiny_backbone("missing", str(tmp_path / "nope.keras"))))
    assert state.is_failed() and {r["status"] for r in rows.values()} == {"failed"}
    failed = {e["payload"]["name"]: e for e in _only(recorded, events.FAILED)}
    assert sorted(failed) == ["missing", "tiny-nan"] and len(_only(recorded, events.FAILED)) == 2
    nan = failed["tiny-nan"]
    assert nan["resource"]["id"] == "kerascut.backbone.tiny-nan" and nan["payload"]["store"] == store
    assert nan["payload"]["version"] == rows["tiny-nan"]["version"]
    assert "failed validation" in nan["payload"]["reason"]
    assert nan["payload"]["reason"] == rows["tiny-nan"]["message"]  # the event and the table agree
    assert failed["missing"]["payload"]["version"] is None and "nope.keras" in failed["missing"]["payload"]["reason"]
    assert failed["missing"]["payload"]["reason"] == rows["missing"]["message"]
    assert _only(recorded, events.PUBLISHED) == []

    # A worker without the config's imports: prepare-backbone fails before any model loads, and
    # still announces itself once (the fan-out sends no event for a FAILED run).
    from kerascut.flows.prepare_backbone import prepare_backbone

    recorded.clear()
    state = prepare_backbone(backbone=tiny_backbone("needs-layers", str(source)), store=store, version="v1",
                             fingerprint="f", imports=["kerascut_no_such_layers"], return_state=True)
    assert state.is_failed()
    (no_import,) = _only(recorded, events.FAILED)
    assert no_import["payload"]["name"] == "needs-layers" and no_import["payload"]["version"] == "v1"
    assert "kerascut_no_such_layers" in no_import["payload"]["reason"]
    assert no_import["payload"]["reason"] == " ".join(str(state.result(raise_on_failure=False)).split())
