"""The world the store attack corpus (``tests/stores/test_store_attacks.py``) runs in.

A *world* is a store (a local directory, or a prefix of a bucket on the moto S3 API server)
holding committed backbones published through the real protocol, next to things that are not
the store: a sibling ``outside/`` directory (the targets of planted links live there) and, on
S3, other prefixes of the bucket. :meth:`World.snapshot` records both byte for byte;
:meth:`World.verify` asserts that nothing changed except the garbage a case names, and adds
what it compared to :data:`LEDGER`, the numbers ``RELIABILITY.md`` reports.

Committed backbones are cheap: random bytes named ``model.keras`` (kerascut never opens them
when it refuses), except ``tiny``, a real one-layer ``.keras`` for the cases that load.

    mnv2/V1   model.keras + saved_model/{saved_model.pb, variables/..., assets/vocab.txt}
    mnv2/V2   model.keras                     (latest)
    tiny/T1   model.keras, a real Keras model (latest)
    resnet/R1 model.keras                     (latest)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import stat
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SUMMARY = Path(os.environ.get("KERASCUT_ATTACK_SUMMARY", "/tmp/kerascut-store-attacks.json"))
MARKER = ".kerascut-store.json"
OLD = time.time() - 30 * 86400  # mtime of everything seeded: far older than any gc threshold

MNV2, TINY, RESNET = "mnv2", "tiny", "resnet"
V1 = "0a1b2c3d4e5f6071"  # mnv2: nested saved_model/
V2 = "1b2c3d4e5f607182"  # mnv2: latest
T1 = "2c3d4e5f60718293"  # tiny: a real .keras
R1 = "3d4e5f6071829304"  # resnet
VX = "4e5f607182930415"  # a version that lives outside the store (outside/fakever)
NESTED = (
    "saved_model/saved_model.pb",
    "saved_model/variables/variables.index",
    "saved_model/variables/variables.data-00000-of-00001",
    "saved_model/assets/vocab.txt",
)
# distinctive sizes: an error message must never reveal the size of a file it refused
SIZES = {
    (MNV2, V1, "model.keras"): 40961,
    (MNV2, V1, NESTED[0]): 20011,
    (MNV2, V1, NESTED[1]): 7919,
    (MNV2, V1, NESTED[2]): 50021,
    (MNV2, V2, "model.keras"): 30011,
    (RESNET, R1, "model.keras"): 25013,
}
FAKE_SIZE = 123457  # outside/fakever/model.keras


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_body(
    name: str,
    version: str,
    *,
    passed: bool = True,
    source_uri: str = "keras.applications/MobileNetV2",
    artifacts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": name,
        "version": version,
        "source": {"uri": source_uri, "fingerprint": "f" * 16, "weights": "none"},
        "cut": {"end": "block_3_expand_relu"},
        "inputs": [{"name": "input", "shape": [None, 4], "dtype": "float32"}],
        "outputs": [{"name": "d", "shape": [None, 2], "dtype": "float32"}],
        "params": {"total_source": 10, "kept": 10},
        "validation": {"passed": passed, "max_abs_diff": 0.0},
    }
    if artifacts is not None:
        body["artifacts"] = artifacts
    return body


def manifest_bytes(name: str, version: str, files: dict[str, bytes], **kw: Any) -> bytes:
    """A manifest (through the real model, so it parses) listing ``files`` with their sha256."""
    from kerascut_core.publishing import Manifest, artifact_format

    arts = [{"path": rel, "format": artifact_format(rel), "bytes": len(data), "sha256": sha(data)}
            for rel, data in files.items()]
    manifest_name = kw.pop("manifest_name", name)
    body = manifest_body(manifest_name, version, artifacts=arts, **kw)
    return Manifest.model_validate(body).to_json().encode()


def publish(store: Any, name: str, version: str, paths: dict[str, Path], *, latest: bool = True) -> None:
    """Commit a version through the real protocol: stage, commit (manifest last), move latest."""
    from kerascut_core.publishing import commit_version, stage_candidate, update_latest

    staged = stage_candidate(store, name, version, paths)
    result = commit_version(store, name, version, staged, manifest_body(name, version))
    assert result.committed
    if latest:
        update_latest(store, name, version)


def tiny_keras(where: Path) -> bytes:
    """A real ``.keras``: one Dense layer (the few cases that load a backbone need one)."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="d")], name="tiny")
    path = where / "tiny.keras"
    model.save(path)
    return path.read_bytes()


