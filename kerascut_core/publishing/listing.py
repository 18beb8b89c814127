"""Reading a store: manifests, backbones, versions, and whether a version is whole.

A version is published when its ``manifest.json`` exists and checks: it is the manifest of that
backbone and version, and its validation passed. A version directory without one (a commit in
progress, or the leftovers of a crashed one) is never listed or served. One bad entry (a
corrupt manifest, a manifest of another backbone, a link) never hides the others.

    >>> [v.version for v in list_versions(open_store("./backbones"), "mnv2")]   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from kerascut_core._names import short_repr as shown
from kerascut_core.errors import IntegrityError, ObjectNotFoundError, StoreError
from kerascut_core.publishing.layout import MANIFEST, manifest_key, version_dir
from kerascut_core.publishing.manifest import Artifact, Manifest
from kerascut_core.stores import (
    MAX_JSON_BYTES,
    LocalStore,
    Store,
    open_store,
    parse_json,
    sha256_file,
)
from kerascut_core.uris import check_name

__all__ = [
    "VersionInfo",
    "artifact_problems",
    "list_backbones",
    "list_versions",
    "manifest_uri",
    "read_manifest",
    "scan_versions",
    "verify_version",
]


@dataclass(frozen=True)
class VersionInfo:
    """A committed version, as listed: names, times and the few small fields ``ls`` prints.

    Listings hold these, never manifests, so their memory is that of one manifest however many
    versions a backbone has. ``last_modified`` is the store's time of ``manifest.json`` (S3's
    server time, a local file's mtime): the commit order, which no committer's clock sets.
    ``manifest`` reads the whole manifest again, when a caller needs it.
    """

    name: str
    version: str
    created_at: dt.datetime
    last_modified: dt.datetime
    latest: bool = False
    passed: bool = True
    max_abs_diff: float | None = None
    source_uri: str = ""
    size: int = 0
    store: Store | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, store: Store, manifest: Manifest, last_modified: dt.datetime, *, latest: bool = False) -> VersionInfo:
        """The record of ``manifest`` (committed at ``last_modified``), keeping none of its large fields."""
        return cls(
            name=manifest.name,
            version=manifest.version,
            created_at=_aware(manifest.created_at),
            last_modified=_aware(last_modified),
            latest=latest,
            passed=manifest.validation.passed,
            max_abs_diff=manifest.validation.max_abs_diff,
            source_uri=manifest.source.uri,
            size=sum(a.bytes for a in manifest.artifacts),
            store=store,
        )

    @property
    def manifest(self) -> Manifest:
        """The version's manifest, read (and checked) from the store again."""
        if self.store is None:
            raise StoreError(f"Cannot read the manifest of {self.name}@{self.version}: this record has no store.")
        return read_manifest(self.store, self.name, self.version)

    @property
    def order(self) -> tuple[dt.datetime, dt.datetime, str]:
        """The sort key of listings: the store's commit time to the second (S3 reports whole
        seconds), then ``created_at`` held inside that second (a committer's clock can order two
        versions committed in the same second, never move one across seconds; one more than a
        second off the store's stamp counts as the first of its second, as retention orders
        them), then the version."""
        second = self.last_modified.replace(microsecond=0)
        created = self.created_at
        if not second - dt.timedelta(seconds=1) <= created < second + dt.timedelta(seconds=2):
            created = second
        within = min(max(created, second), second + dt.timedelta(microseconds=999_999))
        return (second, within, self.version)


