"""Garbage collection: remove only what the publish protocol itself can leave behind.

    >>> from kerascut_core.stores import open_store
    >>> report = gc(open_store("./backbones"), older_than=86400, dry_run=True)   # doctest: +SKIP
    >>> report.removed                                                           # doctest: +SKIP

What gc may remove, and nothing else (see ``commit.py`` for the protocol that leaves it):

* ``.staging/<name>/<version>/claim.json`` whose lease is stale;
* ``.staging/<name>/<version>/<run_id>/...``: staged candidates of runs that are not live (a
  run is live while its version's claim names it, or while its run record ``run.json``, the
  first object it stages, is live: :mod:`kerascut_core.publishing.run_record`; a live run's
  staging is kept whatever ``older_than`` says);
* ``<name>/<version>/...`` with no ``manifest.json``: a commit that died before its manifest,
  in a directory that is a backbone of this store (it has ``latest.json``, a committed version
  or staging entries), and only when ``<version>`` is a name the protocol creates: 16 lowercase
  hex digits (the content address every pipeline version has), or a name that has its own
  staging entry ``.staging/<name>/<version>/`` (a version named by hand through the API).
  Any other directory under a backbone (``notes/``, ``eval-results/run1/``, an uppercase hex
  name) is a person's, whatever its age: it is reported in ``GcReport.skipped`` and left;
* multipart uploads never completed, for keys of those two kinds;
* ``.kerascut-tmp-*`` files of a local store (a writer killed between write and rename) that
  nobody has written to for both ``older_than`` and a claim's default lease (a writer's file
  in progress is never one), outside live runs.

What gc never removes, however it is pointed: anything under a directory holding a
``manifest.json`` at any depth (``saved_model/``, ``assets/`` and every future format included),
any ``latest.json``, anything under a backbone's ``aliases/`` or ``history/`` (the pointers and
their history; those two names are reserved, no version is ever called that, see
:mod:`kerascut_core.publishing.layout`), anything of another store nested inside (a directory with its own marker),
anything outside the store prefix, and anything reached through a link. On a versioned S3
bucket, a version directory whose ``manifest.json`` has any noncurrent object version (it was
committed once, and its manifest was deleted: a delete marker) is *recoverable*: none of its
objects is touched and ``GcReport.recoverable`` gives the command that restores the manifest.
A path that is not a store root is refused before anything is listed
(:func:`require_store_root`). An entry it cannot parse (a claim that is not JSON, too deep, or
whose ``expires_at`` is not a finite number) is skipped and reported in ``GcReport.skipped``,
never fatal; such a claim is removed only once it is provably stale
(:func:`~kerascut_core.publishing.claim.claim_is_stale`).

``dry_run=True`` computes the same plan and deletes nothing: the list it returns is exactly
what a real run with the same arguments deletes, when nothing changes in between.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kerascut_core.errors import ObjectNotFoundError, StoreError
from kerascut_core.publishing.claim import DEFAULT_LEASE_SECONDS, claim_is_stale, read_claim
from kerascut_core.publishing.layout import (
    CLAIM,
    LATEST,
    MANIFEST,
    MARKER,
    RESERVED,
    RUN_RECORD,
    STAGING,
    looks_like_version,
)
from kerascut_core.publishing.recovery import recoverable_manifest
from kerascut_core.publishing.root import require_store_root
from kerascut_core.publishing.run_record import run_is_live
from kerascut_core.stores import ObjectInfo, Store
from kerascut_core.stores.capabilities import IncompleteUploads, LocalRoot, TempFiles
from kerascut_core.text import one_line
from kerascut_core.uris import check_name

__all__ = ["GcReport", "gc"]


@dataclass
class GcReport:
    """What ``gc`` removed (or would remove with ``dry_run``), kept on purpose, and skipped."""

    removed: list[str] = field(default_factory=list)
    aborted_uploads: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    recoverable: list[str] = field(default_factory=list)
    dry_run: bool = False


def gc(store: Store, older_than: float | dt.timedelta = dt.timedelta(hours=24), *, dry_run: bool = False) -> GcReport:
    """Remove orphaned staging, stale claims, uncommitted version leftovers and partial uploads.

    Only objects older than ``older_than`` (seconds or a timedelta) go; see the module
    docstring for what can never go. Raises :class:`StoreRootError` when ``store`` is not a
    store root.

    The steps: scan the store once and mark what is protected; read the claims (a live one
    keeps its run and version); plan the staging runs, the uncommitted version directories,
    the incomplete uploads and the temporary files; report the plan; and, unless ``dry_run``,
    carry out exactly that plan.
    """
    require_store_root(store, "gc")
    cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=_seconds(older_than))
    report = GcReport(dry_run=dry_run)
    scan = _scan(store, report)
    live = _read_claims(store, scan, cutoff, report)
    plan = _Plan(keys=list(live.stale_claims))
    _plan_staging(store, scan, live, cutoff, plan, report)
    _plan_versions(store, scan, live, cutoff, plan, report)
    _plan_uploads(store, scan, live, cutoff, plan)
    _plan_temp_files(store, live, cutoff, plan)
    _report_plan(store, plan, report)
    if not dry_run:
        _execute(store, plan, report)
    return report


# -- what the steps share ------------------------------------------------------------------


@dataclass
class _Scan:
    """One listing of the store, and the directories under which nothing is deleted."""

    objects: list[ObjectInfo]
    staging: list[ObjectInfo]
    #: committed versions and nested stores; a recoverable version directory joins them
    protected: set[str]
    #: backbone names of this store (``latest.json``, a committed version or staging entries)
    backbones: set[str] = field(default_factory=set)
    #: ``name/version`` of every staging entry (a version named by hand through the API)
    staged_versions: set[str] = field(default_factory=set)

    def protocol_dir(self, version_dir: str) -> bool:
        """Whether the protocol creates this directory name (see the module docstring)."""
        return looks_like_version(version_dir.split("/")[1]) or version_dir in self.staged_versions


@dataclass
class _Live:
    """What the claims say: runs and versions a live claim holds, and stale claims to remove."""

    runs: set[str] = field(default_factory=set)
    versions: set[str] = field(default_factory=set)
    stale_claims: list[str] = field(default_factory=list)


@dataclass
class _Plan:
    """Everything a run deletes: store keys, incomplete uploads, temporary files."""

    keys: list[str] = field(default_factory=list)
    uploads: list[tuple[str, str]] = field(default_factory=list)
    temps: list[Path] = field(default_factory=list)


# -- the steps ------------------------------------------------------------------------------


def _scan(store: Store, report: GcReport) -> _Scan:
    """List the store once; protect committed versions, nested stores and what links hide."""
    listing = store.scan("")
    report.skipped.extend(f"{where} ({why})" for where, why in listing.skipped)
    keys = [o.key for o in listing.objects]
    protected = _protected_dirs(keys)
    # a link or special file is never followed, so what it stands for is unknown: a manifest,
    # marker or pointer that is one protects like a real one, and any of them keeps its version
    # directory (a version whose manifest.json is a link is not garbage to collect)
    unknown = [rel for rel in (_relative(store, where) for where, _ in listing.skipped) if rel]
    protected |= _protected_dirs(unknown)
    protected |= {"/".join(rel.split("/")[:2]) for rel in unknown if rel.count("/") >= 1 and not rel.startswith(f"{STAGING}/")}
    staging = [o for o in listing.objects if o.key.startswith(f"{STAGING}/")]
    scan = _Scan(listing.objects, staging, protected)
    scan.backbones = {k.split("/")[0] for k in keys if k.count("/") == 1 and k.endswith(f"/{LATEST}")}
    scan.backbones |= {k.split("/")[0] for k in keys if k.count("/") == 2 and k.endswith(f"/{MANIFEST}")}
    scan.backbones |= {parts[1] for parts in (o.key.split("/") for o in staging)
                       if len(parts) >= 5 and _valid_segments(parts[1], parts[2], parts[3])}
    scan.staged_versions = {"/".join(o.key.split("/")[1:3]) for o in staging if o.key.count("/") >= 3}
    return scan


def _read_claims(store: Store, scan: _Scan, cutoff: dt.datetime, report: GcReport) -> _Live:
    """Read every claim: a live one keeps its run and its version directory; a stale one older
    than ``cutoff`` is removed. A claim that cannot be read is reported and judged by its age."""
    live = _Live()
    for obj in scan.staging:
        parts = obj.key.split("/")
        if not (len(parts) == 4 and parts[3] == CLAIM and _valid_segments(parts[1], parts[2])):
            continue
        try:
            claim: Any = read_claim(store, obj.key)
        except ObjectNotFoundError:
            continue  # released meanwhile
        except StoreError as exc:
            claim = None
            report.skipped.append(f"{store.uri(obj.key)} ({one_line(exc, 300)})")
        if claim_is_stale(claim, obj.last_modified):
            if obj.last_modified < cutoff:
                live.stale_claims.append(obj.key)
        else:
            live.versions.add(f"{parts[1]}/{parts[2]}")
            if isinstance(claim, dict) and isinstance(claim.get("run_id"), str):
                live.runs.add(f"{STAGING}/{parts[1]}/{parts[2]}/{claim['run_id']}")
    return live


def _plan_staging(store: Store, scan: _Scan, live: _Live, cutoff: dt.datetime, plan: _Plan, report: GcReport) -> None:
    """Plan the staged runs that are not live and whose newest object is older than ``cutoff``."""
    runs: dict[str, list[ObjectInfo]] = {}
    for obj in scan.staging:
        parts = obj.key.split("/")
        if len(parts) >= 5 and _valid_segments(parts[1], parts[2], parts[3]):
            runs.setdefault("/".join(parts[:4]), []).append(obj)
        elif not (len(parts) == 4 and parts[3] == CLAIM):
            report.skipped.append(f"{store.uri(obj.key)} (not a staging entry kerascut writes)")
    for run, objects in sorted(runs.items()):
        record = [o for o in objects if o.key == f"{run}/{RUN_RECORD}"]
        if run in live.runs or (record and run_is_live(store, run, record[0].last_modified)):
            live.runs.add(run)  # a live run's staging, whatever its age
            report.kept.append(store.uri(run))
        elif not _old(objects, cutoff):
            report.kept.append(store.uri(run))
        else:
            plan.keys.extend(o.key for o in objects)


def _plan_versions(store: Store, scan: _Scan, live: _Live, cutoff: dt.datetime, plan: _Plan, report: GcReport) -> None:
    """Plan the uncommitted version directories of this store's backbones: protocol names only,
    not live, older than ``cutoff``, and not recoverable from object versions."""
    by_version: dict[str, list[ObjectInfo]] = {}
    for obj in scan.objects:
        parts = obj.key.split("/")
        if len(parts) < 3 or parts[0].startswith(".") or parts[0] not in scan.backbones:
            continue
        if parts[1] in RESERVED:
            continue  # the backbone's aliases and pointer history: never garbage
        if not _valid_segments(parts[0], parts[1]):
            continue
        by_version.setdefault(f"{parts[0]}/{parts[1]}", []).append(obj)
    for version_dir, objects in sorted(by_version.items()):
        if version_dir in scan.protected or _under(version_dir + "/x", scan.protected):
            continue  # committed (or holding a store): never touched
        if any(_under(o.key, scan.protected) for o in objects):
            continue
        if not scan.protocol_dir(version_dir):
            report.skipped.append(f"{store.uri(version_dir)} (not a directory kerascut creates: a version is 16 "
                                  "lowercase hex digits; left as it is)")
            continue
        if version_dir in live.versions or not _old(objects, cutoff):
            report.kept.append(store.uri(version_dir))
            continue
        restore = recoverable_manifest(store, f"{version_dir}/{MANIFEST}")
        if restore is not None:
            report.recoverable.append(f"{store.uri(version_dir)} (committed once, its {MANIFEST} was deleted; "
                                      f"restore it with `{restore}`)")
            scan.protected.add(version_dir)
            continue
        plan.keys.extend(o.key for o in objects)


def _plan_uploads(store: Store, scan: _Scan, live: _Live, cutoff: dt.datetime, plan: _Plan) -> None:
    """Plan the incomplete uploads, started before ``cutoff``, of keys gc could remove anyway."""
    if not isinstance(store, IncompleteUploads):
        return
    for upload in store.incomplete_uploads(""):
        key = upload.key
        parts = key.split("/")
        ours = (parts[0] == STAGING and len(parts) >= 4) or (
            len(parts) >= 3 and parts[0] in scan.backbones and parts[1] not in RESERVED
            and scan.protocol_dir("/".join(parts[:2]))
        )
        if not ours or _under(key, scan.protected) or not _valid_segments(*[p for p in parts[:2] if p != STAGING]):
            continue
        if _under(key, live.runs) or "/".join(parts[:2]) in live.versions:
            continue  # the transfer of a commit in progress (its claim is live)
        if upload.initiated < cutoff:
            plan.uploads.append((key, upload.upload_id))


def _plan_temp_files(store: Store, live: _Live, cutoff: dt.datetime, plan: _Plan) -> None:
    """Plan the temporary files crashed writers left, older than ``cutoff`` and than a claim's
    default lease (a writer's file in progress is never one), outside nested stores, live runs
    and a backbone's ``aliases/`` and ``history/``."""
    if not isinstance(store, TempFiles):
        return
    root = store.root if isinstance(store, LocalRoot) else None

    def untouchable(path: Path) -> bool:
        if root is not None and path.parent.parent == root and path.name in RESERVED:
            return True
        if root is not None and path.relative_to(root).as_posix() in live.runs:
            return True
        return (path / MARKER).exists() and path != root

    temp_cutoff = min(cutoff.timestamp(), dt.datetime.now(dt.timezone.utc).timestamp() - DEFAULT_LEASE_SECONDS)
    plan.temps = [path for path, mtime in store.temp_files(skip=untouchable) if mtime < temp_cutoff]


def _report_plan(store: Store, plan: _Plan, report: GcReport) -> None:
    """Report the whole plan: a dry run returns it, a real run carries out exactly it."""
    report.removed.extend(store.uri(key) for key in plan.keys)
    report.removed.extend(str(p) for p in plan.temps)
    report.aborted_uploads.extend(store.uri(k) for k, _ in plan.uploads)


def _execute(store: Store, plan: _Plan, report: GcReport) -> None:
    """Delete the planned keys (a version directory committed since the scan is left whole),
    remove the temporary files and abort the uploads; what fails is reported, not raised."""
    committed_now: dict[str, bool] = {}
    live_now: dict[str, bool] = {}
    for key in plan.keys:
        parts = key.split("/")
        if parts[0] == STAGING and len(parts) >= 5:  # a run: recheck its record (it may have started since the scan)
            run = "/".join(parts[:4])
            if run not in live_now:
                live_now[run] = _live_now(store, run)
                if live_now[run]:
                    report.kept.append(store.uri(run))
            if live_now[run]:
                report.removed.remove(store.uri(key))
                continue
        elif parts[0] != STAGING:  # a version directory: recheck that it was not committed since
            version_dir = "/".join(parts[:2])
            if version_dir not in committed_now:
                try:
                    committed_now[version_dir] = store.exists(f"{version_dir}/{MANIFEST}")
                except StoreError as exc:  # a manifest that is now a link or special file: keep it all
                    committed_now[version_dir] = True
                    report.skipped.append(f"{store.uri(version_dir)} ({one_line(exc, 200)})")
            if committed_now[version_dir]:
                report.removed.remove(store.uri(key))
                continue
        try:
            store.delete(key)
        except StoreError as exc:
            report.removed.remove(store.uri(key))
            report.skipped.append(f"{store.uri(key)} ({one_line(exc, 200)})")
    for path in plan.temps:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    if plan.uploads and isinstance(store, IncompleteUploads):
        for key, upload_id in plan.uploads:
            store.abort_upload(key, upload_id)


# -- small helpers --------------------------------------------------------------------------


def _seconds(older_than: float | dt.timedelta) -> float:
    return older_than.total_seconds() if isinstance(older_than, dt.timedelta) else float(older_than)


def _old(objects: list[ObjectInfo], cutoff: dt.datetime) -> bool:
    return bool(objects) and max(o.last_modified for o in objects) < cutoff


def _live_now(store: Store, run: str) -> bool:
    """Whether the run directory ``run`` holds a live run record now (read again before deleting)."""
    try:
        head = store.head(f"{run}/{RUN_RECORD}")
    except StoreError:
        return True  # a record that is a link or special file: never followed, the run is kept
    return head is not None and bool(run_is_live(store, run, head.last_modified))


def _protected_dirs(keys: Iterable[str]) -> set[str]:
    """Directories under which nothing is deleted: a committed version (its manifest, at any
    depth below a backbone), or a nested store (its marker, at any depth)."""
    protected = set()
    for key in keys:
        head, _, leaf = key.rpartition("/")
        if not head:
            continue
        if leaf == MARKER or (leaf == MANIFEST and "/" in head) or (leaf == LATEST and "/" in head):
            protected.add(head)
    return protected


def _under(key: str, dirs: set[str]) -> bool:
    parts = key.split("/")
    return any("/".join(parts[:i]) in dirs for i in range(1, len(parts)))


def _relative(store: Store, where: str) -> str | None:
    """The store-relative path of a skipped entry (``where`` is its full path or URI)."""
    root = store.uri("").rstrip("/") + "/"
    return where[len(root) :] if where.startswith(root) else None


def _valid_segments(*parts: str) -> bool:
    try:
        for part in parts:
            check_name(part)
    except StoreError:
        return False
    return True