def age(root: Path, when: float = OLD) -> None:
    """Set the mtime of everything under ``root`` (and ``root``) to ``when``, links untouched."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            path = Path(dirpath) / name
            if not path.is_symlink() and (path.is_file() or path.is_dir()):
                os.utime(path, (when, when))
    os.utime(root, (when, when))


# ---------------------------------------------------------------------------------------------
# the template, built once per module
# ---------------------------------------------------------------------------------------------


@dataclass
class Template:
    world: Path  # holds backbones/ (the store) and outside/
    files: dict[tuple[str, str], dict[str, bytes]]

    @property
    def store(self) -> Path:
        return self.world / "backbones"

    def data(self, name: str, version: str, rel: str = "model.keras") -> bytes:
        return self.files[(name, version)][rel]


def build_template(root: Path) -> Template:
    from kerascut_core.stores import open_store

    rng = random.Random(10)
    src = root / "src"
    src.mkdir(parents=True)
    world = root / "world"
    contents: dict[tuple[str, str], dict[str, bytes]] = {
        (MNV2, V1): {
            "model.keras": rng.randbytes(SIZES[(MNV2, V1, "model.keras")]),
            **{rel: rng.randbytes(SIZES[(MNV2, V1, rel)]) for rel in NESTED[:3]},
            NESTED[3]: b"cat\ndog\n",
        },
        (MNV2, V2): {"model.keras": rng.randbytes(SIZES[(MNV2, V2, "model.keras")])},
        (TINY, T1): {"model.keras": tiny_keras(src)},
        (RESNET, R1): {"model.keras": rng.randbytes(SIZES[(RESNET, R1, "model.keras")])},
    }
    store = open_store(world / "backbones")
    for (name, version), files in contents.items():
        paths = {}
        for rel, data in files.items():
            path = src / name / version / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            paths[rel] = path
        publish(store, name, version, paths)

    out = world / "outside"
    (out / "deep/a/b/c").mkdir(parents=True)
    (out / "deep/a/b/c/old.bin").write_bytes(rng.randbytes(1000))
    (out / "secret.txt").write_text("top secret\n")
    for i in "abcde":
        (out / f"victim-{i}.txt").write_text(f"victim {i}: must never change\n")
    (out / "victimdir").mkdir()
    (out / "victimdir/keep.txt").write_text("keep\n")
    (out / "victim.keras").write_bytes(contents[(TINY, T1)]["model.keras"])  # a followed link would verify
    fake = {"model.keras": rng.randbytes(FAKE_SIZE)}
    (out / "fakever").mkdir()
    (out / "fakever/model.keras").write_bytes(fake["model.keras"])
    (out / "fakever/manifest.json").write_bytes(manifest_bytes(MNV2, VX, fake))
    contents[(MNV2, VX)] = fake
    # what a stale staged run looks like, outside: gc through a link would delete it
    run = out / "stage-target" / "5a5a5a5a5a5a5a5a" / "20200101T000000Z-0badc0de"
    run.mkdir(parents=True)
    (run / "model.keras").write_bytes(b"looks staged")
    (run / "staged.json").write_text("{}")
    age(world)
    return Template(world, contents)


# ---------------------------------------------------------------------------------------------
# snapshots and the ledger
# ---------------------------------------------------------------------------------------------


@dataclass
class Ledger:
    cases: dict[str, set[str]] = field(default_factory=dict)  # nodeid -> kinds
    comparisons: int = 0
    store_entries_compared: int = 0
    committed_objects_compared: int = 0
    committed_objects_lost: int = 0
    committed_objects_changed: int = 0
    store_entries_changed: int = 0
    garbage_removed: int = 0
    outside_entries_compared: int = 0
    outside_entries_touched: int = 0
    measured: dict[str, Any] = field(default_factory=dict)  # timings and sizes cases report

    def summary(self) -> dict[str, Any]:
        kinds = [k for ks in self.cases.values() for k in ks]
        return {
            "cases": len(self.cases),
            "local_cases": sum(1 for ks in self.cases.values() if "local" in ks),
            "s3_cases": sum(1 for ks in self.cases.values() if "s3" in ks),
            "worlds": len(kinds),
            "comparisons": self.comparisons,
            "store_entries_compared": self.store_entries_compared,
            "committed_objects_compared": self.committed_objects_compared,
            "committed_objects_lost": self.committed_objects_lost,
            "committed_objects_changed": self.committed_objects_changed,
            "store_entries_changed_unexpectedly": self.store_entries_changed,
            "garbage_removed_as_expected": self.garbage_removed,
            "outside_entries_compared": self.outside_entries_compared,
            "outside_entries_touched": self.outside_entries_touched,
            "measured": self.measured,
        }


LEDGER = Ledger()


def write_summary(path: Path = SUMMARY) -> dict[str, Any]:
    summary = LEDGER.summary()
    with contextlib.suppress(OSError):
        path.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _describe(path: Path, st: os.stat_result, meta: bool) -> str:
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        return "link:" + os.readlink(path)
    if stat.S_ISDIR(mode):
        return f"dir:{st.st_mtime_ns}:{stat.S_IMODE(mode):o}" if meta else "dir"
    if stat.S_ISREG(mode):
        digest = hashlib.sha256()
        with open(path, "rb") as handle:  # a regular file (lstat said so): never blocks
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
        extra = f":{st.st_size}:{st.st_mtime_ns}:{stat.S_IMODE(mode):o}" if meta else ""
        return "file:" + digest.hexdigest() + extra
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return f"dev:{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    return f"special:{mode:o}"


def local_tree(root: Path, *, prune: Iterable[Path] = (), meta: bool = False) -> dict[str, str]:
    """Every path under ``root`` -> sha256 of regular files, the lstat type of anything else.

    Links are recorded (their target), never followed; special files are never opened.
    """
    pruned = {Path(p) for p in prune}
    out: dict[str, str] = {}
    if not root.is_dir():
        return out
    for dirpath, dirnames, filenames in os.walk(root):  # does not descend into links
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if here / d not in pruned)
        for name in [*dirnames, *filenames]:
            path = here / name
            with contextlib.suppress(FileNotFoundError):
                out[path.relative_to(root).as_posix()] = _describe(path, os.lstat(path), meta)
    return out


def s3_tree(client: Any, bucket: str) -> dict[str, str]:
    """Every object (key -> ETag:size), every version and delete marker on a versioned bucket,
    and every open multipart upload. Entries are ``TAG\\0key\\0id``."""
    out: dict[str, str] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            out[f"obj\0{obj['Key']}\0"] = f"{obj['ETag']}:{obj['Size']}"
    if client.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled":
        for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for v in page.get("Versions", []):
                out[f"ver\0{v['Key']}\0{v['VersionId']}"] = f"{v['ETag']}:{v['Size']}:{v['IsLatest']}"
            for d in page.get("DeleteMarkers", []):
                out[f"dm\0{d['Key']}\0{d['VersionId']}"] = str(d["IsLatest"])
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for up in page.get("Uploads", []):
            out[f"upload\0{up['Key']}\0{up['UploadId']}"] = ""
    return out


def _committed(rels: Iterable[str]) -> set[str]:
    """The entries that belong to a committed version (below a directory holding a
    manifest.json, at any depth, nested stores included) or are a ``latest.json``."""
    rels = set(rels)
    manifest_dirs = {r.rsplit("/", 1)[0] for r in rels if r.endswith("/manifest.json") and r.count("/") >= 2}
    committed = set()
    for rel in rels:
        parts = rel.split("/")
        if rel.endswith("/latest.json") or any("/".join(parts[:i]) in manifest_dirs for i in range(2, len(parts))):
            committed.add(rel)
    return committed


# ---------------------------------------------------------------------------------------------
# worlds
# ---------------------------------------------------------------------------------------------


class World:
    """A store and what is around it. Subclasses: :class:`LocalWorld`, :class:`S3World`."""

    kind: str
    store_uri: str

    def __init__(self, template: Template, tmp: Path, nodeid: str) -> None:
        self.template = template
        self.tmp = tmp
        self.cache = tmp / "cache"
        self.nodeid = nodeid
        self._before: tuple[dict[str, str], dict[str, str]] | None = None
        self._expected: tuple[set[str], set[str]] = (set(), set())
        self.verified = False
        LEDGER.cases.setdefault(nodeid, set()).add("local" if self.kind == "local" else "s3")

    # -- to be provided -----------------------------------------------------------------------
    def _take(self) -> tuple[dict[str, str], dict[str, str]]:
        raise NotImplementedError

    def _rel(self, entry: str) -> tuple[str, str]:
        """``(tag, store-relative key)`` of a store entry of the snapshot."""
        raise NotImplementedError

    def put(self, rel: str, data: bytes, *, old: bool = False, sha256: str | None = None) -> None:
        raise NotImplementedError

    def remove(self, rel: str) -> None:
        raise NotImplementedError

    def copy_tree(self, src: str, dst: str) -> None:
        raise NotImplementedError

    def plant_outside(self, rel: str, data: bytes) -> None:
        raise NotImplementedError

    def outside_uri(self, rel: str) -> str:
        raise NotImplementedError

    def rel_of_uri(self, uri: str) -> str:
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------
    @property
    def store(self) -> Any:
        from kerascut_core.stores import open_store

        return open_store(self.store_uri)

    def uri(self, rel: str = "") -> str:
        return f"{self.store_uri}/{rel}" if rel else self.store_uri

    def snapshot(self) -> None:
        self._before = self._take()
        self.verified = False

    def expect(self, removed: Iterable[str] = (), aborted: Iterable[str] = ()) -> None:
        """The garbage the command about to run must remove (the default of :meth:`verify`)."""
        self._expected = (set(removed), set(aborted))

    def verify(
        self,
        removed: Iterable[str] | None = None,
        *,
        aborted: Iterable[str] | None = None,
        added: Callable[[str], bool] = lambda rel: False,
    ) -> None:
        """Nothing changed since :meth:`snapshot` but the garbage named: ``removed`` (store-relative
        keys that must be gone; directories left empty may go with them), ``aborted`` (keys of
        multipart uploads that must be gone), and new entries ``added(rel)`` accepts. Outside the
        store nothing may change at all. The world fixture calls it after a test that failed
        before it did, so that a failing case still says whether anything was lost."""
        assert self._before is not None, "snapshot() first"
        self.verified = True
        before, before_out = self._before
        after, after_out = self._take()
        removed = self._expected[0] if removed is None else set(removed)
        aborted = self._expected[1] if aborted is None else set(aborted)

        def expected_gone(entry: str) -> bool:
            tag, rel = self._rel(entry)
            return rel in (aborted if tag == "upload" else removed)

        gone_ok = {e for e in before if expected_gone(e)}
        for entry in sorted((e for e in before if before[e] == "dir"), key=lambda e: -e.count("/")):
            below = [e for e in before if e.startswith(entry + "/")]
            if below and all(e in gone_ok for e in below):
                gone_ok.add(entry)  # a directory emptied by the removals may go with them
        not_removed = sorted(e for e in before if expected_gone(e) and e in after)
        changed = sorted(e for e in before if e not in gone_ok and after.get(e) != before[e])
        new = sorted(e for e in after if e not in before and not added(self._rel(e)[1]))
        outside = sorted(e for e in set(before_out) | set(after_out) if before_out.get(e) != after_out.get(e))
        committed = _committed(self._rel(e)[1] for e in before)
        countable = [e for e in before if self._rel(e)[0] == "obj" or before[e].startswith("file:")]

        LEDGER.comparisons += 1
        LEDGER.store_entries_compared += len(before) - len(gone_ok)
        LEDGER.committed_objects_compared += sum(1 for e in countable if self._rel(e)[1] in committed and e not in gone_ok)
        LEDGER.committed_objects_lost += sum(1 for e in changed if self._rel(e)[1] in committed and e not in after)
        LEDGER.committed_objects_changed += sum(1 for e in changed if self._rel(e)[1] in committed and e in after)
        LEDGER.store_entries_changed += len(changed) + len(new)
        LEDGER.garbage_removed += sum(1 for e in countable if e in gone_ok and e not in after)
        LEDGER.outside_entries_compared += len(set(before_out) | set(after_out))
        LEDGER.outside_entries_touched += len(outside)

        def show(entries: list[str]) -> list[str]:
            return [e.replace("\0", " ") + f"  {before.get(e, before_out.get(e))!r} -> {after.get(e, after_out.get(e))!r}"
                    for e in entries[:10]]

        problems = []
        if changed:
            problems.append(f"store entries changed or lost: {show(changed)}")
        if new:
            problems.append(f"store entries appeared: {show(new)}")
        if outside:
            problems.append(f"entries OUTSIDE the store changed: {show(outside)}")
        if not_removed:
            problems.append(f"garbage that should be gone is still there: {show(not_removed)}")
        assert not problems, "\n".join(problems)

    def cli(self, *args: str, timeout: float = 60, process: bool = False) -> Any:
        """``kerascut ARGS`` on this working tree, in this process unless ``process`` (tests/support/cli.py)."""
        from tests.support.cli import kerascut

        env: dict[str, str | None] = {k: None for k in
                                      ("PREFECT_API_URL", "KERASCUT_DEBUG", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE")}
        env.update(KERASCUT_CACHE_DIR=str(self.cache), NO_COLOR="1", COLUMNS="200", TF_CPP_MIN_LOG_LEVEL="2")
        started = time.monotonic()
        out = kerascut(*args, env=env, cwd=self.tmp, timeout=timeout, process=process)  # type: ignore[arg-type]
        out.seconds = time.monotonic() - started  # type: ignore[union-attr]
        return out

    def cli_many(self, *arglists: list[str], timeout: float = 60) -> list[subprocess.CompletedProcess]:
        """Several independent, read-only commands side by side (in order of ``arglists``)."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=3) as pool:
            return list(pool.map(lambda args: self.cli(*args, timeout=timeout, process=True), arglists))


