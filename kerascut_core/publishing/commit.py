"""Committing a version: the artifacts, then ``manifest.json``, under the version's claim.

The layout is in :mod:`kerascut_core.publishing.layout`; staging in ``staging.py``, the claim in
``claim.py``, ``latest.json`` in ``pointers.py``; this module holds the protocol that ties them.

    >>> store = open_store("./backbones")                                                   # doctest: +SKIP
    >>> uri = stage_candidate(store, "mnv2", version, {"model.keras": "/tmp/cut.keras"})    # doctest: +SKIP
    >>> # ... validate(uri, ...) -> report ...
    >>> commit_version(store, "mnv2", version, uri, manifest)                               # doctest: +SKIP
    >>> update_latest(store, "mnv2", version)                                                # doctest: +SKIP

The commit protocol
-------------------
Saving a model twice does not give the same bytes, so two writers of one version cannot both
"win"; and a writer can die anywhere. The rules that keep every committed version whole:

1. **Nothing is published without a passing validation report**: ``commit_version`` refuses a
   manifest whose ``validation.passed`` is not true (:class:`PublishRefusedError`), and one whose
   artifacts differ from the staged candidate.
2. **Candidates are staged under a run id**, each file put-if-absent, and ``staged.json``
   (paths, sizes, sha256) last. A candidate without ``staged.json`` is incomplete and is never
   committed. Validation reads these exact bytes, and the commit copies them server-side
   (S3 ``CopyObject``, a hard link locally), so what is published is what was validated.
3. **One writer per version at a time: the claim.** ``claim.json`` is created put-if-absent
   with the run id, host, pid and a lease (``lease_seconds``, renewed after every artifact). A
   second writer waits (``wait_seconds``) for the manifest to appear and then reports the
   version as already published (``status="exists"``: it did *not* publish it). A claim is
   stale when its lease expired, or at once when its host is this host and its process is
   dead (a SIGKILLed run). A stale claim is taken over with a conditional write (S3
   ``If-Match`` on its ETag; locally, a compare under ``flock`` plus rename), so exactly one of
   several rerunning writers takes it over.
4. **The claim holder starts clean**: objects under ``<name>/<version>/`` without a manifest
   are leftovers of a dead writer (not published: nothing lists or loads a version without a
   manifest), and are deleted before the artifacts are copied, each put-if-absent.
5. **Verify, then commit**: every artifact is checked (size, sha256), the claim is renewed (a
   conditional write that also proves it is still ours), and ``manifest.json`` is put-if-absent.
   That single atomic put is the commit. A published version can never be overwritten: every
   write into a version directory is put-if-absent, and a directory with a manifest is never
   cleaned.
6. **Then ``latest.json``** moves with a conditional read-modify-write (``update_latest``):
   concurrent writers retry on a lost precondition, so no update is lost, and it only ever
   names versions whose manifest exists. ``promote`` pins it, so a scheduled refresh never
   undoes a person's rollback.

The commit emits ``kerascut.backbone.published`` (:mod:`kerascut_core.events`; never fails it),
and each move of ``latest`` emits ``kerascut.backbone.promoted``.

A crash before (5) leaves staging objects, a claim and maybe uncommitted artifacts, none of them
visible as published; a rerun takes the claim over and completes the work, and ``gc`` removes
what is older than its threshold. A crash between (5) and (6) leaves a committed version that
``latest`` does not name yet; the rerun finds the version exists and moves ``latest``.

The one window no object store can close: a writer paused for longer than its whole lease
between its final claim renewal and its manifest put (one request) could commit after a
takeover. :func:`verify_version` detects the resulting mismatch, which ``kerascut ls``
reports; keep ``lease_seconds`` far above any plausible pause.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kerascut_core import events
from kerascut_core.errors import (
    ObjectExistsError,
    ObjectNotFoundError,
    PreconditionFailedError,
    PublishRefusedError,
    StoreError,
)
from kerascut_core.publishing import layout
from kerascut_core.publishing.claim import DEFAULT_LEASE_SECONDS, acquire_claim
from kerascut_core.publishing.listing import artifact_problems, read_manifest
from kerascut_core.publishing.manifest import Manifest
from kerascut_core.publishing.root import ensure_store_root
from kerascut_core.publishing.run_record import stop_run
from kerascut_core.publishing.staging import candidate_prefix, staged_artifacts
from kerascut_core.stores import Store

__all__ = ["CommitResult", "as_manifest", "commit_version"]


@dataclass(frozen=True)
class CommitResult:
    """What ``commit_version`` did. ``status="exists"``: another run published this version."""

    name: str
    version: str
    status: Literal["committed", "exists"]
    manifest: Manifest
    uri: str

    @property
    def committed(self) -> bool:
        return self.status == "committed"


def as_manifest(manifest: Manifest | Mapping[str, Any]) -> Manifest:
    """A copy of ``manifest`` as a :class:`Manifest`; :class:`PublishRefusedError` names the first
    invalid field."""
    if isinstance(manifest, Manifest):
        return manifest.model_copy(deep=True)
    from pydantic import ValidationError as PydanticError

    try:
        return Manifest.model_validate(dict(manifest))
    except PydanticError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise PublishRefusedError(f"Expected a valid manifest. Received an invalid field {where!r}: {first.get('msg')}.") from None


def commit_version(
    store: Store,
    name: str,
    version: str,
    staged_files: str,
    manifest: Manifest | Mapping[str, Any],
    *,
    run_id: str | None = None,
    lease_seconds: float | None = None,
    wait_seconds: float | None = None,
    progress: Callable[[int], Any] | None = None,
) -> CommitResult:
    """Publish a staged, validated candidate as ``<name>/<version>/`` (the manifest last).

    ``staged_files`` is the URI returned by :func:`stage_candidate` (or any key/URI inside its
    run directory). ``manifest.artifacts`` may be left empty: it is filled from the staged
    candidate; when given it must match it exactly. Returns ``status="committed"`` when this
    call published the version, ``status="exists"`` when it was already published (by an
    earlier or a concurrent run; this run's candidate is then discarded). See the module
    docstring for the protocol.
    """
    lease = DEFAULT_LEASE_SECONDS if lease_seconds is None else float(lease_seconds)
    wait = lease if wait_seconds is None else float(wait_seconds)
    manifest = as_manifest(manifest)
    if manifest.validation.passed is not True:
        raise PublishRefusedError(
            f"Cannot publish {name}/{version}: its validation did not pass "
            f"(max_abs_diff={manifest.validation.max_abs_diff}). Fix the cut or the tolerance and validate again."
        )
    if (manifest.name, manifest.version) != (name, version):
        raise PublishRefusedError(
            f"Expected a manifest for {name}/{version}. Received one for {manifest.name}/{manifest.version}."
        )
    staged = staged_artifacts(store, staged_files, name, version)
    prefix = candidate_prefix(store, staged_files, name, version)
    if not manifest.artifacts:
        manifest.artifacts = staged
    elif sorted((a.path, a.sha256, a.bytes) for a in manifest.artifacts) != sorted((a.path, a.sha256, a.bytes) for a in staged):
        raise PublishRefusedError(
            f"Cannot publish {name}/{version}: the manifest's artifacts do not match the staged candidate "
            f"{store.uri(prefix)}. Build the manifest from staged_artifacts(...)."
        )
    version_dir = layout.version_dir(name, version)
    ensure_store_root(store)
    existing = _existing(store, name, version)
    if existing is not None:
        return _discard(store, prefix, existing)
    claim = acquire_claim(store, name, version, run_id or prefix.rsplit("/", 1)[-1], lease, wait)
    if claim is None:
        existing = _existing(store, name, version)
        if existing is None:  # pragma: no cover - the claim loop only returns None when it exists
            raise StoreError(f"Cannot commit {name}/{version}: its manifest vanished. Check the store.")
        return _discard(store, prefix, existing)
    try:
        existing = _existing(store, name, version)
        if existing is not None:
            return _discard(store, prefix, existing)
        # rule 4: leftovers of a dead writer (no manifest: never published)
        for key in store.list(version_dir):
            store.delete(key)
        for artifact in manifest.artifacts:
            try:
                store.copy(f"{prefix}/{artifact.path}", f"{version_dir}/{artifact.path}")
            except ObjectExistsError:
                raise PreconditionFailedError(
                    f"Cannot commit {name}/{version}: another writer is writing into {store.uri(version_dir)} "
                    "(its lease expired and was taken over). Nothing was published by this run; rerun."
                ) from None
            if progress:
                progress(artifact.bytes)
            claim.renew()
        # rule 5: verify, prove the claim is ours, commit
        problems = artifact_problems(store, version_dir, manifest.artifacts)
        if problems:
            raise StoreError(f"Cannot commit {name}/{version}: {problems[0]}. Nothing was published; rerun.")
        claim.renew()
        manifest.created_at = dt.datetime.now(dt.timezone.utc)
        try:
            store.put_bytes(layout.manifest_key(name, version), manifest.to_json().encode())
        except ObjectExistsError:
            # only a writer whose claim we took over can get here (see the docstring)
            result = _existing(store, name, version)
            if result is None:  # deleted between our put and our read: not a state we can explain
                raise StoreError(f"Cannot commit {name}/{version}: its manifest changed concurrently. Rerun.") from None
            return result
    finally:
        claim.release()
    events.backbone_published(store, manifest, manifest_uri=store.uri(layout.manifest_key(name, version)),
                              verdict=lambda: _verdict(store, name, version, manifest))
    return _discard(store, prefix, CommitResult(name, version, "committed", manifest, store.uri(version_dir)))


def _verdict(store: Store, name: str, version: str, manifest: Manifest) -> dict[str, Any] | None:
    """The published event's verdict against the version ``latest`` names (read only when an
    emitter listens)."""
    from kerascut_core.publishing.history import verdict_against
    from kerascut_core.publishing.pointer_files import read_latest

    try:
        previous = read_latest(store, name)
    except StoreError:
        return None
    return verdict_against(store, name, previous, manifest) if previous != version else None


def _discard(store: Store, prefix: str, result: CommitResult) -> CommitResult:
    """Remove this run's staged candidate (published, or superseded); gc's job if this fails."""
    stop_run(store, prefix)
    with contextlib.suppress(StoreError):
        for key in store.list(prefix):
            store.delete(key)
    return result


def _existing(store: Store, name: str, version: str) -> CommitResult | None:
    try:
        manifest = read_manifest(store, name, version)
    except ObjectNotFoundError:
        return None
    return CommitResult(name, version, "exists", manifest, store.uri(layout.version_dir(name, version)))
