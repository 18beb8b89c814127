"""The store attack corpus: every way found to make kerascut lose a backbone, serve the wrong
one, or step outside its store (issue 10, "Never lose a backbone: the store's trust boundary").

Each case plants an attack, snapshots the store byte for byte and everything around it (a
sibling ``outside/`` directory where link targets live; on S3 the rest of the bucket, every
object version and every open multipart upload), runs kerascut against it (the CLI in a
subprocess, or the library), and asserts the now-correct behaviour plus that nothing committed
changed and nothing outside the store changed (``World.verify``). Cases where the store kind
matters run on a local directory and on the S3 API server (moto, a real subprocess).

The numbers ``RELIABILITY.md`` reports (cases, objects compared, objects lost, outside files
touched) are written to ``$KERASCUT_ATTACK_SUMMARY`` (default
``/tmp/kerascut-store-attacks.json``) at the end of the module.

    .venv/bin/python -m pytest tests/stores/test_store_attacks.py -q
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from kerascut_core.errors import IntegrityError, StoreError
from tests.support.store_attack_world import (
    LEDGER,
    MARKER,
    MNV2,
    NESTED,
    R1,
    REPO,
    RESNET,
    SIZES,
    T1,
    TINY,
    V1,
    V2,
    VX,
    LocalWorld,
    S3World,
    build_template,
    manifest_bytes,
    plant_garbage,
    sha,
    write_summary,
)

KINDS = ["local", "s3"]
EVIL = "\x1b[2J\x1b]0;pwned\x07"


# ---------------------------------------------------------------------------------------------
# fixtures and checks
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return build_template(tmp_path_factory.mktemp("attack-template"))


@pytest.fixture(scope="module", autouse=True)
def _summary():
    yield
    summary = write_summary()
    print("\nstore attack corpus:", json.dumps(summary))


@pytest.fixture
def world(template, tmp_path, request):
    """``world(kind, prefix="prod", seeded=True)``: a fresh copy of the template store."""


    def make(kind: str = "local", prefix: str = "prod", seeded: bool = True):
        if kind == "local":
            w = LocalWorld(template, tmp_path, request.node.nodeid, seeded=seeded)
        else:
            client = request.getfixturevalue("s3_client")
            bucket = request.getfixturevalue("s3_versioned_bucket" if kind == "s3-versioned" else "s3_bucket")
            w = S3World(template, tmp_path, request.node.nodeid, client=client, bucket=bucket, prefix=prefix,
                        seeded=seeded)

        def pending() -> None:  # a case that failed before its own verify(): still compare (and count)
            if w._before is not None and not w.verified:
                w.verify()

        request.node.addfinalizer(pending)  # registered after the bucket's teardown: runs before it
        return w

    return make


def ok(out: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert out.returncode == 0, f"exit {out.returncode}\nstdout: {out.stdout[-2000:]}\nstderr: {out.stderr[-2000:]}"
    assert "Traceback" not in out.stderr
    return out


def refused(out: subprocess.CompletedProcess, *fragments: str, secrets: tuple[str, ...] = ()) -> str:
    """A refusal: exit 1, one non-empty stderr line starting 'error:' holding every fragment
    (``a|b``: either), no traceback, and none of ``secrets`` anywhere in the output."""
    assert out.returncode == 1, f"exit {out.returncode}\nstdout: {out.stdout[-2000:]}\nstderr: {out.stderr[-2000:]}"
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}: {lines[:5]}"
    line = lines[0]
    assert line.startswith("error:"), line
    assert "Traceback" not in out.stderr + out.stdout and "rerun with --debug" not in line, line
    for fragment in fragments:
        assert any(f.lower() in line.lower() for f in fragment.split("|")), f"{fragment!r} not in {line!r}"
    for secret in secrets:
        assert secret not in out.stdout + out.stderr, f"the output reveals {secret!r}: {line}"
    return line


def gc_json(world, *args: str, timeout: float = 60) -> dict:
    out = ok(world.cli("gc", world.store_uri, "--json", *args, timeout=timeout))
    return json.loads(out.stdout)


def secrets_of(*blobs: bytes) -> tuple[str, ...]:
    """What an error about a refused file must not reveal: its sha256 (whole or cut) and size."""
    found: list[str] = []
    for data in blobs:
        digest = sha(data)
        found += [digest, digest[:16]]
        if len(data) >= 1000:
            found.append(str(len(data)))
    return tuple(found)


def load(ref: str, world) -> object:
    from kerascut_core.publishing import load_backbone

    return load_backbone(ref, cache_dir=world.cache)


def cache_files(world) -> list[Path]:
    return [p for p in world.cache.rglob("*") if p.is_file()] if world.cache.exists() else []


# ---------------------------------------------------------------------------------------------
# 1-3. gc pointed at the wrong level of the tree
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["local", "s3:prod", "s3:team/prod"])
def test_01_gc_refuses_the_parent_of_a_store(world, layout):
    if layout == "local":
        w = world("local")
        target = str(w.base)
    else:
        prefix = layout.split(":", 1)[1]
        w = world("s3", prefix=prefix)
        parent = prefix.rpartition("/")[0]
        target = f"s3://{w.bucket}" + (f"/{parent}" if parent else "")
    up = target[len(w.outside_uri("")):].strip("/") if layout != "local" else ""
    up = f"{up}/" if up else ""
    # user files next to the store, old (test_03b covers parents that look like an old store)
    w.plant_outside(f"{up}projects/2019/01/model.keras", b"user data")
    w.plant_outside(f"{up}projects/old/.staging/x/5a5a5a5a5a5a5a5a/20200101T000000Z-00000001/model.keras", b"user")
    plant_garbage(w, recent_removed=True)  # real garbage in the store: not removed either, gc is refused
    w.snapshot()
    for out in w.cli_many(["gc", target], ["gc", target, "--older-than", "0"], ["gc", target, "--dry-run"]):
        line = refused(out, w.store_uri, "not a kerascut store root")
        assert "holds the store" in line
    w.verify()


INSIDE = [MNV2, f"{MNV2}/{V1}", f"{MNV2}/{V1}/saved_model", ".staging"]


@pytest.mark.parametrize("kind", KINDS)
def test_02_gc_refuses_a_path_inside_a_store(world, kind):
    w = world(kind)
    plant_garbage(w, recent_removed=True)  # so that .staging exists, and gc would have work
    w.snapshot()
    runs = [["gc", w.uri(inside), *extra] for inside in INSIDE for extra in ([], ["--older-than", "0"])]
    for args, out in zip(runs, w.cli_many(*runs), strict=True):
        line = refused(out, w.store_uri, "not a kerascut store root")
        assert "of the store" in line or "inside the store" in line, (args, line)
    w.verify()
    for rel in NESTED:  # every nested artifact of the committed version, explicitly
        assert w.store.head(f"{MNV2}/{V1}/{rel}") is not None


USER_FILES = ["photos/2020/01/a.jpg", "photos/2020/01/b.jpg", "photos/2021/07/trip/c.jpg",
              "photos/2021/07/trip/raw/model.keras", "photos/.kerascut-tmp-1-notes.txt"]


@pytest.mark.parametrize("kind", KINDS)
def test_03_gc_refuses_a_directory_that_is_not_a_store(world, kind):
    w = world(kind)
    for rel in USER_FILES:
        w.plant_outside(rel, rel.encode() * 10)
    w.snapshot()
    for out in w.cli_many(["gc", w.outside_uri("photos")], ["gc", w.outside_uri("photos"), "--older-than", "0"]):
        refused(out, "not a kerascut store")
    w.verify()


# directories that are not stores but have one trait of the layout from before the marker
LOOKALIKES = {
    # a downloads directory: releases/latest.json names the newest release
    "latest-json": ["releases/latest.json", "releases/2.3.1/app.tar.gz", "releases/2.3.0/app.tar.gz",
                    "releases/2.3.0/notes/changes.txt"],
    # a build tool's staging directory
    "staging-dir": [".staging/site/2020/01/index.html", ".staging/site/2020/01/css/style.css", "site/index.html"],
}


@pytest.mark.parametrize("lookalike", sorted(LOOKALIKES))
@pytest.mark.parametrize("kind", KINDS)
def test_03b_gc_refuses_a_directory_that_only_looks_like_an_old_store(world, kind, lookalike):
    w = world(kind)
    for rel in LOOKALIKES[lookalike]:
        body = b'{"version": "2.3.1", "url": "https://example.invalid/2.3.1"}' if rel.endswith("latest.json") else rel.encode()
        w.plant_outside(f"userdir/{rel}", body)
    w.snapshot()
    out = w.cli("gc", w.outside_uri("userdir"), "--older-than", "0")
    w.verify()  # first: nothing of the user's was deleted
    refused(out, "not a kerascut store")


# ---------------------------------------------------------------------------------------------
# 4, 16. gc on a real store: only protocol garbage goes; the dry run lists exactly that
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,older_than", [("local", "0"), ("local", "24h"), ("s3", "0"), ("s3-versioned", "0")])
def test_04_gc_removes_protocol_garbage_and_nothing_committed(world, kind, older_than):
    w = world(kind)
    garbage = plant_garbage(w, recent_removed=older_than == "0")
    w.snapshot()
    w.expect(garbage.removed, garbage.aborted)
    report = gc_json(w, "--older-than", older_than)
    assert {w.rel_of_uri(u) for u in report["removed"]} == garbage.removed
    assert {w.rel_of_uri(u) for u in report["aborted_uploads"]} == garbage.aborted
    assert any("notes.txt" in s for s in report["skipped"]), report["skipped"]
    w.verify(garbage.removed, aborted=garbage.aborted)
    for rel in NESTED:
        assert w.store.head(f"{MNV2}/{V1}/{rel}") is not None


@pytest.mark.parametrize("kind", ["local", "s3", "s3-versioned"])
def test_16_gc_dry_run_lists_exactly_what_a_real_run_removes(world, kind):
    w = world(kind)
    garbage = plant_garbage(w, recent_removed=True)
    w.snapshot()
    dry = gc_json(w, "--older-than", "0", "--dry-run")
    assert dry["dry_run"] is True and dry["removed"], dry
    w.verify()  # the dry run removed nothing
    w.expect(garbage.removed, garbage.aborted)
    real = gc_json(w, "--older-than", "0")
    assert sorted(real["removed"]) == sorted(dry["removed"])
    assert sorted(real["aborted_uploads"]) == sorted(dry["aborted_uploads"])
    assert {w.rel_of_uri(u) for u in dry["removed"]} == garbage.removed
    assert {w.rel_of_uri(u) for u in dry["aborted_uploads"]} == garbage.aborted
    if kind != "local":
        assert garbage.aborted  # the incomplete multipart uploads under .staging/ and a version dir
    # the diff of the listings before and after is exactly the dry-run list
    w.verify({w.rel_of_uri(u) for u in dry["removed"]}, aborted={w.rel_of_uri(u) for u in dry["aborted_uploads"]})
    again = gc_json(w, "--older-than", "0", "--dry-run")
    assert again["removed"] == [] and again["aborted_uploads"] == []


# ---------------------------------------------------------------------------------------------
# 5-6. links inside a local store
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("link", ["version-dir", "backbone-dir", "saved_model-dir", "staging-dir"])
def test_05_a_linked_directory_out_of_the_store_is_never_followed(world, link, template):
    w = world("local")
    root, out = w.root, w.outside
    ref = None
    if link == "version-dir":  # a whole version that lives outside, manifest and all
        path = root / MNV2 / VX
        path.symlink_to(out / "fakever", target_is_directory=True)
        ref, secrets = f"{w.store_uri}/{MNV2}@{VX}", secrets_of(template.data(MNV2, VX))
    elif link == "backbone-dir":  # a backbone directory moved out and linked back
        path = root / TINY
        shutil.move(root / TINY, out / "tiny-real")
        path.symlink_to(out / "tiny-real", target_is_directory=True)
        ref, secrets = f"{w.store_uri}/{TINY}", secrets_of(template.data(TINY, T1))
    elif link == "saved_model-dir":  # a nested artifact directory of a committed version
        path = root / MNV2 / V1 / "saved_model"
        shutil.move(path, out / "sm-real")
        path.symlink_to(out / "sm-real", target_is_directory=True)
        ref = f"{w.store_uri}/{MNV2}@{V1}"
        secrets = secrets_of(*(template.data(MNV2, V1, rel) for rel in NESTED[:3]))
    else:  # staging that leads outside, to something that looks like a stale staged run
        path = root / ".staging" / MNV2
        path.parent.mkdir(exist_ok=True)
        path.symlink_to(out / "stage-target", target_is_directory=True)
        secrets = ()
    w.snapshot()

    name = ref.rsplit("/", 1)[1].split("@")[0] if ref else MNV2
    gc_out, ls_all, listing, pulled = w.cli_many(  # side by side: none of them may write
        ["gc", w.store_uri, "--json", "--older-than", "0"], ["ls", w.store_uri], ["ls", w.store_uri, name],
        ["pull", ref or f"{w.store_uri}/{MNV2}", "-o", str(w.tmp / "pulled")])
    report = json.loads(ok(gc_out).stdout)
    assert report["removed"] == [], report
    assert any(str(path) in s and "symbolic link" in s for s in report["skipped"]), report["skipped"]
    ok(ls_all)
    if ref is None:
        ok(listing)
        ok(pulled)
    else:
        assert "Traceback" not in listing.stderr
        assert str(path) in listing.stderr, listing.stderr  # said, not silently dropped
        if name == MNV2:
            ok(listing)
            assert V2 in listing.stdout  # the good versions are still listed
            if link == "version-dir":
                assert VX not in listing.stdout
        for secret in secrets:
            assert secret not in listing.stdout + listing.stderr
        refused(pulled, str(path), "symbolic link", secrets=secrets)
        with pytest.raises(StoreError) as caught:
            load(ref, w)
        assert str(path) in str(caught.value) and "symbolic link" in str(caught.value)
        assert not any(s in str(caught.value) for s in secrets), caught.value
        outside_digests = {sha(template.data(MNV2, VX)), *(sha(template.data(MNV2, V1, rel)) for rel in NESTED)}
        if link == "backbone-dir":
            outside_digests.add(sha(template.data(TINY, T1)))
        assert not {sha(p.read_bytes()) for p in cache_files(w)} & outside_digests, "read through the link"
    w.verify()


@pytest.mark.parametrize("target", ["model.keras", "latest.json", "manifest.json", "nested-file"])
def test_06_a_linked_file_in_the_store_is_never_read(world, target, template):
    w = world("local")
    root, out = w.root, w.outside
    if target == "model.keras":  # links to an outside copy of the same bytes: following it would verify
        path, name, ref = root / TINY / T1 / "model.keras", TINY, f"{w.store_uri}/{TINY}"
        victim = out / "victim.keras"
    elif target == "latest.json":
        path, name, ref = root / TINY / "latest.json", TINY, f"{w.store_uri}/{TINY}"
        victim = out / "latest-copy.json"
    elif target == "manifest.json":
        path, name, ref = root / TINY / T1 / "manifest.json", TINY, f"{w.store_uri}/{TINY}"
        victim = out / "manifest-copy.json"
    else:
        path, name, ref = root / MNV2 / V1 / NESTED[1], MNV2, f"{w.store_uri}/{MNV2}@{V1}"
        victim = out / "variables-copy.index"
    if not victim.exists():
        shutil.copy2(path, victim)
    secrets = secrets_of(victim.read_bytes()) if target in ("model.keras", "nested-file") else ()
    path.unlink()
    path.symlink_to(victim)
    w.snapshot()

    pulled, gc_out, ls_all, listing = w.cli_many(
        ["pull", ref, "-o", str(w.tmp / "pulled")], ["gc", w.store_uri, "--json", "--older-than", "0"],
        ["ls", w.store_uri], ["ls", w.store_uri, name])
    refused(pulled, str(path), "symbolic link", secrets=secrets)
    with pytest.raises(StoreError) as caught:
        load(ref, w)
    assert str(path) in str(caught.value) and "symbolic link" in str(caught.value)
    report = json.loads(ok(gc_out).stdout)
    assert report["removed"] == [] and any(str(path) in s for s in report["skipped"]), report
    ok(ls_all)
    assert "Traceback" not in listing.stderr and str(path) in listing.stderr + listing.stdout, listing.stderr
    if target != "manifest.json":  # a listing goes on past one bad entry (with its only version's
        ok(listing)                # manifest a link, tiny has no version left to list)
    if name == MNV2:
        assert V2 in listing.stdout
    if target == "latest.json":  # the version itself is whole: pinned, it loads (the one real load)
        model = load(f"{w.store_uri}/{TINY}@{T1}", w)
        assert model.layers[-1].name == "d"
    w.verify()


# ---------------------------------------------------------------------------------------------
# 7-9. versions that are not what their path says; promote checks first
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_07_a_version_directory_copied_from_another_backbone_is_refused(world, kind):
    w = world(kind)
    w.copy_tree(f"{TINY}/{T1}", f"{MNV2}/{T1}")  # cp -r store/tiny/T1 store/mnv2/T1
    w.snapshot()
    ref = f"{w.store_uri}/{MNV2}@{T1}"
    with pytest.raises(IntegrityError, match="tiny"):
        load(ref, w)
    pulled, promoted, listing = w.cli_many(["pull", ref, "-o", str(w.tmp / "pulled")],
                                           ["promote", f"{w.store_uri}/{MNV2}", T1], ["ls", w.store_uri, MNV2])
    refused(pulled, f"'{TINY}'", f"not of {MNV2}@{T1}")
    refused(promoted, f"'{TINY}'")
    ok(listing)
    assert T1 not in listing.stdout and V2 in listing.stdout and T1 in listing.stderr
    w.verify()
    assert not (w.tmp / "pulled").exists()


@pytest.mark.parametrize("kind", KINDS)
def test_08_a_manifest_whose_validation_failed_is_never_served(world, kind, template):
    w = world(kind)
    bad = "6f6f6f6f6f6f6f6f"
    files = {"model.keras": template.data(TINY, T1)}  # a real model: only the manifest is wrong
    w.put(f"{TINY}/{bad}/model.keras", files["model.keras"], sha256=sha(files["model.keras"]))
    w.put(f"{TINY}/{bad}/manifest.json", manifest_bytes(TINY, bad, files, passed=False))
    w.snapshot()
    ref = f"{w.store_uri}/{TINY}@{bad}"
    with pytest.raises(IntegrityError, match="validation did not pass"):
        load(ref, w)
    pulled, promoted, listing = w.cli_many(["pull", ref, "-o", str(w.tmp / "pulled")],
                                           ["promote", f"{w.store_uri}/{TINY}", bad], ["ls", w.store_uri, TINY])
    refused(pulled, "validation did not pass")
    refused(promoted, "validation did not pass")
    ok(listing)
    assert bad not in listing.stdout and bad in listing.stderr
    w.verify()


DAMAGE = [("local", "missing"), ("local", "flipped"), ("local", "nested-missing"), ("local", "nested-flipped"),
          ("s3", "missing"), ("s3", "flipped"), ("s3", "nested-missing"), ("s3", "flipped-unrecorded")]


@pytest.mark.parametrize("kind,damage", DAMAGE)
def test_09_promote_refuses_a_version_with_a_missing_or_corrupt_artifact(world, kind, damage, template):
    w = world(kind)
    rel = NESTED[2] if damage.startswith("nested") else "model.keras"
    key = f"{MNV2}/{V1}/{rel}"
    if damage.endswith("missing"):
        w.remove(key)
    else:  # same size, one byte flipped
        data = bytearray(template.data(MNV2, V1, rel))
        data[len(data) // 2] ^= 0xFF
        if isinstance(w, LocalWorld):
            with open(w.root / key, "r+b") as handle:  # in place, as a bit flip on disk would
                handle.write(bytes(data))
        else:  # rewritten by another tool: with the sha256 of what it wrote, or with none
            w.put(key, bytes(data), sha256=None if damage == "flipped-unrecorded" else sha(bytes(data)))
    w.snapshot()
    refused(w.cli("promote", f"{w.store_uri}/{MNV2}", V1), rel)
    w.verify()
    from kerascut_core.publishing import read_latest

    assert read_latest(w.store, MNV2) == V2


# ---------------------------------------------------------------------------------------------
# 10. unbounded reads
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_10a_an_artifact_larger_than_its_manifest_fails_fast(world, kind):
    w = world(kind)
    size = SIZES[(MNV2, V2, "model.keras")]
    key = f"{MNV2}/{V2}/model.keras"
    big = size + 50 * 2**20
    if isinstance(w, LocalWorld):
        with open(w.root / key, "r+b") as handle:
            handle.truncate(big)
    else:
        w.put(key, b"\0" * big)
    w.snapshot()
    started = time.monotonic()
    out = w.cli("pull", f"{w.store_uri}/{MNV2}@{V2}", "-o", str(w.tmp / "pulled"))
    elapsed = time.monotonic() - started
    refused(out, "model.keras", f"over the {size} expected")
    LEDGER.measured[f"oversized_artifact_pull_seconds_{w.kind}"] = round(elapsed, 2)
    assert elapsed < 15, f"pull took {elapsed:.1f}s: it read the oversized object"
    with pytest.raises(IntegrityError, match="over the"):
        load(f"{w.store_uri}/{MNV2}@{V2}", w)
    assert all(p.stat().st_size <= size for p in cache_files(w)), [(p, p.stat().st_size) for p in cache_files(w)]
    assert not (w.tmp / "pulled" / "model.keras").exists()
    w.verify()


SPECIAL = ["dev-zero-link", "fifo-artifact", "fifo-manifest", "fifo-latest", "huge-manifest", "huge-latest"]


@pytest.mark.parametrize("special", SPECIAL)
def test_10b_special_files_and_huge_json_are_refused_without_reading(world, special):
    w = world("local")
    root = w.root
    ref = f"{w.store_uri}/{MNV2}"
    if special == "dev-zero-link":
        path = root / MNV2 / V2 / "model.keras"
        path.unlink()
        path.symlink_to("/dev/zero")
        fragment = "symbolic link"
    elif special.startswith("fifo"):
        path = {"fifo-artifact": root / MNV2 / V2 / "model.keras", "fifo-manifest": root / MNV2 / V2 / "manifest.json",
                "fifo-latest": root / MNV2 / "latest.json"}[special]
        path.unlink()
        os.mkfifo(path)
        fragment = "FIFO"
    else:
        path = root / MNV2 / V2 / "manifest.json" if special == "huge-manifest" else root / MNV2 / "latest.json"
        with open(path, "r+b") as handle:  # 17 MiB of valid-looking JSON padding
            handle.seek(0, os.SEEK_END)
            handle.write(b" " * (17 * 2**20))
        fragment = "bytes or more"
    w.snapshot()
    started = time.monotonic()
    pulled, gc_out, listing = w.cli_many(["pull", ref, "-o", str(w.tmp / "pulled")],
                                         ["gc", w.store_uri, "--json", "--older-than", "0"],
                                         ["ls", w.store_uri, MNV2], timeout=30)  # a hang is a failure
    refused(pulled, str(path), fragment)
    if not special.startswith("fifo"):
        with pytest.raises(StoreError, match=fragment):
            load(ref, w)
    report = json.loads(ok(gc_out).stdout)
    assert report["removed"] == [], report
    if not special.startswith("huge"):
        assert any(str(path) in s for s in report["skipped"]), report["skipped"]
    ok(listing)
    assert V1 in listing.stdout and str(path) in listing.stderr + listing.stdout
    assert time.monotonic() - started < 30
    assert all(p.stat().st_size <= 2**20 for p in cache_files(w))
    w.verify()


ZIP_BOMB_MIB = 100  # config.json inflates past kerascut_core.sources.archive.MAX_JSON_BYTES (64 MiB)

_LOAD_SCRIPT = """
import json, resource, sys, time
from kerascut_core.publishing import load_backbone
from kerascut_core.errors import SourceError
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.monotonic()
try:
    load_backbone(sys.argv[1], cache_dir=sys.argv[2])
    error = None
