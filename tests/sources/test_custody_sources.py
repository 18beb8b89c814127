"""Source caches are verified, never trusted (chain of custody: source -> cache -> cut).

Every case runs against the moto S3 API server (a real subprocess, reached by boto3 over HTTP)
and a real download cache in ``tmp_path``. The attack cases record the cache root and a
sentinel directory outside it byte for byte (``local_tree``: links recorded, never followed)
before and after, and assert what changed: a refusal changes nothing, a poisoned entry is
moved aside (never deleted) and replaced by the genuine bytes, and nothing outside the cache
is ever read through or written.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import pytest

from kerascut_core.errors import SourceError
from kerascut_core.sources import fetch, fingerprint
from kerascut_core.sources.cache import CacheWarning, DownloadCache
from kerascut_core.sources.fetching import fetch_verified
from tests.support.store_attack_world import local_tree

GENUINE = b"genuine source bytes " * 500
POISON = b"p" * len(GENUINE)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def world(tmp_path: Path, s3_client: Any, s3_bucket: str) -> dict[str, Any]:
    """A bucket holding ``m.keras``, an empty cache root and a sentinel directory beside it."""
    s3_client.put_object(Bucket=s3_bucket, Key="models/m.keras", Body=GENUINE)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "m.keras").write_bytes(POISON)
    (outside / "keep.txt").write_bytes(b"a person's file")
    cache = tmp_path / "cache"
    return {"uri": f"s3://{s3_bucket}/models/m.keras", "cache": cache, "outside": outside,
            "bucket": s3_bucket, "client": s3_client}


def _trees(w: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    return local_tree(w["cache"]), local_tree(w["outside"])


def _entry(w: dict[str, Any]) -> Path:
    (path,) = [p for p in w["cache"].rglob("m.keras") if ".quarantine-" not in str(p)]
    return path


def _one_line_refusal(info: pytest.ExceptionInfo[SourceError], *words: str) -> None:
    message = str(info.value)
    assert "\n" not in message and "Refusing" in message, message
    for word in words:
        assert word in message, message


# --- hits are verified against the recorded sha256 and the ETag now --------------------------


def test_a_clean_hit_returns_the_sha256_recorded_at_download(world: dict[str, Any]) -> None:
    first, cached = fetch_verified(world["uri"], world["cache"])
    assert cached is not None and cached.sha256 == _sha(GENUINE)
    recorded = json.loads((first.parent / "entry.json").read_text())
    assert recorded["sha256"] == _sha(GENUINE) and recorded["size"] == len(GENUINE)
    before = _trees(world)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean hit warns about nothing
        again, hit = fetch_verified(world["uri"], world["cache"])
    assert again == first and hit is not None and hit.sha256 == _sha(GENUINE)
    assert _trees(world) == before


@pytest.mark.parametrize("tamper", ["same-size bytes", "recorded sha256", "recorded etag", "garbage marker"])
def test_a_tampered_entry_is_a_miss_set_aside_and_fetched_again(world: dict[str, Any], tamper: str) -> None:
    path = fetch(world["uri"], world["cache"])
    marker = path.parent / "entry.json"
    if tamper == "same-size bytes":
        path.write_bytes(POISON)
    elif tamper == "recorded sha256":
        marker.write_text(json.dumps({**json.loads(marker.read_text()), "sha256": _sha(POISON)}))
    elif tamper == "recorded etag":
        marker.write_text(json.dumps({**json.loads(marker.read_text()), "etag": "0" * 32}))
    else:
        marker.write_text("[" * 400_000 + "]" * 400_000)  # deep JSON: not a marker, a plain miss
    outside = local_tree(world["outside"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again, cached = fetch_verified(world["uri"], world["cache"])
    assert again == path and again.read_bytes() == GENUINE
    assert cached is not None and cached.sha256 == _sha(GENUINE)
    cache_warnings = [w for w in caught if issubclass(w.category, CacheWarning)]
    quarantined = [p for p in world["cache"].rglob("*") if p.name.startswith(".quarantine-")]
    if tamper == "garbage marker":  # unreadable marker: no hit to verify, downloaded over it
        assert cache_warnings == [] and quarantined == []
    else:
        assert len(cache_warnings) == 1 and "\n" not in str(cache_warnings[0].message)
        assert "failed verification" in str(cache_warnings[0].message)
        (aside,) = quarantined  # set aside, never deleted
        if tamper == "same-size bytes":
            assert (aside / "m.keras").read_bytes() == POISON
    assert local_tree(world["outside"]) == outside


def test_the_etag_now_decides_an_object_replaced_remotely_is_fetched_anew(world: dict[str, Any]) -> None:
    fetch(world["uri"], world["cache"])
    world["client"].put_object(Bucket=world["bucket"], Key="models/m.keras", Body=POISON)
    path, cached = fetch_verified(world["uri"], world["cache"])
    assert path.read_bytes() == POISON and cached is not None and cached.sha256 == _sha(POISON)


# --- links and special files under the cache root are refused, never followed ----------------


def _plant(world: dict[str, Any], where: str) -> None:
    path = _entry(world)
    entry = path.parent
    if where == "link at the file":
        path.unlink()
        path.symlink_to(world["outside"] / "m.keras")
    elif where == "link at the entry directory":
        (world["outside"] / "entry").mkdir()
        for name in ("m.keras", "entry.json"):
            (world["outside"] / "entry" / name).write_bytes((entry / name).read_bytes())
        os.rename(entry, entry.parent / "moved")
        entry.symlink_to(world["outside"] / "entry")
    elif where == "link at the key directory":
        key_dir = entry.parent
        os.rename(key_dir, world["outside"] / "key")
        key_dir.symlink_to(world["outside"] / "key")
    elif where == "link at s3/<bucket>":
        bucket_dir = world["cache"] / "s3" / world["bucket"]
        os.rename(bucket_dir, world["outside"] / "bucket")
        bucket_dir.symlink_to(world["outside"] / "bucket")
    elif where == "FIFO at the file":
        path.unlink()
        os.mkfifo(path)
    elif where == "directory at the file":
        path.unlink()
        path.mkdir()
        (path / "inside").write_bytes(b"x")


@pytest.mark.parametrize("where", [
    "link at the file", "link at the entry directory", "link at the key directory", "link at s3/<bucket>",
    "FIFO at the file",
    "directory at the file",
])
def test_a_link_or_special_file_in_the_cache_is_refused_with_one_line(world: dict[str, Any], where: str) -> None:
    fetch(world["uri"], world["cache"])
    _plant(world, where)
    before = _trees(world)
    with pytest.raises(SourceError) as info:
        fetch(world["uri"], world["cache"])
    kind = {"FIFO at the file": "a FIFO", "directory at the file": "a directory"}.get(where, "a symbolic link")
    _one_line_refusal(info, kind, "download cache", "remove it")
    assert _trees(world) == before  # nothing read through, written, moved or deleted


def test_a_link_planted_before_the_first_download_is_refused_and_nothing_is_written_outside(
    world: dict[str, Any],
) -> None:
    (world["cache"] / "s3").mkdir(parents=True)
    (world["cache"] / "s3" / world["bucket"]).symlink_to(world["outside"])
    before = _trees(world)
    with pytest.raises(SourceError) as info:
        fetch(world["uri"], world["cache"])
    _one_line_refusal(info, "a symbolic link")
    assert _trees(world) == before


# --- s3:// directory sources (keras-hub presets) ---------------------------------------------

PRESET = {"config.json": b'{"a": 1}', "metadata.json": b'{"keras_hub_version": "0.32.0"}',
          "model.weights.h5": b"w" * 4096}


def _put_preset(world: dict[str, Any], files: dict[str, bytes] = PRESET, prefix: str = "presets/p/") -> str:
    for name, body in files.items():
        world["client"].put_object(Bucket=world["bucket"], Key=prefix + name, Body=body)
    return f"s3://{world['bucket']}/{prefix}"


def test_a_poisoned_preset_entry_is_set_aside_and_fetched_again(world: dict[str, Any]) -> None:
    uri = _put_preset(world)
    target = fetch(uri, world["cache"])
    (target / "model.weights.h5").write_bytes(b"p" * 4096)  # same size, other bytes
    outside = local_tree(world["outside"])
    with pytest.warns(CacheWarning, match="model.weights.h5 does not hash"):
        again = fetch(uri, world["cache"])
    assert again == target and {n: (again / n).read_bytes() for n in PRESET} == PRESET
    (aside,) = [p for p in target.parent.iterdir() if p.name.startswith(".quarantine-") and p.is_dir()]
    assert (aside / "model.weights.h5").read_bytes() == b"p" * 4096
    assert local_tree(world["outside"]) == outside
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fetch(uri, world["cache"]) == target  # and the new entry is a clean hit


def test_an_extra_file_in_a_preset_entry_is_a_miss(world: dict[str, Any]) -> None:
    uri = _put_preset(world)
    target = fetch(uri, world["cache"])
    (target / "extra.py").write_bytes(b"import os")
    with pytest.warns(CacheWarning, match="other files"):
        again = fetch(uri, world["cache"])
    assert sorted(p.name for p in again.iterdir()) == sorted(PRESET)


@pytest.mark.parametrize("what", ["link at a weights file", "FIFO at a weights file", "link at the entry"])
def test_a_link_or_fifo_in_a_preset_entry_is_refused(world: dict[str, Any], what: str) -> None:
    uri = _put_preset(world)
    target = fetch(uri, world["cache"])
    weights = target / "model.weights.h5"
    if what == "link at a weights file":
        weights.unlink()
        weights.symlink_to(world["outside"] / "m.keras")
    elif what == "FIFO at a weights file":
        weights.unlink()
        os.mkfifo(weights)
    else:
        os.rename(target, world["outside"] / "entry")
        target.symlink_to(world["outside"] / "entry")
    before = _trees(world)
    with pytest.raises(SourceError) as info:
        fetch(uri, world["cache"])
    _one_line_refusal(info, "a FIFO" if "FIFO" in what else "a symbolic link")
    assert _trees(world) == before


@pytest.mark.parametrize("keys", [("a", "a/b"), ("sub//x", "sub/x")])
def test_preset_keys_that_share_a_local_path_are_refused_naming_both(world: dict[str, Any], keys: tuple[str, str]) -> None:
    uri = _put_preset(world, {**PRESET, keys[0]: b"1", keys[1]: b"2"})
    for attempt in (lambda: fetch(uri, world["cache"]), lambda: fingerprint(uri)):
        with pytest.raises(SourceError) as info:
            attempt()
        message = str(info.value)
        assert "\n" not in message and repr(keys[0]) in message and repr(keys[1]) in message
    assert local_tree(world["cache"]) == {}


# --- local preset directories: a weights file that is no file --------------------------------


@pytest.mark.parametrize("weights", ["FIFO", "link to /dev/zero", "dangling link", "link to a directory"])
def test_a_preset_whose_weights_are_no_regular_file_gets_no_fingerprint(tmp_path: Path, weights: str) -> None:
    preset = tmp_path / "preset"
    preset.mkdir()
    for name in ("config.json", "metadata.json"):
        (preset / name).write_bytes(PRESET[name])
    without = fingerprint(str(preset))
    path = preset / "model.weights.h5"
    if weights == "FIFO":
        os.mkfifo(path)
    elif weights == "link to /dev/zero":
        path.symlink_to("/dev/zero")
    elif weights == "dangling link":
        path.symlink_to(tmp_path / "gone")
    else:
        (tmp_path / "d").mkdir()
        path.symlink_to(tmp_path / "d")
    with pytest.raises(SourceError) as info:
        fingerprint(str(preset))
    message = str(info.value)
    assert "\n" not in message and "model.weights.h5" in message and without not in message
    path.unlink()
    path.write_bytes(b"w")
    assert fingerprint(str(preset)) != without  # a real weights file does change it


def test_a_link_to_a_regular_file_in_a_local_preset_counts_as_that_file(tmp_path: Path) -> None:
    preset, real = tmp_path / "preset", tmp_path / "weights.h5"
    preset.mkdir()
    real.write_bytes(b"w")
    (preset / "model.weights.h5").symlink_to(real)
    linked = fingerprint(str(preset))
    (preset / "model.weights.h5").unlink()
    (preset / "model.weights.h5").write_bytes(b"w")
    assert fingerprint(str(preset)) == linked


# --- end to end: the source sha256 recorded is that of the bytes cut -------------------------


def _chain_keras(path: Path, seed: int) -> None:
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    x = keras.Input((8,), name="x")
    h = keras.layers.Dense(8, activation="relu", name="a")(x)
    h = keras.layers.Dense(8, activation="relu", name="b")(h)
    keras.Model(x, keras.layers.Dense(4, name="c")(h), name="chain").save(path)


def _same_size(a: Path, b: Path) -> None:
    """Pad the smaller ``.keras`` (a zip) with a zip comment until both have the same size."""
    import zipfile

    small, large = sorted((a, b), key=lambda p: p.stat().st_size)
    for _ in range(5):
        gap = large.stat().st_size - small.stat().st_size
        if gap == 0:
            return
        with zipfile.ZipFile(small, "a") as archive:
            archive.comment = archive.comment + b"x" * gap
    assert a.stat().st_size == b.stat().st_size


def _publish_from(store_dir: Path, backbone: Any, cache: Path, work: Path) -> Any:
    """The pipeline's steps in order: freshness, fetch, cut, stage, validate, publish."""
    from kerascut_core.pipeline import check_freshness
    from kerascut_core.pipeline.assemble import publish_candidate
    from kerascut_core.pipeline.candidate import cut_candidate, fetch_source
    from kerascut_core.pipeline.reports import validate_staged
    from kerascut_core.publishing import read_manifest, stage_candidate
    from kerascut_core.stores import open_store

    store = open_store(str(store_dir))
    fresh = check_freshness(backbone, store)
    fetched = fetch_source(backbone, cache_dir=str(cache))
    candidate = cut_candidate(backbone, fetched, work)
    staged = stage_candidate(store, backbone.name, fresh.version, candidate.files)
    report = validate_staged(staged, backbone, {"samples": 2, "batch_size": 2}, cache_dir=str(cache))
    assert report.passed, report.failures
    publish_candidate(store, staged, backbone, fresh.version, fresh.fingerprint, candidate,
                      report.model_dump(mode="json"))
    return read_manifest(store, backbone.name, fresh.version)


