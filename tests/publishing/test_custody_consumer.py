"""Chain of custody at the consumer end: the consumer cache is verified, and ``pull -o`` is a delivery.

Each attack plants something in the consumer cache or the pull target, snapshots the store, the
cache and the ``outside/`` sentinel directory byte for byte (``World.snapshot`` / ``local_tree``),
runs kerascut (the CLI in a subprocess where exit codes and output lines matter, else the
library), and checks the behaviour plus that nothing committed, nothing cached that was not set
aside, and nothing outside changed. Cases where the store kind matters run on a local store and
on the moto S3 API server (a real subprocess).

    .venv/bin/python -m pytest tests/publishing/test_custody_consumer.py -q
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

from kerascut_core.errors import IntegrityError, StoreError
from kerascut_core.publishing.consumer_cache import CacheWarning
from tests.support.store_attack_world import (
    MARKER,
    MNV2,
    NESTED,
    T1,
    TINY,
    V1,
    V2,
    LocalWorld,
    S3World,
    build_template,
    local_tree,
    sha,
)

KINDS = ["local", "s3"]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return build_template(tmp_path_factory.mktemp("custody-consumer-template"))


@pytest.fixture
def world(template, tmp_path, request):
    """``world(kind)``: a fresh copy of the template store, local or on the S3 API server."""

    def make(kind: str = "local"):
        if kind == "local":
            return LocalWorld(template, tmp_path, request.node.nodeid)
        client = request.getfixturevalue("s3_client")
        bucket = request.getfixturevalue("s3_bucket")
        w = S3World(template, tmp_path, request.node.nodeid, client=client, bucket=bucket)
        w.outside = tmp_path / "outside"  # the local sentinel: link targets live here, outside store and cache
        shutil.copytree(template.world / "outside", w.outside, symlinks=True)
        return w

    return make


def ok(out: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert out.returncode == 0, f"exit {out.returncode}\nstdout: {out.stdout[-2000:]}\nstderr: {out.stderr[-2000:]}"
    assert "Traceback" not in out.stderr
    return out


def refused(out: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 1 and one stderr line, 'error: ...', holding every fragment (``a|b``: either)."""
    assert out.returncode == 1, f"exit {out.returncode}\nstdout: {out.stdout[-2000:]}\nstderr: {out.stderr[-2000:]}"
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}: {lines[:5]}"
    line = lines[0]
    assert line.startswith("error:") and "Traceback" not in out.stderr + out.stdout, line
    assert "sha256 verified" not in out.stdout + out.stderr
    for fragment in fragments:
        assert any(f.lower() in line.lower() for f in fragment.split("|")), f"{fragment!r} not in {line!r}"
    return line


def entry_dir(w, name: str, version: str) -> Path:
    """The consumer cache's directory of ``name@version`` (there is one store id per world)."""
    found = sorted((w.cache / "backbones").glob(f"*/{name}/{version}"))
    found = [p for p in found if ".quarantine" not in p.parts]
    assert len(found) == 1, found
    return found[0]


def tree(path: Path) -> dict[str, str]:
    return local_tree(path) if path.exists() else {}


class Cache:
    """The consumer cache before and after: what changed, byte for byte; and the sentinel
    directory outside store and cache, which must not change at all (:meth:`check`)."""

    def __init__(self, w) -> None:
        self.root = w.cache
        self.before = tree(self.root)
        self.outside = w.outside
        self.outside_before = tree(self.outside)
        assert self.outside_before, "the sentinel directory is empty"

    def sentinel_untouched(self) -> bool:
        return tree(self.outside) == self.outside_before

    def changed(self) -> list[str]:
        after = tree(self.root)
        return sorted(e for e in self.before if after.get(e) != self.before[e])

    def new(self) -> list[str]:
        after = tree(self.root)
        return sorted(e for e in after if e not in self.before)


def pull_cli(w, ref: str, dest: Path, *extra: str) -> subprocess.CompletedProcess:
    return w.cli("pull", ref, "-o", str(dest), *extra)


