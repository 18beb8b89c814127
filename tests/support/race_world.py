"""The race world: retention against pointer moves and publishes, in several real processes.

Each *try* works on a fresh backbone ``r<try>`` of one store. The parent writes three committed
versions ``V0 < V1 < V2`` (tiny artifacts, written directly: the race is about what happens
next, not about committing), then releases four worker processes at once through a barrier,
each after a random delay drawn for the try (up to about the time an operation takes, so each
of them goes first in some tries):

* ``retain``: retention with ``keep_last=1`` on the backbone (what ``gc --keep-last 1`` does);
  it wants ``V0`` and ``V1`` gone;
* ``promote``: ``promote(V0)``, which pins ``latest`` onto the oldest version;
* ``alias``: ``promote(V1, alias="prod")``;
* ``publish``: stages and commits ``V3``, moves ``latest`` onto it (an automatic update, which a
  pin on a committed version holds) and applies the retention step of a publish.

Nothing else moves ``latest`` off ``V0`` or ``prod`` off ``V1`` within a try, so the claims of
:mod:`kerascut_core.publishing.exclusion` give exact expectations, which :func:`check_try`
asserts after every try:

* every pointer names a version whose ``manifest.json`` exists and reads (a *dangling* pointer
  is counted, and there must be none);
* a successful ``promote`` leaves its pointer on its version and that version committed, and
  no retention report lists it as removed: no version a pointer named at the moment of its
  deletion was deleted;
* every refusal is one of the protocol's one-line errors (the version went first:
  :class:`ObjectNotFoundError`, :class:`IntegrityError`), never anything else, and the retention
  step of the publish reports no error.

Workers call the core API directly (no CLI), are started once (``spawn``) and serve every try
of a run through queues, so a try costs a few store requests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import multiprocessing
import os
import random
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

ROLES = ("retain", "promote", "alias", "publish")
ALIAS = "prod"
#: the refusals a racing move may meet: the version was removed (or is being removed) first
REFUSALS = ("ObjectNotFoundError", "IntegrityError")


def versions_of(index: int) -> list[str]:
    """The four versions of try ``index`` (16 lowercase hex digits, oldest first)."""
    return [f"{index:012x}{i:04x}" for i in range(4)]


def manifest_for(name: str, version: str, data: bytes, created_at: dt.datetime | None = None) -> Any:
    from kerascut_core.publishing.manifest import Artifact, Manifest

    return Manifest(
        name=name,
        version=version,
        created_at=created_at or dt.datetime.now(dt.timezone.utc),
        source={"uri": "keras.applications/MobileNetV2", "fingerprint": "fp", "weights": "none"},
        cut={"end": "block_13_expand_relu"},
        inputs=[{"name": "input", "shape": [None, 96, 96, 3], "dtype": "float32"}],
        outputs=[{"name": "out", "shape": [None, 6, 6, 576], "dtype": "float32"}],
        params={"total_source": 100, "kept": 60},
        validation={"passed": True, "max_abs_diff": 0.0},
        artifacts=[Artifact(path="model.keras", format="keras", bytes=len(data),
                            sha256=hashlib.sha256(data).hexdigest())],
    )


def arrange(store: Any, index: int) -> str:
    """Write try ``index``'s backbone with ``V0 < V1 < V2`` committed; return its name."""
    from kerascut_core.publishing.layout import manifest_key

    name = f"r{index}"
    base = dt.datetime.now(dt.timezone.utc)
    for i, version in enumerate(versions_of(index)[:3]):
        data = f"{name}-{version}".encode()
        store.put_bytes(f"{name}/{version}/model.keras", data)
        manifest = manifest_for(name, version, data, base + dt.timedelta(microseconds=i))
        store.put_bytes(manifest_key(name, version), manifest.to_json().encode())
    return name


def _act(store: Any, role: str, name: str, index: int, scratch: str) -> dict[str, Any]:
    from kerascut_core.publishing import commit_version, promote, stage_candidate, update_latest
    from kerascut_core.publishing.retention import apply_retention, retain_after_publish

    v0, v1, _, v3 = versions_of(index)
    if role == "retain":
        report = apply_retention(store, 1, names=[name])
        return {"removed": report.removed_versions, "kept": report.kept}
    if role == "promote":
        return {"moved": promote(store, name, v0)["version"]}
    if role == "alias":
        return {"moved": promote(store, name, v1, alias=ALIAS)["version"]}
    data = f"{name}-{v3}".encode()
    path = os.path.join(scratch, f"{name}.keras")
    with open(path, "wb") as handle:
        handle.write(data)
    uri = stage_candidate(store, name, v3, {"model.keras": path})
    result = commit_version(store, name, v3, uri, manifest_for(name, v3, data))
    latest = update_latest(store, name, v3)
    report = retain_after_publish(store, name, 1)
    return {"committed": result.committed, "latest": latest.get("version"), "removed": report.removed_versions,
            "kept": report.kept, "error": report.error}


def _unguard() -> None:
    """Replace the claim a pointer move holds by a bare existence check (check, then act): the
    control that shows the race finds what the exclusion prevents."""
    import contextlib

    from kerascut_core.errors import ObjectNotFoundError
    from kerascut_core.publishing import pointers
    from kerascut_core.publishing.layout import manifest_key

    @contextlib.contextmanager
    def checked_only(store: Any, name: str, version: str, pointer: str) -> Any:
        if not store.exists(manifest_key(name, version)):
            raise ObjectNotFoundError(f"{name}/{version} is not committed")
        yield

    pointers.moving_onto = checked_only  # type: ignore[assignment]