class LocalWorld(World):
    kind = "local"

    def __init__(self, template: Template, tmp: Path, nodeid: str, *, seeded: bool = True) -> None:
        super().__init__(template, tmp, nodeid)
        self.base = tmp / "world"
        shutil.copytree(template.world, self.base, symlinks=True)  # copy2: mtimes kept
        self.root = self.base / "backbones"
        self.outside = self.base / "outside"
        if not seeded:
            shutil.rmtree(self.root)
        self.store_uri = str(self.root)

    def _take(self):
        return local_tree(self.root), local_tree(self.base, prune=[self.root], meta=True)

    def _rel(self, entry):
        return "path", entry

    def put(self, rel, data, *, old=False, sha256=None):
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        path.write_bytes(data)
        if old:
            os.utime(path, (OLD, OLD))

    def remove(self, rel):
        (self.root / rel).unlink()

    def copy_tree(self, src, dst):
        shutil.copytree(self.root / src, self.root / dst, symlinks=True)

    def plant_outside(self, rel, data):
        path = self.base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        age(path.parent)
        os.utime(path, (OLD, OLD))

    def outside_uri(self, rel):
        return str(self.base / rel)

    def rel_of_uri(self, uri):
        return Path(uri).relative_to(self.root).as_posix()

    def age_store(self, *rels: str) -> None:
        for rel in rels:
            path = self.root / rel
            os.utime(path, (OLD, OLD))