except SourceError as exc:
    error = str(exc)
print(json.dumps({"error": error, "keras": "keras" in sys.modules, "tensorflow": "tensorflow" in sys.modules,
                  "rss_growth_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before,
                  "seconds": time.monotonic() - started}))
"""


def test_10c_a_zip_bomb_that_matches_its_manifest_is_refused_before_keras(world):
    w = world("local")
    bomb = w.tmp / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", '{"keras_version": "3.10.0"}')
        with archive.open("config.json", "w") as member:
            for _ in range(ZIP_BOMB_MIB):
                member.write(b" " * 2**20)
    data = bomb.read_bytes()
    assert len(data) < 2**20
    version = "7b7b7b7b7b7b7b7b"
    w.put(f"{TINY}/{version}/model.keras", data)
    w.put(f"{TINY}/{version}/manifest.json", manifest_bytes(TINY, version, {"model.keras": data}))
    w.snapshot()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", _LOAD_SCRIPT, f"{w.store_uri}/{TINY}@{version}", str(w.cache)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    LEDGER.measured["zip_bomb"] = {"inflates_to_mib": ZIP_BOMB_MIB, "archive_bytes": len(data),
                                   "rss_growth_kib": result["rss_growth_kib"], "seconds": round(result["seconds"], 2)}
    assert result["error"] and "zip bomb" in result["error"], result
    assert not result["keras"] and not result["tensorflow"], "keras was imported: the check came too late"
    assert result["rss_growth_kib"] < 32 * 1024, result
    assert result["seconds"] < 20, result
    w.verify()


# ---------------------------------------------------------------------------------------------
# 11. pull -o DIR into a directory an attacker shares
# ---------------------------------------------------------------------------------------------


def test_11a_pull_into_a_shared_directory_replaces_planted_links(world, template):
    w = world("local")
    shared = w.tmp / "shared"
    (shared / "saved_model/variables").mkdir(parents=True)
    out = w.outside
    planted = {
        "model.keras": out / "victim-a.txt",
        "manifest.json": out / "victim-b.txt",
        NESTED[0]: out / "victim-c.txt",
        NESTED[1]: out / "victim-d.txt",
    }
    for rel, victim in planted.items():
        (shared / rel).symlink_to(victim)
    # the predictable temporary names of older code, for the next few thousand pids
    for pid in range(os.getpid(), os.getpid() + 2000):
        for rel in ("model.keras", "manifest.json"):
            (shared / f".tmp-{pid}-{rel}").symlink_to(out / "victim-e.txt")
    w.snapshot()
    ok(w.cli("pull", f"{w.store_uri}/{MNV2}@{V1}", "-o", str(shared), "--replace"))  # the links are not its files
    for rel, data in template.files[(MNV2, V1)].items():
        assert not (shared / rel).is_symlink(), rel
        assert (shared / rel).read_bytes() == data, rel
    assert not (shared / "manifest.json").is_symlink()
    assert json.loads((shared / "manifest.json").read_text())["version"] == V1
    w.verify()  # every victim outside is unchanged


@pytest.mark.parametrize("planted", ["saved_model", "saved_model/variables"])
def test_11b_pull_refuses_a_planted_directory_link(world, planted):
    w = world("local")
    shared = w.tmp / "shared"
    (shared / planted).parent.mkdir(parents=True, exist_ok=True)
    (shared / planted).symlink_to(w.outside / "victimdir", target_is_directory=True)
    w.snapshot()
    refused(w.cli("pull", f"{w.store_uri}/{MNV2}@{V1}", "-o", str(shared)), str(shared / planted), "symbolic link")
    w.verify()  # nothing was written into outside/victimdir
    assert sorted(p.name for p in (w.outside / "victimdir").iterdir()) == ["keep.txt"]


# ---------------------------------------------------------------------------------------------
# 12-14. listings: one bad entry, a bad pointer, text that would drive a terminal
# ---------------------------------------------------------------------------------------------

S3_BAD_KEYS = [f"{MNV2}/../x", f"{MNV2}//x", "/y", f".staging/{MNV2}/./z", f"{MNV2}/{V1}/../../evil/manifest.json"]


@pytest.mark.parametrize("kind", KINDS)
def test_12_one_bad_entry_does_not_break_a_listing_or_gc(world, kind):
    from kerascut_core.publishing import stage_candidate

    w = world(kind)
    corrupt = "8c8c8c8c8c8c8c8c"
    w.put(f"{MNV2}/{corrupt}/model.keras", b"x" * 100)
    w.put(f"{MNV2}/{corrupt}/manifest.json", b"{not json")
    w.put(f".staging/{MNV2}/notes.txt", b"a note")
    skipped = [f".staging/{MNV2}/notes.txt"]
    if isinstance(w, LocalWorld):
        (w.root / MNV2 / "link").symlink_to(w.outside / "secret.txt")
        os.mkfifo(w.root / MNV2 / "pipe")
        skipped += [f"{MNV2}/link", f"{MNV2}/pipe"]
    else:
        for rel in S3_BAD_KEYS:
            w.client.put_object(Bucket=w.bucket, Key=f"{w.prefix}/{rel}", Body=b"unaddressable")
        keys = {o["Key"] for o in w.client.list_objects_v2(Bucket=w.bucket, Prefix=w.prefix)["Contents"]}
        assert {f"{w.prefix}/{rel}" for rel in S3_BAD_KEYS} <= keys, "the server rewrote a key"
    # garbage that sorts after every bad entry: gc must get there
    cand = w.tmp / "late.keras"
    cand.write_bytes(b"late")
    late = "9d9d9d9d9d9d9d9d"
    stage_candidate(w.store, "zzz", late, {"model.keras": cand}, run_id="20200101T000000Z-00000zzz")
    w.put(f"zzz/{late}/model.keras", b"uncommitted")
    removed = {f".staging/zzz/{late}/20200101T000000Z-00000zzz/model.keras",
               f".staging/zzz/{late}/20200101T000000Z-00000zzz/staged.json",
               f".staging/zzz/{late}/20200101T000000Z-00000zzz/run.json", f"zzz/{late}/model.keras"}
    w.snapshot()
    w.expect(removed)

    listing, ls_all, ls_json = w.cli_many(["ls", w.store_uri, MNV2], ["ls", w.store_uri],
                                          ["ls", w.store_uri, MNV2, "--json"], timeout=30)
    ok(listing)
    assert V1 in listing.stdout and V2 in listing.stdout and corrupt not in listing.stdout
    assert corrupt in listing.stderr and "warning" in listing.stderr
    assert MNV2 in ok(ls_all).stdout
    assert {V1, V2} <= {row["version"] for row in json.loads(ok(ls_json).stdout)}
    report = gc_json(w, "--older-than", "0", timeout=30)
    assert {w.rel_of_uri(u) for u in report["removed"]} == removed
    for rel in skipped:
        assert any(rel in s for s in report["skipped"]), (rel, report["skipped"])
    if not isinstance(w, LocalWorld):
        for rel in S3_BAD_KEYS:
            assert any(f"{w.prefix}/{rel}" in s for s in report["skipped"]), (rel, report["skipped"])
    w.verify(removed)


POINTERS = {"int": 12345, "null": None, "list": ["v"], "climbing": "../../etc", "not-a-dict": "v"}


@pytest.mark.parametrize("kind,pointer", [("local", p) for p in sorted(POINTERS)]
                         + [("s3", p) for p in ("climbing", "int")])
def test_13_a_latest_json_naming_no_version_string_says_so(world, kind, pointer):
    w = world(kind)
    value = POINTERS[pointer]
    body = json.dumps(value if pointer == "not-a-dict" else {"version": value, "manifest": "x"})
    w.put(f"{MNV2}/latest.json", body.encode())
    w.snapshot()
    ref = f"{w.store_uri}/{MNV2}"
    expected = "not a version name" if pointer == "climbing" else "string"
    pulled, pinned, listing = w.cli_many(["pull", ref, "-o", str(w.tmp / "pulled")],
                                         ["pull", f"{ref}@{V2}", "-o", str(w.tmp / "pinned")],
                                         ["ls", w.store_uri, MNV2])
    line = refused(pulled, expected, "latest.json", "kerascut promote")
    assert "does not exist" not in line and "not published" not in line
    with pytest.raises(StoreError, match=expected):
        load(ref, w)
    ok(pinned)  # the versions themselves are fine
    ok(listing)
    assert V2 in listing.stdout and "latest.json" in listing.stderr
    w.verify()


@pytest.mark.parametrize("kind", KINDS)
def test_14_terminal_escapes_from_the_store_are_never_printed_raw(world, kind, template):
    w = world(kind)
    data = template.data(MNV2, V2)
    evil_uri, evil_name = "4f4f4f4f4f4f4f4f", "5e5e5e5e5e5e5e5e"
    w.put(f"{MNV2}/{evil_uri}/model.keras", data, sha256=sha(data))
    w.put(f"{MNV2}/{evil_uri}/manifest.json",
          manifest_bytes(MNV2, evil_uri, {"model.keras": data}, source_uri=f"s3://x/{EVIL}.keras"))
    w.put(f"{MNV2}/{evil_name}/model.keras", data, sha256=sha(data))
    w.put(f"{MNV2}/{evil_name}/manifest.json",
          manifest_bytes(MNV2, evil_name, {"model.keras": data}, manifest_name=f"{MNV2}{EVIL}"))
    w.put(f"{MNV2}/{EVIL}dir/manifest.json", b"{}")
    w.put(f".staging/{EVIL}/x/{EVIL}/model.keras", b"staged?")
    w.put(f".staging/{MNV2}/{EVIL}.txt", b"notes")
    w.put(f"{EVIL}bb/latest.json", json.dumps({"version": EVIL}).encode())
    w.put(f"{MNV2}/{V1}-{EVIL}/model.keras", b"uncommitted, unaddressable")
    if isinstance(w, LocalWorld):
        (w.root / MNV2 / f"{EVIL}link").symlink_to(w.outside / "secret.txt")
    w.snapshot()
    outputs = w.cli_many(  # all read-only (a refused promote writes nothing): run side by side
        ["ls", w.store_uri],
        ["ls", w.store_uri, "--json"],
        ["ls", w.store_uri, MNV2],
        ["ls", w.store_uri, MNV2, "--json"],
        ["gc", w.store_uri, "--older-than", "0", "--dry-run"],
        ["gc", w.store_uri, "--older-than", "0", "--dry-run", "--json"],
        ["pull", f"{w.store_uri}/{MNV2}@{evil_name}", "-o", str(w.tmp / "a")],
        ["promote", f"{w.store_uri}/{MNV2}", evil_name],
        ["pull", f"{w.store_uri}/{MNV2}@{evil_uri}", "-o", str(w.tmp / "b")],
    )
    for i in (0, 1, 2, 3, 4, 5, 8):
        ok(outputs[i])
    outputs.append(ok(w.cli("gc", w.store_uri, "--older-than", "0")))
    for out in outputs:
        text = out.stdout + out.stderr
        assert "\x1b" not in text and "\x07" not in text, f"raw control characters in the output of {out.args[3:]}: {text!r}"
    assert "\\x1b[2J" in outputs[2].stdout  # shown, escaped
    refused(outputs[6], f"not of {MNV2}@{evil_name}")
    refused(outputs[7], f"not of {MNV2}@{evil_name}")
    w.verify()


# ---------------------------------------------------------------------------------------------
# 15. the root marker
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_15a_the_first_publish_marks_the_store_root(world, kind):
    from kerascut_core.publishing import stage_candidate

    w = world(kind, seeded=False)
    cand = w.tmp / "m.keras"
    cand.write_bytes(b"first")
    w.snapshot()
    stage_candidate(w.store, MNV2, V1, {"model.keras": cand})
    marker = json.loads(w.store.get_bytes(MARKER))
    assert marker["kerascut_store"] is True and marker["layout"] == 1 and marker["created_by"].startswith("kerascut")
    w.verify(added=lambda rel: rel == MARKER or rel.startswith(".staging"))


@pytest.mark.parametrize("kind", KINDS)
def test_15b_a_store_from_before_the_marker_still_works_and_gets_marked(world, kind):
    from kerascut_core.publishing import stage_candidate

    w = world(kind)
    w.remove(MARKER)
    w.snapshot()
    ls_all, listing, gc_out, pulled = w.cli_many(
        ["ls", w.store_uri], ["ls", w.store_uri, MNV2], ["gc", w.store_uri, "--json", "--older-than", "0"],
        ["pull", f"{w.store_uri}/{MNV2}", "-o", str(w.tmp / "pulled")])
    assert MNV2 in ok(ls_all).stdout
    assert V2 in ok(listing).stdout
    assert json.loads(ok(gc_out).stdout)["removed"] == []
    ok(pulled)
    w.verify()
    cand = w.tmp / "m.keras"
    cand.write_bytes(b"next")
    stage_candidate(w.store, MNV2, "6a6a6a6a6a6a6a6a", {"model.keras": cand})
    assert w.store.head(MARKER) is not None
    w.verify(added=lambda rel: rel == MARKER or rel.startswith(".staging"))


@pytest.mark.parametrize("where", ["inside", "above"])
@pytest.mark.parametrize("kind", KINDS)
def test_15c_publishing_into_a_directory_inside_or_above_a_store_is_refused(world, kind, where):
    from kerascut_core.publishing import StoreRootError, stage_candidate
    from kerascut_core.stores import open_store

    w = world(kind)
    cand = w.tmp / "m.keras"
    cand.write_bytes(b"misplaced")
    target = w.uri(MNV2) if where == "inside" else (str(w.base) if isinstance(w, LocalWorld) else f"s3://{w.bucket}")
    w.snapshot()
    with pytest.raises(StoreRootError) as caught:
        stage_candidate(open_store(target), RESNET, R1, {"model.keras": cand})
    assert w.store_uri in str(caught.value) and "do not nest" in str(caught.value)
    w.verify()
