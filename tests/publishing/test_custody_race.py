"""Retention races pointer moves and publishes in several processes; no pointer ever dangles.

Four worker processes (``spawn``) act on each try at once: retention with ``keep_last=1``, a
promote of the oldest version, an alias move onto the next, and a publish with its retention
step (tests/support/race_world.py says what each try checks). The main slice runs 100 tries on a local
store and 15 on the S3 API server (each try there is about 60 requests); the ``slow`` variant
runs hundreds, on a versioned bucket too.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.race_world import ROLES, Race

#: tries per store kind, and the largest random delay (seconds) before each worker acts, about
#: what one operation takes: milliseconds locally, a fraction of a second on the S3 API server
#: (a try there costs ~60 requests, a full publish among them)
FAST = {"local": (100, 0.015), "s3": (15, 0.4)}
SLOW = {"local": (500, 0.015), "s3": (150, 0.4), "s3-versioned": (100, 0.4)}


def _uri(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> Iterator[str]:
    """A local store in memory where the system has one (``/dev/shm``: the race is about
    renames, links and locks, not about fsync), else under ``tmp_path``; or an S3 prefix."""
    if kind != "local":
        bucket = request.getfixturevalue("s3_versioned_bucket" if kind == "s3-versioned" else "s3_bucket")
        yield f"s3://{bucket}/backbones"
        return
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        with tempfile.TemporaryDirectory(dir=shm, prefix="kerascut-race-") as root:
            yield f"{root}/store"
    else:
        yield str(tmp_path / "store")


def _race(uri: str, kind: str, tries: int, jitter: float, seed: int) -> None:
    from kerascut_core.publishing.root import ensure_store_root
    from kerascut_core.stores import open_store

    store = open_store(uri)
    ensure_store_root(store)
    race = Race(uri, jitter, seed=seed)
    try:
        tally = race.run(store, tries)
    finally:
        race.close()
    print("\n" + tally.line(kind, len(ROLES)))
    assert tally.problems == [], "\n".join(tally.problems[:5])
    assert tally.dangling == 0
    # the race is a race: moves and removals both happened
    assert tally.outcomes["promote_moved"] + tally.outcomes["alias_moved"] > 0
    assert tally.outcomes["retain_removed"] + tally.outcomes["publish_removed"] > 0


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_retention_never_leaves_a_pointer_dangling(request, tmp_path, kind):
    tries, jitter = FAST[kind]
    for uri in _uri(request, kind, tmp_path):
        _race(uri, kind, tries, jitter, seed=1)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["local", "s3", "s3-versioned"])
def test_retention_never_leaves_a_pointer_dangling_many_tries(request, tmp_path, kind):
    tries, jitter = SLOW[kind]
    for uri in _uri(request, kind, tmp_path):
        _race(uri, kind, tries, jitter, seed=2)


def test_a_write_survives_a_concurrent_delete_removing_its_new_directory(tmp_path, monkeypatch):
    """What the race found: ``delete`` removes directories it leaves empty, so a parent that a
    writer has just created can go before the writer creates its child directory or file."""
    from kerascut_core.stores import open_store

    store = open_store(tmp_path / "store")
    real_mkdir = Path.mkdir
    removed = []

    def mkdir_then_lose_it(self, *args, **kwargs):
        real_mkdir(self, *args, **kwargs)
        if len(removed) < 2 and self.name == "b":  # a concurrent delete empties and removes it, twice
            self.rmdir()
            removed.append(self)
            raise FileNotFoundError(2, "No such file or directory", str(self))

    monkeypatch.setattr(Path, "mkdir", mkdir_then_lose_it)
    store.put_bytes("a/b/c.json", b"{}")
    assert store.get_bytes("a/b/c.json") == b"{}" and len(removed) == 2