class S3World(World):
    kind = "s3"

    def __init__(self, template: Template, tmp: Path, nodeid: str, *, client: Any, bucket: str, prefix: str = "prod",
                 seeded: bool = True) -> None:
        super().__init__(template, tmp, nodeid)
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")
        self.store_uri = f"s3://{bucket}/{self.prefix}"
        if seeded:  # the template store, object for object, with the sha256 kerascut records
            for path in sorted(template.store.rglob("*")):
                rel = path.relative_to(template.store).as_posix()
                if path.is_file() and not rel.startswith(".kerascut-locks"):
                    self.put(rel, path.read_bytes(), sha256=sha(path.read_bytes()))
        parent = self.prefix.rpartition("/")[0]
        up = f"{parent}/" if parent else ""
        # neighbours: a sibling prefix sharing the store's name as a string prefix, user files
        for rel in (f"{self.prefix}-old/{MNV2}/{V1}/model.keras", f"{self.prefix}-old/.staging/{MNV2}/x/y/model.keras",
                    f"{up}photos/2020/01/a.jpg", f"{up}README.txt", "top-level.txt"):
            self.plant_outside(rel, rel.encode())

    def _key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}"

    def _take(self):
        inside, outside = {}, {}
        for entry, value in s3_tree(self.client, self.bucket).items():
            key = entry.split("\0")[1]
            (inside if key.startswith(self.prefix + "/") else outside)[entry] = value
        return inside, outside

    def _rel(self, entry):
        tag, key, _ = entry.split("\0")
        return tag, key[len(self.prefix) + 1:]

    def put(self, rel, data, *, old=False, sha256=None):
        extra = {"Metadata": {"sha256": sha256}} if sha256 else {}
        self.client.put_object(Bucket=self.bucket, Key=self._key(rel), Body=data, **extra)

    def remove(self, rel):
        self.client.delete_object(Bucket=self.bucket, Key=self._key(rel))

    def copy_tree(self, src, dst):
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(src) + "/"):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(self._key(src)) + 1:]
                self.client.copy_object(Bucket=self.bucket, Key=self._key(f"{dst}/{rel}"),
                                        CopySource={"Bucket": self.bucket, "Key": obj["Key"]}, MetadataDirective="COPY")

    def plant_outside(self, rel, data):
        self.client.put_object(Bucket=self.bucket, Key=rel, Body=data)

    def outside_uri(self, rel):
        return f"s3://{self.bucket}/{rel}"

    def rel_of_uri(self, uri):
        assert uri.startswith(self.store_uri + "/"), uri
        return uri[len(self.store_uri) + 1:]

    def start_upload(self, rel: str) -> str:
        """An incomplete multipart upload (a writer that died mid-transfer); returns its id."""
        up = self.client.create_multipart_upload(Bucket=self.bucket, Key=self._key(rel))
        self.client.upload_part(Bucket=self.bucket, Key=self._key(rel), UploadId=up["UploadId"], PartNumber=1,
                                Body=b"partial part")
        return up["UploadId"]


