"""Consumers and the gate on pointer moves, on a local store and the S3 API server.

A registered consumer of a pointer is never moved onto a version that breaks it (an output it
relies on removed or changed, the preprocessing changed, numbers beyond its drift bound) without
``--force --reason``, which the history records; a refresh holds ``latest`` instead and emits
``kerascut.backbone.held``; retention keeps what consumers pin; gc keeps ``consumers/``.
"""

from __future__ import annotations

import contextlib
import threading

import pytest

from kerascut_core import events
from kerascut_core.errors import (
    ConsumerBreakError,
    ObjectNotFoundError,
    PublishRefusedError,
    StoreError,
)
from kerascut_core.publishing import apply_retention, gc, promote, read_latest
from kerascut_core.publishing.consumer_registry import (
    list_consumers,
    register_consumer,
    remove_consumer,
)
from kerascut_core.publishing.history import read_history
from kerascut_core.publishing.holding import advance_latest
from kerascut_core.publishing.layout import consumer_key
from kerascut_core.publishing.listing import read_manifest
from kerascut_core.publishing.pointers import read_alias
from kerascut_core.stores import open_store
from tests.support.cli import kerascut
from tests.support.diff_world import NAME, model_files, publish_world

STORE_KINDS = ("local", "s3")
VERSIONS = ["v-base", "v-weights", "v-channels", "v-output-removed", "v-dtype"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return model_files(tmp_path_factory.mktemp("models"))


@pytest.fixture
def world(store, files):
    publish_world(store, files, VERSIONS)
    return store


def test_add_ls_rm_through_the_cli(world, store_uri):
    ref = f"{store_uri}/{NAME}"
    out = kerascut("consumers", "add", ref, "--consumer", "detector", "--outputs", "C4,C5", "--max-drift", "0.5",
                   "--reason", "trained on v-base")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{NAME}: consumer detector follows latest (now v-base) and relies on C4, C5; max drift 0.5"
    record = world.read_json(consumer_key(NAME, "detector"))
    assert record["outputs"]["C4"] == {"shape": [None, 8, 8, 4], "dtype": "float32", "channels": 4, "stride": [4, 4]}
    assert (record["follows"], record["version"], record["max_drift"]) == ("latest", "v-base", 0.5)
    assert record["preprocessing"]["mode"] == "tf"
    listed = kerascut("consumers", "ls", ref)
    assert listed.returncode == 0 and listed.stdout.splitlines()[1].split()[:5] == ["detector", "latest", "v-base",
                                                                                     "C4,C5", "0.5"]
    bad = kerascut("consumers", "add", ref, "--consumer", "x", "--outputs", "C9")
    assert bad.returncode == 1 and "C9" in bad.stderr and len(bad.stderr.splitlines()) == 1
    assert kerascut("consumers", "rm", ref, "--consumer", "detector").returncode == 0
    assert list_consumers(world, NAME) == ([], [])
    missing = kerascut("consumers", "rm", ref, "--consumer", "detector")
    assert missing.returncode == 1 and "none is registered" in missing.stderr


def test_a_breaking_promote_is_refused_and_forced_with_a_reason(world, store_uri):
    register_consumer(world, NAME, "detector", outputs=["C4"])
    ref = f"{store_uri}/{NAME}"
    out = kerascut("promote", ref, "v-channels")
    assert out.returncode == 1 and len(out.stderr.splitlines()) == 1
    assert "consumer 'detector' (output 'C4': shape (?, 8, 8, 4) -> (?, 8, 8, 8); output 'C4': channels 4 -> 8)" \
        in out.stderr and "--force --reason" in out.stderr
    assert read_latest(world, NAME) == "v-base"
    assert kerascut("promote", ref, "v-channels", "--force").returncode == 1  # a reason is required
    forced = kerascut("promote", ref, "v-channels", "--force", "--reason", "detector retrains tonight")
    assert forced.returncode == 0 and "forced past consumer detector" in forced.stderr
    assert read_latest(world, NAME) == "v-channels"
    entry = read_history(world, NAME)[0][-1]
    assert entry.reason == "detector retrains tonight"
    assert entry.override == {"forced": True, "broke": [{"consumer": "detector", "breaks": [
        "output 'C4': shape (?, 8, 8, 4) -> (?, 8, 8, 8)", "output 'C4': channels 4 -> 8"]}]}
    assert "[forced past detector]" in kerascut("history", ref).stdout


def test_compatible_moves_and_other_pointers_pass(world):
    register_consumer(world, NAME, "detector", outputs=["C4", "C5"])
    register_consumer(world, NAME, "prod-model", follows="v-base", outputs=["C5"])  # a pin follows no pointer
    promote(world, NAME, "v-weights")  # same interface: compatible
    assert read_latest(world, NAME) == "v-weights"
    promote(world, NAME, "v-base", alias="prod")
    register_consumer(world, NAME, "on-prod", follows="prod", outputs=["C5"])
    with pytest.raises(ConsumerBreakError, match=r"on-prod.*output 'C5' removed"):
        promote(world, NAME, "v-output-removed", alias="prod")
    assert read_alias(world, NAME, "prod") == "v-base"
    with pytest.raises(ConsumerBreakError, match="detector"):  # latest's consumer, not prod's
        promote(world, NAME, "v-output-removed")
    remove_consumer(world, NAME, "detector")
    promote(world, NAME, "v-output-removed")  # nobody on latest relies on C5 any more
    with pytest.raises(PublishRefusedError, match="reason"):
        promote(world, NAME, "v-base", alias="prod", force=True)


def test_a_refresh_holds_latest_and_announces_it(world):
    register_consumer(world, NAME, "detector", outputs=["C5"])
    seen: list[dict] = []
    unregister = events.register(seen.append)
    try:
        held = advance_latest(world, NAME, "v-dtype", run_id="run-1")
        moved = advance_latest(world, NAME, "v-weights", run_id="run-2")
    finally:
        unregister()
    assert (held.status, held.latest) == ("held", "v-base")
    assert held.consumers == [{"consumer": "detector", "breaks": ["output 'C5': dtype float32 -> float16"]}]
    assert (moved.status, moved.latest) == ("moved", "v-weights")
    kinds = [e["event"] for e in seen]
    assert kinds == ["kerascut.backbone.held", "kerascut.backbone.promoted"]
    assert seen[0]["payload"]["consumers"] == held.consumers and seen[0]["payload"]["latest"] == "v-base"
    promoted = seen[1]["payload"]
    assert (promoted["verdict"], promoted["compared_with"]) == ("compatible", "v-base")


def test_a_drift_bound_is_checked_on_the_numbers(world, tmp_path, monkeypatch):
    monkeypatch.setenv("KERASCUT_CACHE_DIR", str(tmp_path / "cache"))
    register_consumer(world, NAME, "tight", outputs=["C4"], max_drift=1e-6)
    with pytest.raises(ConsumerBreakError, match=r"output 'C4' drifts .* from v-base \(max drift 1e-06\)"):
        promote(world, NAME, "v-weights")
    register_consumer(world, NAME, "tight", outputs=["C4"], max_drift=1e6)  # a second add replaces the first
    promote(world, NAME, "v-weights")
    assert read_latest(world, NAME) == "v-weights"


def test_retention_keeps_what_consumers_pin_and_gc_keeps_their_records(world):
    register_consumer(world, NAME, "pinned", follows="v-channels", outputs=["C5"])
    register_consumer(world, NAME, "trained", outputs=["C4"])  # registered on v-base, which latest names
    report = apply_retention(world, keep_last=1)
    assert f"{NAME}@v-channels (named by consumer pinned)" in report.kept
    assert report.removed_versions == [f"{NAME}@v-weights", f"{NAME}@v-output-removed"]
    read_manifest(world, NAME, "v-channels")
    swept = gc(world, older_than=0)
    assert not [s for s in swept.skipped if "consumers" in s] and not [r for r in swept.removed if "consumers" in r]
    assert world.exists(consumer_key(NAME, "pinned"))
    with pytest.raises(StoreError, match="consumers"):
        register_consumer(world, NAME, "x", follows="consumers", outputs=["C5"])


def test_concurrent_registrations_and_moves(world):
    """Whichever comes second sees the other: a consumer registered without an error is never
    left on a version that breaks it, and nothing is lost."""
    results: dict[str, str] = {}
    stop = threading.Event()

    def mover() -> None:
        while not stop.is_set():
            for version in ("v-channels", "v-base"):
                with contextlib.suppress(ConsumerBreakError):
                    promote(world, NAME, version)

    def registrar(i: int) -> None:
        try:
            register_consumer(world, NAME, f"c{i}", outputs=["C4"])
            results[f"c{i}"] = "ok"
        except ConsumerBreakError:
            results[f"c{i}"] = "moved meanwhile"

    threads = [threading.Thread(target=mover)] + [threading.Thread(target=registrar, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join()
    stop.set()
    threads[0].join()
    final = read_manifest(world, NAME, read_latest(world, NAME))
    consumers, problems = list_consumers(world, NAME)
    assert problems == [] and [c.consumer for c in consumers] == ["c0", "c1", "c2", "c3"]
    forced = [e for e in read_history(world, NAME)[0] if e.override]
    assert forced == []
    for record in consumers:
        if results[record.consumer] == "ok" and record.version == "v-base":
            assert record.breaks(final) == [], (record.consumer, final.version)


def test_unknown_consumer_and_bad_drift(world):
    with pytest.raises(ObjectNotFoundError, match="none is registered"):
        remove_consumer(world, NAME, "ghost")
    with pytest.raises(StoreError, match="max-drift"):
        register_consumer(world, NAME, "x", outputs=["C4"], max_drift=-1.0)


def test_open_store_helper_is_the_same(store_uri, world):
    assert open_store(store_uri).root_uri == world.root_uri


def test_an_unreadable_consumer_record_holds_the_moves(world):
    world.put_bytes(consumer_key(NAME, "broken"), b"{not json")
    with pytest.raises(ConsumerBreakError, match=r"\(unreadable record\)"):
        promote(world, NAME, "v-weights")
    assert advance_latest(world, NAME, "v-weights").status == "held"
    world.delete(consumer_key(NAME, "broken"))
    assert advance_latest(world, NAME, "v-weights").status == "moved"