def _aware(value: dt.datetime) -> dt.datetime:
    """``value`` with a time zone (a naive time in a manifest is UTC), so any two compare."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)


def read_manifest(store: Store, name: str, version: str, *, check: bool = True) -> Manifest:
    """The manifest of a committed version (:class:`ObjectNotFoundError` when not committed).

    The manifest is checked against where it is: its ``name`` and ``version`` must be those
    of its path, and its validation must have passed; otherwise :class:`IntegrityError` (a
    version directory copied from another backbone, or a manifest edited by hand, is never
    served). ``check=False`` skips those two checks (listings that report such versions).
    Reads are bounded: a manifest over ``MAX_JSON_BYTES`` is refused unread, and one that nests
    too deep, holds too many items, an integer too long or a non-finite number is refused before
    pydantic sees it (:func:`kerascut_core.stores.parse_json`): one line, never a crash.
    """
    key = manifest_key(name, version)
    try:
        data = store.get_bytes(key, max_bytes=MAX_JSON_BYTES)
    except ObjectNotFoundError:
        raise ObjectNotFoundError(
            f"Version {version!r} of {name!r} is not published in {store.root_uri} (no {MANIFEST}). "
            f"Run `kerascut ls {store.root_uri} {name}` to see the published versions."
        ) from None
    parsed = parse_json(data, store.uri(key))
    del data  # at most one copy of a large manifest at a time
    try:
        manifest = Manifest.model_validate(parsed)
    except ValidationError as exc:
        errors = exc.errors()
        field_ = ".".join(str(part) for part in errors[0]["loc"]) if errors else ""
        why = errors[0]["msg"] if errors else type(exc).__name__
        raise StoreError(
            f"Cannot read {store.uri(key)}: not a valid kerascut manifest ({field_[:80] or 'the object'}: "
            f"{why[:120]}). Restore it, or promote another version."
        ) from None
    if check:
        if (manifest.name, manifest.version) != (name, version):
            raise IntegrityError(
                f"Refusing {store.uri(key)}: it is the manifest of {shown(manifest.name)}@{shown(manifest.version)}, "
                f"not of {name}@{version} (a version directory copied or moved from elsewhere, or edited). "
                "Do not use it; republish the backbone or promote another version."
            )
        if manifest.validation.passed is not True:
            raise IntegrityError(
                f"Refusing {store.uri(key)}: its validation did not pass, so it was never published by kerascut. "
                "Do not use it; promote another version."
            )
    return manifest


def manifest_uri(store: Store | str, name: str, version: str) -> str:
    """The URI of ``<name>/<version>/manifest.json`` in ``store`` (a store or its URI)."""
    target = open_store(store) if isinstance(store, str) else store
    return target.uri(manifest_key(name, version))


def list_backbones(store: Store) -> list[str]:
    """Names with at least one object in the store (staging, hidden and unaddressable directories
    excluded: a directory whose name is not a valid backbone name is not a backbone)."""
    names = []
    for d in store.list_dirs(""):
        if d.startswith("."):
            continue
        with contextlib.suppress(StoreError):
            names.append(check_name(d))
    return names


def scan_versions(store: Store, name: str) -> tuple[list[VersionInfo], list[str]]:
    """Committed versions of ``name`` in commit order (oldest first), and one line per entry skipped.

    The order is the store's: the last-modified time of each ``manifest.json`` as the store
    reports it (S3's server time, a local file's mtime), then ``created_at``, then the version;
    a committer whose clock is wrong cannot move its version ahead of later ones. Manifests are
    read and checked one at a time and only a small :class:`VersionInfo` of each is kept, so
    memory stays that of one manifest. One bad entry (a corrupt manifest, a manifest of another
    backbone, a link, a bad ``latest.json``) never hides the others: it is reported in the
    second list and the listing goes on.
    """
    from kerascut_core.publishing.pointer_files import read_latest

    try:
        latest = read_latest(store, name)
    except StoreError as exc:
        latest, problems = None, [str(exc)]
    else:
        problems = []
    scan = store.scan(check_name(name))
    problems.extend(f"skipped {where}: {why}" for where, why in scan.skipped)
    versions = []
    for obj in scan.objects:
        parts = obj.key.split("/")
        if len(parts) == 3 and parts[2] == MANIFEST:
            try:
                manifest = read_manifest(store, name, check_name(parts[1], "version"))
            except ObjectNotFoundError:
                continue
            except StoreError as exc:
                problems.append(str(exc))
                continue
            versions.append(VersionInfo.of(store, manifest, obj.last_modified, latest=parts[1] == latest))
            del manifest  # only the record is kept
    return sorted(versions, key=lambda v: v.order), problems


def list_versions(store: Store, name: str) -> list[VersionInfo]:
    """Committed versions of ``name`` (those with a valid manifest), oldest first.

    A version directory without ``manifest.json`` (a commit in progress, or the leftovers of a
    crashed one) is never listed; nor is one whose manifest does not check
    (:func:`scan_versions` says why).
    """
    return scan_versions(store, name)[0]


def verify_version(
    store: Store, name: str, version: str, *, checksums: bool = True, from_bytes: bool = False
) -> list[str]:
    """Problems with a committed version (missing artifacts, wrong sizes or sha256); ``[]`` if whole.

    Checksums come from S3 metadata (recorded at upload, no download) or are computed locally;
    an S3 object without a recorded sha256 (rewritten outside kerascut) is hashed from its
    bytes. ``from_bytes=True`` hashes every artifact's bytes (a download on S3, bounded by the
    manifest's size): what ``promote`` does, since metadata can be rewritten along with the
    object. ``checksums=False`` checks presence and sizes only.
    """
    try:
        manifest = read_manifest(store, name, version)
    except ObjectNotFoundError as exc:
        return [str(exc)]
    return artifact_problems(
        store, version_dir(name, version), manifest.artifacts, checksums=checksums, from_bytes=from_bytes
    )


def _hash_bytes(store: Store, key: str, size: int) -> str:
    """The sha256 of the object's bytes, read at most to ``size`` (fails at the first byte over)."""
    if isinstance(store, LocalStore):
        digest = store.sha256(key)  # computed from the file, through the store's link checks
        if digest is None:
            raise ObjectNotFoundError(f"Cannot read {store.uri(key)}: no such object.")
        return digest
    with tempfile.TemporaryDirectory(prefix="kerascut-verify-") as tmp:
        path = store.get_file(key, Path(tmp) / "object", max_bytes=size)
        return sha256_file(path)


def artifact_problems(
    store: Store,
    directory: str,
    artifacts: Iterable[Artifact],
    *,
    checksums: bool = True,
    from_bytes: bool = False,
) -> list[str]:
    """One line per artifact under ``directory`` that is missing, unreadable or differs (size,
    sha256). An artifact the store refuses to read (a link, a FIFO) is a problem of this
    version, never an error that hides the others."""
    problems = []
    for artifact in artifacts:
        key = f"{directory}/{artifact.path}"
        try:
            info = store.head(key)
            if info is None:
                problems.append(f"artifact {store.uri(key)} is missing")
                continue
            if info.size != artifact.bytes:
                problems.append(f"artifact {store.uri(key)} has {info.size} bytes, the manifest says {artifact.bytes}")
                continue
            if not checksums:
                continue
            digest = None if from_bytes else store.sha256(key)
            if digest is None:
                digest = _hash_bytes(store, key, artifact.bytes)
        except StoreError as exc:
            problems.append(f"artifact {store.uri(key)} cannot be read: {' '.join(str(exc).split())[:300]}")
            continue
        if digest != artifact.sha256:
            problems.append(f"artifact {store.uri(key)} has sha256 {digest}, the manifest says {artifact.sha256}")
    return problems