def _weights(store_dir: Path, manifest: Any) -> list[Any]:
    import keras

    path = store_dir / manifest.name / manifest.version / "model.keras"
    return [w.tolist() for w in keras.saving.load_model(path, compile=False).get_weights()]


def test_a_poisoned_cache_never_publishes_other_weights_under_the_genuine_version(
    tmp_path: Path, s3_client: Any, s3_bucket: str
) -> None:
    from kerascut_core.config import BackboneConfig

    genuine, poisoned = tmp_path / "genuine.keras", tmp_path / "poisoned.keras"
    _chain_keras(genuine, 1)
    _chain_keras(poisoned, 2)  # the same architecture with other weights
    _same_size(genuine, poisoned)
    s3_client.put_object(Bucket=s3_bucket, Key="models/chain.keras", Body=genuine.read_bytes())
    backbone = BackboneConfig(name="chain", source=f"s3://{s3_bucket}/models/chain.keras", end="b")
    cache, outside = tmp_path / "cache", tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_bytes(b"a person's file")
    sentinel = local_tree(outside)

    clean = _publish_from(tmp_path / "store-clean", backbone, cache, tmp_path / "work-clean")
    assert clean.source.sha256 == _sha(genuine.read_bytes())

    (entry,) = cache.rglob("chain.keras")
    entry.write_bytes(poisoned.read_bytes())  # same size, other weights
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rerun = _publish_from(tmp_path / "store-rerun", backbone, cache, tmp_path / "work-rerun")
    assert len([w for w in caught if issubclass(w.category, CacheWarning)]) == 1
    assert (rerun.version, rerun.source.sha256) == (clean.version, clean.source.sha256)
    assert _weights(tmp_path / "store-rerun", rerun) == _weights(tmp_path / "store-clean", clean)
    assert entry.read_bytes() == genuine.read_bytes() and local_tree(outside) == sentinel