def worker(uri: str, role: str, tasks: Any, results: Any, barrier: Any, unguarded: bool = False) -> None:
    """Serve tries until ``None`` arrives: wait at the barrier, sleep the try's delay, act."""
    from kerascut_core.stores import open_store

    if unguarded:
        _unguard()
    store = open_store(uri)
    with tempfile.TemporaryDirectory(prefix="kerascut-race-") as scratch:
        while True:
            task = tasks.get()
            if task is None:
                return
            index, name, delay = task
            outcome: dict[str, Any] = {"role": role, "index": index}
            try:
                barrier.wait(timeout=120)
                time.sleep(delay)
                started = time.perf_counter()
                outcome.update(_act(store, role, name, index, scratch), ok=True)
                outcome["seconds"] = time.perf_counter() - started
            except Exception as exc:  # reported to the parent, which decides what is allowed
                outcome.update(ok=False, error=type(exc).__name__, message=str(exc),
                               trace=traceback.format_exc(limit=8))
            results.put(outcome)


@dataclass
class Tally:
    """What a run of tries saw: the figures the test prints."""

    tries: int = 0
    dangling: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def line(self, kind: str, processes: int) -> str:
        seen = ", ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items()))
        return (f"race[{kind}]: {self.tries} tries, {processes} processes, dangling={self.dangling}, "
                f"problems={len(self.problems)} ({seen})")


def _pointers(store: Any, name: str) -> dict[str, str]:
    from kerascut_core.publishing.layout import LATEST_ALIAS
    from kerascut_core.publishing.pointers import read_latest, scan_aliases

    pointers = {}
    latest = read_latest(store, name)
    if latest is not None:
        pointers[LATEST_ALIAS] = latest
    aliases, problems = scan_aliases(store, name)
    if problems:
        raise AssertionError(f"{name}: its aliases cannot be read: {problems}")
    pointers.update(aliases)
    return pointers


def _committed(store: Any, name: str, version: str) -> bool:
    from kerascut_core.errors import StoreError
    from kerascut_core.publishing.listing import read_manifest

    try:
        read_manifest(store, name, version)
    except StoreError:
        return False
    return True


def check_try(store: Any, name: str, index: int, outcomes: list[dict[str, Any]], tally: Tally) -> None:
    """Assert the invariants of the module docstring for one try; count into ``tally``."""
    v0, v1, _, v3 = versions_of(index)
    tally.tries += 1
    problems: list[str] = []
    pointers = _pointers(store, name)
    for pointer, version in sorted(pointers.items()):
        if not _committed(store, name, version):
            tally.dangling += 1
            problems.append(f"{name}@{pointer} names {version}, which is not committed")
    by_role = {o["role"]: o for o in outcomes}
    removed: set[str] = set()
    for role in ("retain", "publish"):
        outcome = by_role[role]
        if outcome["ok"]:
            removed.update(v.split("@", 1)[1] for v in outcome["removed"])
    for role, pointer, version in (("promote", "latest", v0), ("alias", ALIAS, v1)):
        outcome = by_role[role]
        if outcome["ok"]:
            tally.outcomes[f"{role}_moved"] += 1
            if pointers.get(pointer) != version or not _committed(store, name, version) or version in removed:
                problems.append(f"{name}: {role} moved {pointer} onto {version}, yet at the end {pointer} names "
                                f"{pointers.get(pointer)} and {version} was removed={version in removed}")
        elif outcome["error"] in REFUSALS:
            tally.outcomes[f"{role}_refused"] += 1
            if "\n" in outcome["message"].strip():
                problems.append(f"{name}: {role} refused in more than one line: {outcome['message']!r}")
        else:
            problems.append(f"{name}: {role} failed unexpectedly: {outcome['trace']}")
    for role in ("retain", "publish"):
        outcome = by_role[role]
        if not outcome["ok"]:
            problems.append(f"{name}: {role} failed: {outcome['trace']}")
            continue
        if outcome.get("error"):
            problems.append(f"{name}: the retention step of the publish failed: {outcome['error']}")
        tally.outcomes[f"{role}_removed"] += len(outcome["removed"])
        tally.outcomes[f"{role}_kept"] += len(outcome["kept"])
    if by_role["publish"]["ok"] and not _committed(store, name, v3):
        problems.append(f"{name}: the publish committed {v3}, and it is gone (retention removed the newest)")
    tally.problems.extend(problems)


class Race:
    """Four worker processes (one per role) serving tries on the store at ``uri``.

    ``unguarded=True`` runs the moves without their claim (:func:`_unguard`): a control, not a
    test of kerascut.
    """

    def __init__(self, uri: str, jitter: float, seed: int = 0, *, unguarded: bool = False) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.uri = uri
        self.jitter = jitter
        self.rng = random.Random(seed)
        self.results = ctx.Queue()
        self.barrier = ctx.Barrier(len(ROLES))
        self.queues = {role: ctx.Queue() for role in ROLES}
        self.processes = [
            ctx.Process(target=worker, args=(uri, role, self.queues[role], self.results, self.barrier, unguarded),
                        daemon=True, name=f"race-{role}")
            for role in ROLES
        ]
        for process in self.processes:
            process.start()

    def run(self, store: Any, tries: int, first: int = 0) -> Tally:
        """Run ``tries`` tries (indices from ``first``), checking each; return the tally."""
        tally = Tally()
        for index in range(first, first + tries):
            name = arrange(store, index)
            for role in ROLES:  # a random delay each: any of them may go first
                self.queues[role].put((index, name, self.rng.uniform(0.0, self.jitter)))
            outcomes = [self.results.get(timeout=300) for _ in ROLES]
            check_try(store, name, index, outcomes, tally)
        return tally

    def close(self) -> None:
        for role in ROLES:
            self.queues[role].put(None)
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
