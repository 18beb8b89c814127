"""Retention: keep the newest N committed versions of each backbone, remove the older ones.

    >>> from kerascut_core.stores import open_store
    >>> report = apply_retention(open_store("./backbones"), keep_last=5, dry_run=True)   # doctest: +SKIP
    >>> report.removed_versions                                                          # doctest: +SKIP

The one place where committed versions are deleted, and only when asked (``kerascut gc STORE
--keep-last N``, or ``retention: {keep_last: N}`` in the config, applied after each publish).
Per backbone, versions are ordered by the store's commit order: when the store says their
``manifest.json`` was written (its last-modified time: the S3 server's clock, or the local
filesystem's), never by the ``created_at`` a committer wrote. Within one of the store's seconds
(S3 stamps whole seconds) a ``created_at`` within that second breaks the tie, then the version;
one outside it counts as the oldest of its second. A worker whose clock runs ahead therefore
cannot make a later version look older than its own and delete it. A version is removed only
when all of these hold:

* it is not one of the newest ``keep_last``;
* neither ``latest`` nor any alias names it, and no registered consumer pins it or registered
  on it (read when planning, and again under the claim right before the manifest goes; a
  backbone whose pointers or consumers cannot be read loses nothing).
  Pointer moves hold the claim of the version they move onto, so that second read and the
  deletion exclude every move onto the version (the argument is in
  :mod:`kerascut_core.publishing.exclusion`);
* its manifest checks (:func:`~kerascut_core.publishing.listing.scan_versions`; a version whose
  manifest is corrupt or of another backbone is not a version kerascut published and is left);
* its directory holds no link, special file or nested store.

A version is removed under its commit claim (``committed=True`` in
:func:`~kerascut_core.publishing.claim.acquire_claim`), so no commit of the same version runs
meanwhile, and its ``manifest.json`` goes **first**: from then on it is not committed (not
listed, not served), and its artifacts follow. A crash midway therefore leaves only an
uncommitted version directory, which plain ``gc`` removes.

``dry_run=True`` computes the same plan and deletes nothing: ``removed`` is exactly what a real
run with the same arguments deletes, in order, when nothing changes in between.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kerascut_core._names import short_repr
from kerascut_core.errors import PreconditionFailedError, StoreError
from kerascut_core.publishing.claim import DEFAULT_LEASE_SECONDS, acquire_claim
from kerascut_core.publishing.consumer_registry import list_consumers
from kerascut_core.publishing.layout import LATEST_ALIAS, MARKER, manifest_key, version_dir
from kerascut_core.publishing.listing import list_backbones, scan_versions
from kerascut_core.publishing.pointers import read_latest, scan_aliases
from kerascut_core.publishing.root import require_store_root
from kerascut_core.stores import Store, open_store
from kerascut_core.uris import check_name

__all__ = ["RetentionReport", "apply_retention", "check_keep_last", "retain_after_publish"]


@dataclass
class RetentionReport:
    """What retention removed (or would remove with ``dry_run``), kept on purpose, and skipped.

    ``removed_versions`` holds ``<name>@<version>``; ``removed`` the object URIs, in the order
    they are deleted (each version's ``manifest.json`` first). ``kept`` lists the versions beyond
    the newest ``keep_last`` that a pointer names. ``error`` is set only by
    :func:`retain_after_publish`, which never raises.
    """

    keep_last: int
    dry_run: bool = False
    removed_versions: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    error: str | None = None


def check_keep_last(keep_last: object) -> int:
    """``keep_last`` when it is a whole number of at least 1, else a one-line StoreError."""
    if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
        raise StoreError(
            f"Expected keep_last to be a whole number of at least 1 (the newest versions kept per backbone). "
            f"Received {short_repr(keep_last)}."
        )
    return keep_last


def _pointed(store: Store, name: str) -> dict[str, list[str]]:
    """version -> the pointers naming it; StoreError when any pointer cannot be read."""
    pointed: dict[str, list[str]] = {}
    latest = read_latest(store, name)
    if latest is not None:
        pointed.setdefault(latest, []).append(LATEST_ALIAS)
    aliases, problems = scan_aliases(store, name)
    if problems:
        raise StoreError(problems[0])
    for alias, version in aliases.items():
        pointed.setdefault(version, []).append(alias)
    consumers, problems = list_consumers(store, name)
    if problems:
        raise StoreError(problems[0])
    for record in consumers:  # a pin, and the version each consumer registered on (its drift base)
        pointed.setdefault(record.version, []).append(f"consumer {record.consumer}")
    return pointed


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]


def _created(info: object, stamped: dt.datetime) -> str:
    """A listed version's ``created_at`` as a sortable string, only to order versions the store
    stamped in the same second; ``""`` (first of its second) when the record does not carry it,
    or when it is not within a second of the store's stamp ``stamped``: a committer whose clock
    runs ahead is taken for the older of the versions of one second, never for the newer."""
    try:
        created = getattr(info, "created_at", None)
    except Exception:  # a lightweight record without its manifest
        return ""
    if not isinstance(created, dt.datetime) or created.tzinfo is None:
        return ""
    second = stamped.replace(microsecond=0)
    if not second - dt.timedelta(seconds=1) <= created < second + dt.timedelta(seconds=2):
        return ""
    return created.astimezone(dt.timezone.utc).isoformat()


def _store_order(store: Store, name: str, listed: Iterable[Any], report: RetentionReport) -> list[str]:
    """The listed versions oldest first by their manifest's last-modified time as the store
    reports it (S3 reports whole seconds: versions of one second are ordered by a ``created_at``
    within that second, see :func:`_created`)."""
    stamped = []
    for info in listed:
        version: str = info.version
        key = manifest_key(name, version)
        try:
            head = store.head(key)
        except StoreError as exc:
            report.skipped.append(f"{store.uri(key)} ({_one_line(exc)}; its version is not removed)")
            continue
        if head is not None:  # removed meanwhile: nothing to order
            stamped.append((head.last_modified, _created(info, head.last_modified), version))
    return [version for _, _, version in sorted(stamped)]


def _plan(store: Store, name: str, keep_last: int, report: RetentionReport) -> list[tuple[str, list[str]]]:
    """``[(version, keys)]`` to remove for ``name``, each ``keys`` with the manifest first."""
    listed, problems = scan_versions(store, name)
    report.skipped.extend(problems)
    versions = _store_order(store, name, listed, report)
    del listed  # only the names are kept: memory stays bounded by one manifest
    old = versions[: max(0, len(versions) - keep_last)]
    if not old:
        return []
    try:
        pointed = _pointed(store, name)
    except StoreError as exc:
        report.skipped.append(f"{store.uri(name)} (its pointers cannot be read, so none of its versions is removed: "
                              f"{_one_line(exc)})")
        return []
    plan = []
    for version in old:
        where = store.uri(version_dir(name, version))
        if version in pointed:
            report.kept.append(f"{name}@{version} (named by {', '.join(pointed[version])})")
            continue
        scan = store.scan(version_dir(name, version))
        if scan.skipped:
            report.skipped.append(f"{where} (holds {scan.skipped[0][0]}: {scan.skipped[0][1]}; not removed)")
            continue
        keys = [o.key for o in scan.objects]
        if any(k.rsplit("/", 1)[-1] == MARKER for k in keys):
            report.skipped.append(f"{where} (holds another store; not removed)")
            continue
        manifest = manifest_key(name, version)
        plan.append((version, [manifest, *sorted(k for k in keys if k != manifest)]))
    return plan


def _remove(store: Store, name: str, version: str, keys: list[str], run_id: str, report: RetentionReport) -> None:
    """Remove one planned version under its claim, rechecking first that it may go."""
    where = store.uri(version_dir(name, version))
    try:
        claim = acquire_claim(store, name, version, run_id, DEFAULT_LEASE_SECONDS, 0.0, committed=True)
    except PreconditionFailedError as exc:
        report.skipped.append(f"{where} ({_one_line(exc)})")
        return
    if claim is None:  # pragma: no cover - committed=True never returns None
        return
    try:
        if not store.exists(keys[0]):
            report.skipped.append(f"{where} (no longer committed; left to gc)")
            return
        try:
            pointed = _pointed(store, name)
        except StoreError as exc:
            report.skipped.append(f"{where} (its pointers cannot be read: {_one_line(exc)}; not removed)")
            return
        if version in pointed:
            report.kept.append(f"{name}@{version} (named by {', '.join(pointed[version])})")
            return
        report.removed_versions.append(f"{name}@{version}")
        for key in keys:  # the manifest first: from then on the version is not committed
            try:
                store.delete(key)
            except StoreError as exc:
                report.skipped.append(f"{store.uri(key)} ({_one_line(exc)}; the rest is left to gc)")
                return
            report.removed.append(store.uri(key))
    finally:
        claim.release()


def _apply(store: Store, keep_last: int, names: Iterable[str] | None, report: RetentionReport) -> None:
    require_store_root(store, "apply retention to")
    run_id = f"retention-{uuid.uuid4().hex[:12]}"
    for name in list_backbones(store) if names is None else [check_name(n) for n in names]:
        for version, keys in _plan(store, name, keep_last, report):
            if report.dry_run:
                report.removed_versions.append(f"{name}@{version}")
                report.removed.extend(store.uri(k) for k in keys)
            else:
                _remove(store, name, version, keys, run_id, report)


def apply_retention(
    store: Store,
    keep_last: int,
    *,
    names: Iterable[str] | None = None,
    dry_run: bool = False,
) -> RetentionReport:
    """Remove the committed versions of each backbone (or of ``names``) beyond the newest
    ``keep_last``, never one a pointer names (see the module docstring). Raises
    :class:`StoreRootError` when ``store`` is not a store root."""
    report = RetentionReport(keep_last=check_keep_last(keep_last), dry_run=dry_run)
    _apply(store, keep_last, names, report)
    return report


def retain_after_publish(store: Store | str, name: str, keep_last: int | None) -> RetentionReport:
    """Apply retention to one backbone after a publish; never raises.

    ``keep_last=None`` (no retention configured) removes nothing. Any failure is reported in
    ``error``, with what was done before it: retention must never fail the publish it follows.
    """
    report = RetentionReport(keep_last=keep_last if isinstance(keep_last, int) else 0)
    if keep_last is None:
        return report
    try:
        check_keep_last(keep_last)
        _apply(open_store(store) if isinstance(store, str) else store, keep_last, [name], report)
    except Exception as exc:  # anything at all: the publish it follows has succeeded
        report.error = f"Retention (keep_last={short_repr(keep_last)}) was not applied to {short_repr(name)}: {_one_line(exc)}"
    return report