def files_of(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def version_files(template, name: str, version: str) -> dict[str, bytes]:
    return dict(template.files[(name, version)])


# ---------------------------------------------------------------------------------------------
# 1. the consumer cache is verified, never trusted
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_same_size_poisoned_cache_hit_is_set_aside_and_downloaded_again(world, template, kind):
    w = world(kind)
    ref = f"{w.store_uri}/{MNV2}@{V2}"
    ok(pull_cli(w, ref, w.tmp / "first"))
    cached = entry_dir(w, MNV2, V2) / "model.keras"
    genuine = template.data(MNV2, V2)
    poison = bytes(b ^ 0xFF for b in genuine)  # same size, other bytes: size alone would take it
    cached.write_bytes(poison)
    w.snapshot()
    cache = Cache(w)
    out = ok(pull_cli(w, ref, w.tmp / "second"))
    warning = [line for line in out.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "set aside" in warning[0] and "sha256" in warning[0], out.stderr
    assert "sha256 verified" in out.stderr
    assert (w.tmp / "second" / "model.keras").read_bytes() == genuine
    assert cached.read_bytes() == genuine
    aside = [p for p in (w.cache / "backbones" / ".quarantine").rglob("model.keras")]
    assert [p.read_bytes() for p in aside] == [poison]  # set aside, never deleted
    entry = entry_dir(w, MNV2, V2).relative_to(w.cache).as_posix()
    assert set(cache.changed()) == {f"{entry}/model.keras"}  # the record already named the genuine hash
    assert all(".quarantine" in e for e in cache.new()) and cache.sentinel_untouched(), cache.new()
    w.verify()


@pytest.mark.parametrize("kind", KINDS)
def test_a_poisoned_file_with_a_matching_record_is_still_caught_by_the_manifest(world, template, kind):
    """The record is in the shared cache too: rewriting it to the poison's hash changes nothing."""
    from kerascut_core.publishing import pull

    w = world(kind)
    ref = f"{w.store_uri}/{MNV2}@{V1}"
    pull(ref, cache_dir=w.cache)
    entry = entry_dir(w, MNV2, V1)
    poison = os.urandom(len(template.data(MNV2, V1, NESTED[2])))
    (entry / NESTED[2]).write_bytes(poison)
    record = json.loads((entry / ".kerascut-cache.json").read_text())
    record["files"][NESTED[2]]["sha256"] = sha(poison)
    (entry / ".kerascut-cache.json").write_text(json.dumps(record))
    w.snapshot()
    with pytest.warns(CacheWarning, match="set aside") as caught:
        _, root = pull(ref, cache_dir=w.cache)
    lines = [str(c.message) for c in caught if issubclass(c.category, CacheWarning)]
    assert len(lines) == 1 and "disagrees with the manifest" in lines[0] and "\n" not in lines[0], lines
    for rel, data in version_files(template, MNV2, V1).items():
        assert (root / rel).read_bytes() == data, rel
    w.verify()


def test_an_unrecorded_file_is_not_trusted_even_at_the_right_size(world, template):
    from kerascut_core.publishing import pull

    w = world("local")
    ref = f"{w.store_uri}/{MNV2}@{V2}"
    pull(ref, cache_dir=w.cache)
    entry = entry_dir(w, MNV2, V2)
    (entry / ".kerascut-cache.json").unlink()  # an older cache, or a wiped record
    (entry / "model.keras").write_bytes(b"\0" * len(template.data(MNV2, V2)))
    with pytest.warns(CacheWarning, match="not in the cache's record"):
        _, root = pull(ref, cache_dir=w.cache)
    assert (root / "model.keras").read_bytes() == template.data(MNV2, V2)
    assert json.loads((entry / ".kerascut-cache.json").read_text())["files"]["model.keras"]["sha256"] == sha(
        template.data(MNV2, V2))


@pytest.mark.parametrize("kind", KINDS)
def test_a_verified_hit_is_not_downloaded_again(world, template, kind):
    from kerascut_core.publishing import pull

    w = world(kind)
    ref = f"{w.store_uri}/{MNV2}@{V1}"
    _, root = pull(ref, cache_dir=w.cache)
    inodes = {rel: os.stat(root / rel).st_ino for rel in version_files(template, MNV2, V1)}
    w.snapshot()
    cache = Cache(w)
    seen: list[int] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a hit that verifies warns of nothing
        _, out = pull(ref, w.tmp / "out", cache_dir=w.cache, progress=seen.append)
    assert {rel: os.stat(root / rel).st_ino for rel in inodes} == inodes  # not replaced by a download
    assert files_of(out) == {**version_files(template, MNV2, V1), "manifest.json": (out / "manifest.json").read_bytes()}
    assert sum(seen) == sum(len(d) for d in version_files(template, MNV2, V1).values())
    assert cache.changed() == [] and cache.new() == [] and cache.sentinel_untouched()
    w.verify()


def test_a_corrupt_store_artifact_is_refused_and_nothing_is_cached(world, template):
    from kerascut_core.publishing import pull

    w = world("local")
    w.put(f"{MNV2}/{V2}/model.keras", os.urandom(len(template.data(MNV2, V2))))
    with pytest.raises(IntegrityError, match="does not match the manifest"):
        pull(f"{w.store_uri}/{MNV2}@{V2}", w.tmp / "out", cache_dir=w.cache)
    assert not (entry_dir(w, MNV2, V2) / "model.keras").exists()
    assert not (w.tmp / "out").exists()  # created for the delivery, removed with it


# ---------------------------------------------------------------------------------------------
# 2. the consumer cache never follows links
# ---------------------------------------------------------------------------------------------


def _plant(w, level: str) -> tuple[str, Path]:
    """A link planted in the consumer cache at ``level``; returns (ref, link path)."""
    from kerascut_core.publishing.consumer_cache import open_entry

    base = w.cache
    entry = open_entry(base, w.store, TINY, T1).root  # the real layout (store id), created empty
    entry.rmdir()
    victim_dir = w.outside / "victimdir"
    if level == "version":
        link = entry
        link.symlink_to(victim_dir, target_is_directory=True)
    elif level == "name":
        entry.parent.rmdir()
        link = entry.parent
        link.symlink_to(victim_dir, target_is_directory=True)
    elif level == "store":
        entry.parent.rmdir()
        entry.parent.parent.rmdir()
        link = entry.parent.parent
        link.symlink_to(victim_dir, target_is_directory=True)
    else:  # at the artifact file itself, pointing at a file outside
        entry.mkdir()
        link = entry / "model.keras"
        link.symlink_to(w.outside / "victim.keras")
    return f"{w.store_uri}/{TINY}@{T1}", link


@pytest.mark.parametrize("level", ["version", "name", "store", "file"])
def test_a_link_planted_in_the_consumer_cache_is_refused_by_pull(world, level):
    w = world("local")
    ref, link = _plant(w, level)
    w.snapshot()
    cache = Cache(w)
    refused(pull_cli(w, ref, w.tmp / "out"), str(link), "symbolic link")
    assert cache.changed() == [] and cache.new() == [] and cache.sentinel_untouched()
    assert not (w.tmp / "out").exists()
    w.verify()  # nothing written through the link into outside/
    assert sorted(p.name for p in (w.outside / "victimdir").iterdir()) == ["keep.txt"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("level", ["version", "file"])
def test_a_link_planted_in_the_consumer_cache_is_refused_by_load_backbone(world, kind, level):
    from kerascut_core.publishing import load_backbone

    w = world(kind)
    ref, link = _plant(w, level)
    w.snapshot()
    cache = Cache(w)
    with pytest.raises(StoreError, match="symbolic link") as caught:
        load_backbone(ref, cache_dir=w.cache)
    assert str(link) in str(caught.value) and "\n" not in str(caught.value)
    assert cache.changed() == [] and cache.new() == [] and cache.sentinel_untouched()
    w.verify()


@pytest.mark.parametrize("odd", ["directory", "fifo"])
def test_an_odd_entry_where_a_cached_artifact_goes_is_one_line(world, odd):
    from kerascut_core.publishing.consumer_cache import open_entry

    w = world("local")
    entry = open_entry(w.cache, w.store, MNV2, V2).root
    if odd == "directory":
        (entry / "model.keras").mkdir()
        (entry / "model.keras" / "mine.txt").write_text("mine")
    else:
        os.mkfifo(entry / "model.keras")
    w.snapshot()
    cache = Cache(w)
    refused(pull_cli(w, f"{w.store_uri}/{MNV2}@{V2}", w.tmp / "out"), str(entry / "model.keras"),
            "a directory|a FIFO")
    assert cache.changed() == [] and cache.new() == [] and cache.sentinel_untouched()
    w.verify()


# ---------------------------------------------------------------------------------------------
# 3. pull -o is a delivery: never into a store
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["committed version", "backbone", "store root", "new dir in store"])
def test_pull_into_the_store_it_reads_is_refused(world, where):
    w = world("local")
    dest = {
        "committed version": w.root / MNV2 / V2,
        "backbone": w.root / MNV2,
        "store root": w.root,
        "new dir in store": w.root / MNV2 / "fresh",
    }[where]
    w.snapshot()
    refused(pull_cli(w, f"{w.store_uri}/{MNV2}@{V1}", dest), "inside the store", str(w.root))
    w.verify()  # V2's manifest and every committed byte as they were
    assert not (w.root / MNV2 / "fresh").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_pull_into_another_store_is_refused_by_marker_and_by_layout(world, template, kind):
    w = world(kind)
    marked = w.tmp / "other" / "backbones"
    shutil.copytree(template.store, marked, symlinks=True)
    unmarked = w.tmp / "older" / "backbones"
    shutil.copytree(template.store, unmarked, symlinks=True)
    (unmarked / MARKER).unlink()  # a store from before the marker: known by its layout
    before = {p: tree(p) for p in (marked, unmarked)}
    w.snapshot()
    for dest, store in [(marked / MNV2 / V2, marked), (marked / "x" / "y", marked), (unmarked / MNV2 / V2, unmarked),
                        (unmarked / MNV2, unmarked), (unmarked, unmarked)]:
        refused(pull_cli(w, f"{w.store_uri}/{MNV2}@{V1}", dest), "inside the store", str(store))
    assert {p: tree(p) for p in (marked, unmarked)} == before
    w.verify()


# ---------------------------------------------------------------------------------------------
# 3. pull -o is a delivery: not a merge
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_pull_over_another_versions_pull_is_refused_then_replaced(world, template, kind):
    w = world(kind)
    dest = w.tmp / "mnv2"
    ok(pull_cli(w, f"{w.store_uri}/{MNV2}@{V1}", dest))
    earlier = files_of(dest)
    w.snapshot()
    refused(pull_cli(w, f"{w.store_uri}/{MNV2}@{V2}", dest), str(dest), "1 entry", "saved_model", "--replace")
    assert files_of(dest) == earlier  # refused: nothing touched
    out = ok(pull_cli(w, f"{w.store_uri}/{MNV2}@{V2}", dest, "--replace"))
    assert "sha256 verified" in out.stderr
    got = files_of(dest)
    assert set(got) == {"model.keras", "manifest.json"}  # exactly the version's files
    assert got["model.keras"] == template.data(MNV2, V2)
    assert json.loads(got["manifest.json"])["version"] == V2
    assert [p.name for p in dest.iterdir() if p.name.startswith(".")] == []  # no staging left
    w.verify()


def test_pulling_the_same_version_again_is_fine_and_re_verified(world, template):
    w = world("local")
    dest = w.tmp / "mnv2"
    ok(pull_cli(w, f"{w.store_uri}/{MNV2}@{V1}", dest))
    (dest / "model.keras").write_bytes(b"edited by hand")  # a listed file: the delivery rewrites it
    ok(pull_cli(w, f"{w.store_uri}/{MNV2}@{V1}", dest))
    got = files_of(dest)
    assert {k: v for k, v in got.items() if k != "manifest.json"} == version_files(template, MNV2, V1)


def test_pull_with_format_into_a_full_pull_names_the_other_formats(world):
    w = world("local")
    dest = w.tmp / "mnv2"
    ok(pull_cli(w, f"{w.store_uri}/{MNV2}@{V1}", dest))
    refused(pull_cli(w, f"{w.store_uri}/{MNV2}@{V1}", dest, "--format", "keras"), "saved_model", "--replace")
    ok(pull_cli(w, f"{w.store_uri}/{MNV2}@{V1}", dest, "--format", "keras", "--replace"))
    assert set(files_of(dest)) == {"model.keras", "manifest.json"}


def test_replace_removes_links_as_links_never_through_them(world, template):
    w = world("local")
    dest = w.tmp / "shared"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    (dest / "to-victimdir").symlink_to(w.outside / "victimdir", target_is_directory=True)
    (dest / "saved_model").symlink_to(w.outside / "victimdir", target_is_directory=True)  # where a directory goes
    (dest / "model.keras").symlink_to(w.outside / "victim-a.txt")  # where a file goes
    w.snapshot()
    refused(pull_cli(w, f"{w.store_uri}/{MNV2}@{V1}", dest), str(dest / "saved_model"), "symbolic link")
    ok(pull_cli(w, f"{w.store_uri}/{MNV2}@{V1}", dest, "--replace"))
    got = files_of(dest)
    assert {k: v for k, v in got.items() if k != "manifest.json"} == version_files(template, MNV2, V1)
    assert not any(p.is_symlink() for p in dest.rglob("*"))
    w.verify()  # outside/victimdir and victim-a.txt untouched
    assert sorted(p.name for p in (w.outside / "victimdir").iterdir()) == ["keep.txt"]


@pytest.mark.parametrize("kind", KINDS)
def test_replace_removes_nothing_when_the_delivery_fails_midway(world, template, kind):
    from kerascut_core.publishing import pull

    w = world(kind)
    dest = w.tmp / "mnv2"
    dest.mkdir()
    (dest / "notes.txt").write_text("keep me unless the pull succeeds")
    (dest / "model.keras").write_bytes(b"an older model")
    before = files_of(dest)
    w.put(f"{MNV2}/{V1}/{NESTED[1]}", os.urandom(len(template.data(MNV2, V1, NESTED[1]))))  # the third download fails
    w.snapshot()
    with pytest.raises(IntegrityError, match="does not match the manifest"):
        pull(f"{w.store_uri}/{MNV2}@{V1}", dest, cache_dir=w.cache, replace=True)
    assert files_of(dest) == before
    assert sorted(p.name for p in dest.iterdir()) == ["model.keras", "notes.txt"]  # no staging left
    w.verify()


@pytest.mark.parametrize("odd", ["fifo", "dangling link", "file", "under a file", "link to a file"])
def test_odd_destinations_get_one_line(world, odd):
    w = world("local")
    dest = w.tmp / "dest"
    if odd == "fifo":
        os.mkfifo(dest)
        fragment = "FIFO"
    elif odd == "dangling link":
        dest.symlink_to(w.tmp / "nowhere")
        fragment = "does not exist"
    elif odd == "file":
        dest.write_text("a file")
        fragment = "regular file"
    elif odd == "under a file":
        (w.tmp / "afile").write_text("a file")
        dest = w.tmp / "afile" / "sub"
        fragment = "not a directory"
    else:
        dest.symlink_to(w.outside / "victim-b.txt")
        fragment = "not a directory"
    w.snapshot()
    cache = Cache(w)
    refused(pull_cli(w, f"{w.store_uri}/{MNV2}@{V2}", dest), fragment)
    assert cache.new() == [] and cache.sentinel_untouched()  # refused before any download
    w.verify()


def test_a_link_to_a_directory_as_destination_is_followed(world, template):
    w = world("local")
    real = w.tmp / "real"
    real.mkdir()
    (w.tmp / "via").symlink_to(real, target_is_directory=True)
    out = ok(pull_cli(w, f"{w.store_uri}/{MNV2}@{V2}", w.tmp / "via"))
    assert out.stdout.strip() == str(real)
    assert files_of(real)["model.keras"] == template.data(MNV2, V2)


def test_concurrent_pulls_share_one_cache(world, template):
    w = world("local")
    runs = w.cli_many(*[["pull", f"{w.store_uri}/{MNV2}@{V1}", "-o", str(w.tmp / f"out{i}"), "-q"] for i in range(3)])
    for i, run in enumerate(runs):
        ok(run)
        got = files_of(w.tmp / f"out{i}")
        assert {k: v for k, v in got.items() if k != "manifest.json"} == version_files(template, MNV2, V1)
    assert not (w.cache / "backbones" / ".quarantine").exists()


def test_replace_never_empties_the_home_directory_or_above_the_current_one(world, monkeypatch):
    from kerascut_core.publishing import pull
    from kerascut_core.publishing.delivery import DeliveryError

    w = world("local")
    home = w.tmp / "home"
    (home / "work").mkdir(parents=True)
    (home / "thesis.tex").write_text("years of work")
    (home / "work" / "old-pull.txt").write_text("not this version's")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home / "work")
    before = tree(home)
    for dest in (home, w.tmp):
        with pytest.raises(DeliveryError, match="Refusing --replace") as caught:
            pull(f"{w.store_uri}/{MNV2}@{V2}", dest, cache_dir=w.cache, replace=True)
        assert "\n" not in str(caught.value)
    assert tree(home) == before
    _, out = pull(f"{w.store_uri}/{MNV2}@{V2}", home / "work", cache_dir=w.cache, replace=True)  # the current one: fine
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model.keras"]