# ---------------------------------------------------------------------------------------------
# garbage of every kind the publish protocol can leave behind (and things that only look like it)
# ---------------------------------------------------------------------------------------------

G1, G2, G3, G4, G5, G6, G7, G8 = (f"5a5a5a5a5a5a5a{i:02d}" for i in range(1, 9))
RUN = {g: f"20200101T000000Z-0000{i:04x}" for i, g in enumerate((G1, G2, G3, G4, G5, G6, G7, G8), 1)}
NOT_THIS_HOST = "elsewhere.invalid"


@dataclass
class Garbage:
    removed: set[str]  # store-relative keys a gc with the given threshold must remove
    aborted: set[str]  # keys of multipart uploads it must abort
    kept: set[str]  # keys it must keep although they look like garbage (besides committed ones)
    skipped: set[str]  # keys gc reports as skipped


def plant_garbage(world: World, *, recent_removed: bool) -> Garbage:
    """Every kind of protocol garbage, old, plus recent garbage (removed only when
    ``recent_removed``: gc --older-than 0), a live claim, a nested store and user files."""
    from kerascut_core.publishing import stage_candidate

    store = world.store
    cand = world.tmp / "cand"
    cand.mkdir(exist_ok=True)
    (cand / "model.keras").write_bytes(b"a candidate " * 50)
    (cand / "saved_model.pb").write_bytes(b"a nested candidate " * 20)
    removed: set[str] = set()
    recent: set[str] = set()
    kept: set[str] = set()
    skipped: set[str] = set()
    aborted: set[str] = set()

    def staged(name: str, g: str, into: set[str], nested: bool = False) -> None:
        files = {"model.keras": cand / "model.keras"}
        if nested:
            files["saved_model/saved_model.pb"] = cand / "saved_model.pb"
        stage_candidate(store, name, g, files, run_id=RUN[g])
        base = f".staging/{name}/{g}/{RUN[g]}"
        into.update({f"{base}/{rel}" for rel in files} | {f"{base}/staged.json", f"{base}/run.json"})

    def put(rel: str, data: bytes, into: set[str]) -> None:
        world.put(rel, data)
        into.add(rel)

    # a complete staged candidate of a dead run (nested files), and an incomplete one
    staged(MNV2, G1, removed, nested=True)
    put(f".staging/{MNV2}/{G2}/{RUN[G2]}/model.keras", b"half a candidate", removed)
    # a stale claim (lease expired long ago) and an unreadable one
    put(f".staging/{MNV2}/{G2}/claim.json", json.dumps({
        "run_id": RUN[G2], "token": "t", "host": NOT_THIS_HOST, "pid": 1, "expires_at": 1.0}).encode(), removed)
    # a torn claim is stale only once nobody has rewritten it for a whole lease: aged on a local
    # store, just written (so held) on S3, where an object's time cannot be set back
    put(f".staging/{RESNET}/{G8}/claim.json", b"{torn", removed if isinstance(world, LocalWorld) else kept)
    # a commit that died before its manifest: flat and nested artifacts, no manifest.json
    put(f"{MNV2}/{G3}/model.keras", b"uncommitted", removed)
    put(f"{MNV2}/{G3}/saved_model/variables/variables.index", b"uncommitted, nested", removed)
    # a backbone that never got committed: known only from its staging
    staged("newbb", G4, removed)
    put(f"newbb/{G4}/model.keras", b"uncommitted", removed)
    # a live claim (another host, lease far in the future): its run and version directory stay
    put(f".staging/{MNV2}/{G7}/claim.json", json.dumps({
        "run_id": RUN[G7], "token": "t7", "host": NOT_THIS_HOST, "pid": 1,
        "expires_at": time.time() + 10**6}).encode(), kept)
    put(f".staging/{MNV2}/{G7}/{RUN[G7]}/model.keras", b"being committed", kept)
    put(f"{MNV2}/{G7}/model.keras", b"being committed", kept)
    # not something kerascut writes into staging: reported, kept
    put(f".staging/{MNV2}/notes.txt", b"a person's notes", kept)
    skipped.add(f".staging/{MNV2}/notes.txt")
    # user files at the root of the store
    put("README.txt", b"what this store is", kept)
    # a nested store, with garbage-looking content of its own: none of it is this store's
    put(f"team/{MARKER}", json.dumps({"kerascut_store": True, "layout": 1}).encode(), kept)
    put(f"team/{MNV2}/{G5}/model.keras", b"the nested store's", kept)
    put(f"team/.staging/{MNV2}/{G5}/{RUN[G5]}/model.keras", b"the nested store's", kept)
    put(f"team/{MNV2}/latest.json", json.dumps({"version": G5}).encode(), kept)
    # recent garbage: kept under a 24h threshold, removed with --older-than 0
    staged(MNV2, G6, recent)
    put(f"{MNV2}/{G6}/model.keras", b"recent, uncommitted", recent)

    if isinstance(world, LocalWorld):
        tmp1 = f"{MNV2}/.kerascut-tmp-{uuid.uuid4().hex}-latest.json"
        tmp2 = f"{MNV2}/{G3}/.kerascut-tmp-{uuid.uuid4().hex}-model.keras"
        put(tmp1, b"a torn pointer", removed)
        put(tmp2, b"a torn artifact", removed)
        put(f"team/.kerascut-tmp-{uuid.uuid4().hex}-x", b"the nested store's", kept)
        for rel in removed | kept:
            world.age_store(rel)
    else:
        for rel in (f".staging/{MNV2}/{G1}/{RUN[G1]}/big.bin", f"{MNV2}/{G3}/model.keras"):
            world.start_upload(rel)
            aborted.add(rel)
        for rel in (f"{MNV2}/{V1}/saved_model/extra.bin", f"team/{MNV2}/{G5}/x.bin",
                    f".staging/{MNV2}/{G7}/{RUN[G7]}/big.bin", f"{MNV2}/{G7}/model2.keras"):
            world.start_upload(rel)  # committed, nested store, live run, live version: never aborted
        world.client.create_multipart_upload(Bucket=world.bucket, Key=f"{world.prefix}-old/.staging/{MNV2}/a/b/c")
    if recent_removed:
        removed |= recent
    else:
        kept |= recent
    return Garbage(removed, aborted, kept, skipped)