def test_a_cache_hit_is_hashed_once_per_run(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The hash that verifies a hit is the source sha256 the candidate records: the cut step
    does not hash the file again while it is the file the cache verified."""
    from kerascut_core.pipeline import candidate as candidate_module
    from kerascut_core.pipeline.candidate import FetchedSource, fetch_source
    from kerascut_core.sources import cache as cache_module
    from kerascut_core.stores import base

    fetch(world["uri"], world["cache"])  # the download
    reads: list[str] = []
    real_hash, real_sha = cache_module.hash_regular, base.sha256_file
    monkeypatch.setattr(cache_module, "hash_regular", lambda p, **k: reads.append(str(p)) or real_hash(p, **k))
    monkeypatch.setattr(base, "sha256_file", lambda p, *a: reads.append(str(p)) or real_sha(p, *a))
    monkeypatch.setattr("kerascut_core.stores.sha256_file", base.sha256_file)
    fetched = fetch_source({"name": "m", "source": world["uri"], "end": "b"}, cache_dir=str(world["cache"]))
    assert fetched.source_sha256 == _sha(GENUINE)
    assert candidate_module._source_sha256(fetched)[0] == _sha(GENUINE)
    assert reads == [fetched.source]  # one read of the bytes, by the cache's verification
    # a file that is no longer the one verified is hashed again, not trusted
    Path(fetched.source).write_bytes(POISON)
    assert candidate_module._source_sha256(FetchedSource.model_validate(fetched))[0] == _sha(POISON)


def test_a_source_file_rewritten_while_it_loads_is_refused(
    tmp_path: Path, s3_client: Any, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sha256 recorded must be that of the bytes Keras read: a file rewritten between the
    cache's verification and the end of the load makes the cut step refuse with one line."""
    import kerascut_core.sources as sources
    from kerascut_core.pipeline.candidate import cut_candidate, fetch_source

    genuine, other = tmp_path / "genuine.keras", tmp_path / "other.keras"
    _chain_keras(genuine, 1)
    _chain_keras(other, 2)
    _same_size(genuine, other)
    s3_client.put_object(Bucket=s3_bucket, Key="chain.keras", Body=genuine.read_bytes())
    backbone = {"name": "chain", "source": f"s3://{s3_bucket}/chain.keras", "end": "b"}
    fetched = fetch_source(backbone, cache_dir=str(tmp_path / "cache"))
    real_load = sources.load_model

    def load_then_rewrite(path: str, **options: Any) -> Any:
        model = real_load(path, **options)
        Path(path).write_bytes(other.read_bytes())  # another writer, during the load
        return model

    monkeypatch.setattr(sources, "load_model", load_then_rewrite)
    with pytest.raises(SourceError, match="changed while it was hashed or loaded") as info:
        cut_candidate(backbone, fetched, tmp_path / "work")
    assert "\n" not in str(info.value) and not (tmp_path / "work").exists()


def test_s3_weights_of_a_keras_applications_source_are_verified_too(world: dict[str, Any]) -> None:
    from kerascut_core.sources import resolve_local

    world["client"].put_object(Bucket=world["bucket"], Key="w/mnv2.weights.h5", Body=GENUINE)
    weights = f"s3://{world['bucket']}/w/mnv2.weights.h5"
    _, options = resolve_local("keras.applications/MobileNetV2", weights=weights, cache_dir=world["cache"])
    Path(options["weights"]).write_bytes(POISON)
    with pytest.warns(CacheWarning, match="mnv2.weights.h5"):
        _, again = resolve_local("keras.applications/MobileNetV2", weights=weights, cache_dir=world["cache"])
    assert Path(again["weights"]).read_bytes() == GENUINE


# --- cache paths: ``~`` and ``$VAR`` expanded, never taken literally -------------------------


def test_variables_in_the_cache_path_are_expanded_or_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kerascut_core.errors import ConfigError
    from kerascut_core.sources.cache import default_cache_dir

    monkeypatch.setenv("KC_TEST_BASE", str(tmp_path))
    monkeypatch.delenv("KC_TEST_UNSET", raising=False)
    assert DownloadCache("$KC_TEST_BASE/c").root == tmp_path / "c"
    assert DownloadCache("${KC_TEST_BASE}/c").root == tmp_path / "c"
    monkeypatch.setenv("KERASCUT_CACHE_DIR", "$KC_TEST_BASE/env")
    assert default_cache_dir() == tmp_path / "env"
    for value in ("$KC_TEST_UNSET/c", "${KC_TEST_UNSET}/c"):
        with pytest.raises(ConfigError, match="KC_TEST_UNSET is not set") as info:
            DownloadCache(value)
        assert "\n" not in str(info.value)
    monkeypatch.chdir(tmp_path)
    assert not any("$" in p.name for p in tmp_path.iterdir())


# --- the quarantine is bounded ------------------------------------------------------------------


def test_only_the_newest_quarantined_entries_are_kept(world: dict[str, Any]) -> None:
    """Each tampered hit is set aside; beyond QUARANTINE_KEEP the oldest go, and only
    quarantine-named entries, never through a link."""
    from kerascut_core.sources.cache import QUARANTINE_KEEP

    path = fetch(world["uri"], world["cache"])
    key_dir = path.parent.parent
    planted = key_dir / ".quarantine-0123456789ab-planted"  # a link with a quarantine name
    planted.symlink_to(world["outside"])
    os.utime(planted, (1, 1), follow_symlinks=False)
    (key_dir / "notes.txt").write_bytes(b"not the cache's")  # a name quarantine never gives
    outside = local_tree(world["outside"])
    for _ in range(QUARANTINE_KEEP + 3):
        path.write_bytes(POISON)  # tamper, then fetch: set aside and fetched again
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CacheWarning)
            again, _ = fetch_verified(world["uri"], world["cache"])
        assert again.read_bytes() == GENUINE
    aside = [p for p in key_dir.iterdir() if p.name.startswith(".quarantine-")]
    assert len(aside) == QUARANTINE_KEEP and all(p.is_dir() and not p.is_symlink() for p in aside)
    assert all((p / "m.keras").read_bytes() == POISON for p in aside)
    assert not os.path.lexists(planted)  # the link itself went, never its target
    assert local_tree(world["outside"]) == outside
    assert (key_dir / "notes.txt").read_bytes() == b"not the cache's"
