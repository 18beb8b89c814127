"""Publishing: stage a candidate, commit a version (manifest last), move ``latest``.

Layout (fixed; consumers rely on it)::

    <store>/<name>/<version>/model.keras            (+ other formats when configured)
    <store>/<name>/<version>/manifest.json          written last: its presence commits the version
    <store>/<name>/latest.json                      {"version": ..., ...}: the one mutable object
    <store>/.staging/<name>/<version>/<run_id>/...  candidates, then staged.json (written last)
    <store>/.staging/<name>/<version>/claim.json    the commit lease of that version

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
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kerascut_core._names import short_repr as shown
from kerascut_core.errors import (
    IntegrityError,
    ObjectExistsError,
    ObjectNotFoundError,
    PreconditionFailedError,
    PublishRefusedError,
    StoreError,
)
from kerascut_core.manifest import Artifact, Manifest
from kerascut_core.store_root import ensure_store_root
from kerascut_core.stores import MAX_JSON_BYTES, Store, sha256_file
from kerascut_core.uris import check_key, check_name

__all__ = [
    "LATEST",
    "MANIFEST",
    "STAGING",
    "CommitResult",
    "GcReport",
    "VersionInfo",
    "artifact_format",
    "commit_version",
    "gc",
    "list_backbones",
    "list_versions",
    "new_run_id",
    "promote",
    "read_latest",
    "read_manifest",
    "scan_versions",
    "stage_candidate",
    "staged_artifacts",
    "update_latest",
    "verify_version",
]

STAGING = ".staging"
MANIFEST = "manifest.json"
LATEST = "latest.json"
CLAIM = "claim.json"
STAGED_INDEX = "staged.json"
HISTORY_LIMIT = 100
DEFAULT_LEASE_SECONDS = float(os.environ.get("KERASCUT_LEASE_SECONDS", "300"))

_HOST = socket.gethostname()
_ACTIVE_TOKENS: set[str] = set()  # claims held by commits running in this process


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class VersionInfo:
    """A committed version, as listed."""

    name: str
    version: str
    manifest: Manifest
    latest: bool = False

    @property
    def created_at(self) -> dt.datetime:
        return self.manifest.created_at


# ---------------------------------------------------------------------------------------------
# keys
# ---------------------------------------------------------------------------------------------


def _version_dir(name: str, version: str) -> str:
    return f"{check_name(name)}/{check_name(version, 'version')}"


def _staging_dir(name: str, version: str) -> str:
    return f"{STAGING}/{_version_dir(name, version)}"


def _manifest_key(name: str, version: str) -> str:
    return f"{_version_dir(name, version)}/{MANIFEST}"


def _latest_key(name: str) -> str:
    return f"{check_name(name)}/{LATEST}"


def new_run_id() -> str:
    """A sortable, unique run id: ``20260101T120000Z-1a2b3c4d``."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def artifact_format(path: str) -> str:
    """``model.keras`` -> ``keras``, ``model.h5`` -> ``h5``, ``saved_model/...`` -> ``saved_model``."""
    if path.split("/", 1)[0] == "saved_model":
        return "saved_model"
    suffix = Path(path).suffix.lower().lstrip(".")
    return {"hdf5": "h5", "json": "json"}.get(suffix, suffix or "file")


def _now() -> float:
    return time.time()


def _iso(ts: float | None = None) -> str:
    return dt.datetime.fromtimestamp(_now() if ts is None else ts, tz=dt.timezone.utc).isoformat()


# ---------------------------------------------------------------------------------------------
# staging
# ---------------------------------------------------------------------------------------------


def _files_mapping(files: Mapping[str, str | os.PathLike[str]] | str | os.PathLike[str] | Iterable[Any]) -> dict[str, Path]:
    if isinstance(files, (str, os.PathLike)):
        return {"model.keras": Path(files)}
    if isinstance(files, Mapping):
        return {check_key(str(k)): Path(v) for k, v in files.items()}
    return {Path(f).name: Path(f) for f in files}


def stage_candidate(
    store: Store,
    name: str,
    version: str,
    files: Mapping[str, str | os.PathLike[str]] | str | os.PathLike[str] | Iterable[Any],
    *,
    run_id: str | None = None,
    progress: Callable[[int], Any] | None = None,
) -> str:
    """Upload a candidate under ``.staging/<name>/<version>/<run_id>/``; return its URI.

    ``files`` maps artifact paths (``model.keras``, ``saved_model/saved_model.pb``, ...) to local
    files; a single path is staged as ``model.keras``. ``staged.json`` (paths, formats, sizes,
    sha256) is written last, so a candidate without it is incomplete. The returned URI is that
    of the staged ``model.keras`` (or of the first file when there is none); validation reloads
    the bytes from it.
    """
    mapping = _files_mapping(files)
    if not mapping:
        raise PublishRefusedError(f"Cannot stage {name}/{version}: no files given. Pass at least model.keras.")
    run_id = check_name(run_id or new_run_id(), "run id")
    prefix = f"{_staging_dir(name, version)}/{run_id}"
    ensure_store_root(store)
    entries = []
    for rel, path in mapping.items():
        if not path.is_file():
            raise StoreError(f"Cannot stage {path}: no such file. Save the candidate first.")
        digest = sha256_file(path)
        store.put_file(f"{prefix}/{rel}", path, progress=progress, metadata={"sha256": digest})
        entries.append({"path": rel, "format": artifact_format(rel), "bytes": path.stat().st_size, "sha256": digest})
    store.put_json(
        f"{prefix}/{STAGED_INDEX}",
        {"name": name, "version": version, "run_id": run_id, "staged_at": _iso(), "files": entries},
    )
    primary = "model.keras" if "model.keras" in mapping else next(iter(mapping))
    return store.uri(f"{prefix}/{primary}")


def _run_prefix(store: Store, staged: str, name: str, version: str) -> str:
    key = store.key_of(staged) if ("://" in staged or os.path.isabs(staged)) else check_key(staged)
    parts = key.split("/")
    expected = _staging_dir(name, version).split("/")
    if len(parts) < 4 or parts[:3] != expected:
        raise PublishRefusedError(
            f"Expected a candidate staged under {store.uri(_staging_dir(name, version))}/<run_id>/. "
            f"Received {staged!r}; stage it with stage_candidate(store, {name!r}, {version!r}, files)."
        )
    return "/".join(parts[:4])


def staged_artifacts(store: Store, staged: str, name: str, version: str) -> list[Artifact]:
    """The artifacts of a staged candidate (from its ``staged.json``)."""
    prefix = _run_prefix(store, staged, name, version)
    try:
        index = store.read_json(f"{prefix}/{STAGED_INDEX}")
    except ObjectNotFoundError:
        raise PublishRefusedError(
            f"Cannot publish {store.uri(prefix)}: the candidate is incomplete (no {STAGED_INDEX}); "
            "its staging was interrupted. Stage it again."
        ) from None
    return [Artifact(**entry) for entry in index.get("files", [])]


# ---------------------------------------------------------------------------------------------
# the claim (see the module docstring, rule 3)
# ---------------------------------------------------------------------------------------------


def _proc_start(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def _pid_alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return start is None or _proc_start(pid) in (None, start)


def _claim_is_stale(claim: Any) -> bool:
    if not isinstance(claim, dict):
        return True  # unreadable: nobody can renew it
    if float(claim.get("expires_at", 0)) < _now():
        return True
    if claim.get("host") == _HOST and isinstance(claim.get("pid"), int):
        if claim["pid"] == os.getpid():
            return claim.get("token") not in _ACTIVE_TOKENS
        return not _pid_alive(claim["pid"], claim.get("proc_start"))
    return False


@dataclass
class _Claim:
    store: Store
    key: str
    token: str
    lease: float

    def renew(self) -> None:
        """Extend the lease; :class:`PreconditionFailedError` if another run took it over."""

        def extend(current: Any) -> Any:
            if not isinstance(current, dict) or current.get("token") != self.token:
                raise PreconditionFailedError(
                    f"Lost the commit claim {self.store.uri(self.key)} to another run (our lease expired). "
                    "Nothing was published by this run; rerun to complete."
                )
            return {**current, "expires_at": _now() + self.lease, "renewed_at": _iso()}

        self.store.update_json(self.key, extend)

    def release(self) -> None:
        _ACTIVE_TOKENS.discard(self.token)
        with contextlib.suppress(StoreError):
            current = self.store.read_json(self.key)
            if isinstance(current, dict) and current.get("token") == self.token:
                self.store.delete(self.key)


def _acquire_claim(
    store: Store, name: str, version: str, run_id: str, lease: float, wait_seconds: float
) -> _Claim | None:
    """The claim of ``name/version``, or ``None`` once the version got committed meanwhile."""
    key = f"{_staging_dir(name, version)}/{CLAIM}"
    deadline = _now() + wait_seconds
    delay = 0.05
    while True:
        if store.exists(_manifest_key(name, version)):
            return None
        token = uuid.uuid4().hex
        body = {
            "run_id": run_id,
            "token": token,
            "host": _HOST,
            "pid": os.getpid(),
            "proc_start": _proc_start(os.getpid()),
            "acquired_at": _iso(),
            "expires_at": _now() + lease,
            "lease_seconds": lease,
        }
        _ACTIVE_TOKENS.add(token)
        try:
            store.put_json(key, body)
            return _Claim(store, key, token, lease)
        except ObjectExistsError:
            pass
        except BaseException:
            _ACTIVE_TOKENS.discard(token)
            raise
        try:
            current, etag = store._read_json_etag(key)
        except ObjectNotFoundError:
            _ACTIVE_TOKENS.discard(token)
            continue  # released meanwhile: try again
        except StoreError:  # unreadable claim (a torn write cannot happen, but a hand edit can)
            info = store.head(key)
            current, etag = None, info.etag if info else None
            if etag is None:
                _ACTIVE_TOKENS.discard(token)
                continue
        if _claim_is_stale(current):
            body["took_over_from"] = current.get("run_id") if isinstance(current, dict) else None
            try:
                store.put_bytes(key, _json_bytes(body), if_match=etag)
                return _Claim(store, key, token, lease)
            except (PreconditionFailedError, ObjectNotFoundError):
                _ACTIVE_TOKENS.discard(token)
                continue  # someone else took it over first
        _ACTIVE_TOKENS.discard(token)
        if _now() >= deadline:
            holder = current if isinstance(current, dict) else {}
            raise PreconditionFailedError(
                f"Cannot commit {name}/{version}: run {holder.get('run_id')} on {holder.get('host')} "
                f"(pid {holder.get('pid')}) is committing it until {_iso(float(holder.get('expires_at', 0)))}. "
                "Wait for it, or rerun after its lease expires."
            )
        time.sleep(delay)
        delay = min(1.0, delay * 1.5)


def _json_bytes(value: Any) -> bytes:
    import json

    return (json.dumps(value, indent=2, sort_keys=True, default=str) + "\n").encode()


# ---------------------------------------------------------------------------------------------
# commit
# ---------------------------------------------------------------------------------------------


def _as_manifest(manifest: Manifest | Mapping[str, Any]) -> Manifest:
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
    manifest = _as_manifest(manifest)
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
    prefix = _run_prefix(store, staged_files, name, version)
    if not manifest.artifacts:
        manifest.artifacts = staged
    elif sorted((a.path, a.sha256, a.bytes) for a in manifest.artifacts) != sorted((a.path, a.sha256, a.bytes) for a in staged):
        raise PublishRefusedError(
            f"Cannot publish {name}/{version}: the manifest's artifacts do not match the staged candidate "
            f"{store.uri(prefix)}. Build the manifest from staged_artifacts(...)."
        )
    version_dir = _version_dir(name, version)
    ensure_store_root(store)
    existing = _existing(store, name, version)
    if existing is not None:
        return _discard(store, prefix, existing)
    claim = _acquire_claim(store, name, version, run_id or prefix.rsplit("/", 1)[-1], lease, wait)
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
        problems = _artifact_problems(store, version_dir, manifest.artifacts)
        if problems:
            raise StoreError(f"Cannot commit {name}/{version}: {problems[0]}. Nothing was published; rerun.")
        claim.renew()
        manifest.created_at = dt.datetime.now(dt.timezone.utc)
        try:
            store.put_bytes(_manifest_key(name, version), manifest.to_json().encode())
        except ObjectExistsError:
            # only a writer whose claim we took over can get here (see the docstring)
            result = _existing(store, name, version)
            if result is None:  # deleted between our put and our read: not a state we can explain
                raise StoreError(f"Cannot commit {name}/{version}: its manifest changed concurrently. Rerun.") from None
            return result
    finally:
        claim.release()
    return _discard(store, prefix, CommitResult(name, version, "committed", manifest, store.uri(version_dir)))


def _discard(store: Store, prefix: str, result: CommitResult) -> CommitResult:
    """Remove this run's staged candidate (published, or superseded); gc's job if this fails."""
    with contextlib.suppress(StoreError):
        for key in store.list(prefix):
            store.delete(key)
    return result


def _existing(store: Store, name: str, version: str) -> CommitResult | None:
    try:
        manifest = read_manifest(store, name, version)
    except ObjectNotFoundError:
        return None
    return CommitResult(name, version, "exists", manifest, store.uri(_version_dir(name, version)))


def _artifact_problems(
    store: Store, version_dir: str, artifacts: Iterable[Artifact], *, checksums: bool = True
) -> list[str]:
    problems = []
    for artifact in artifacts:
        key = f"{version_dir}/{artifact.path}"
        info = store.head(key)
        if info is None:
            problems.append(f"artifact {store.uri(key)} is missing")
            continue
        if info.size != artifact.bytes:
            problems.append(f"artifact {store.uri(key)} has {info.size} bytes, the manifest says {artifact.bytes}")
            continue
        digest = store.sha256(key) if checksums else None
        if digest is not None and digest != artifact.sha256:
            problems.append(f"artifact {store.uri(key)} has sha256 {digest}, the manifest says {artifact.sha256}")
    return problems


# ---------------------------------------------------------------------------------------------
# reading, latest, promote
# ---------------------------------------------------------------------------------------------


def read_manifest(store: Store, name: str, version: str, *, check: bool = True) -> Manifest:
    """The manifest of a committed version (:class:`ObjectNotFoundError` when not committed).

    The manifest is checked against where it is: its ``name`` and ``version`` must be those
    of its path, and its validation must have passed; otherwise :class:`IntegrityError` (a
    version directory copied from another backbone, or a manifest edited by hand, is never
    served). ``check=False`` skips those two checks (listings that report such versions).
    Reads are bounded: a manifest over ``MAX_JSON_BYTES`` is refused unread.
    """
    key = _manifest_key(name, version)
    try:
        data = store.get_bytes(key, max_bytes=MAX_JSON_BYTES)
    except ObjectNotFoundError:
        raise ObjectNotFoundError(
            f"Version {version!r} of {name!r} is not published in {store.root_uri} (no {MANIFEST}). "
            f"Run `kerascut ls {store.root_uri} {name}` to see the published versions."
        ) from None
    try:
        manifest = Manifest.model_validate_json(data)
    except ValueError as exc:
        raise StoreError(f"Cannot read {store.uri(key)}: not a valid kerascut manifest ({type(exc).__name__}).") from None
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


def read_latest(store: Store, name: str) -> str | None:
    """The version ``latest.json`` names, or ``None`` when nothing was published yet."""
    key = _latest_key(name)
    try:
        data = store.read_json(key)
    except ObjectNotFoundError:
        return None
    version = data.get("version") if isinstance(data, dict) else None
    if not isinstance(version, str):
        raise StoreError(
            f"Cannot read {store.uri(key)}: expected an object with a string \"version\". Received "
            f"{'a version of type ' + type(version).__name__ if isinstance(data, dict) else 'a ' + type(data).__name__}. "
            f"Repair it with `kerascut promote {store.uri(name)} VERSION`."
        )
    try:
        return check_name(version, "version")
    except StoreError:
        raise StoreError(
            f"Cannot read {store.uri(key)}: its version {shown(version)} is not a version name. "
            f"Repair it with `kerascut promote {store.uri(name)} VERSION`."
        ) from None


def update_latest(
    store: Store,
    name: str,
    version: str,
    *,
    run_id: str | None = None,
    promoted: bool = False,
    pin: bool = False,
) -> dict[str, Any]:
    """Point ``<name>/latest.json`` at a committed version, conditionally; return what is stored.

    The update is a read-modify-write with ``If-Match`` (S3) or a compare under a lock (local):
    a writer that loses the race re-reads and re-applies, so concurrent updates are never lost
    (each is recorded in ``history``). Refuses a version without a manifest or whose validation
    did not pass. A no-op when ``latest`` already names ``version``.

    A ``latest`` pinned by :func:`promote` (a person rolled back or forward) is left alone by
    automatic updates: the returned dict then still names the pinned version (compare its
    ``"version"`` with yours) and says ``"pinned": true``.
    """
    try:
        read_manifest(store, name, version)
    except IntegrityError as exc:
        raise PublishRefusedError(f"Cannot point latest at {name}/{version}: {exc}") from None
    ensure_store_root(store)

    def move(current: Any) -> Any:
        current = current if isinstance(current, dict) else {}
        if not promoted and current.get("version") == version:
            return None
        if not promoted and current.get("pinned") and current.get("version"):
            return None  # a person chose this version; automation does not undo it
        entry = {"version": version, "at": _iso(), "run_id": run_id, "promoted": promoted}
        history = [*current.get("history", []), entry][-HISTORY_LIMIT:]
        return {
            "version": version,
            "manifest": f"{version}/{MANIFEST}",
            "updated_at": entry["at"],
            "previous": current.get("version"),
            "pinned": bool(promoted and pin),
            "history": history,
        }

    return store.update_json(_latest_key(name), move)


def promote(store: Store, name: str, version: str, *, pin: bool = True) -> dict[str, Any]:
    """Roll ``latest`` back or forward to an existing, validated version.

    By default ``latest`` is then pinned: scheduled refreshes publish new versions but leave
    ``latest`` where a person put it, until a promote with ``pin=False``.
    """
    try:
        read_manifest(store, name, version)
    except ObjectNotFoundError:
        known = [v.version for v in list_versions(store, name)]
        from kerascut_core._names import did_you_mean, format_options

        raise ObjectNotFoundError(
            f"Cannot promote {name}@{version}: no such published version in {store.root_uri}."
            + (did_you_mean(version, known) or (f" Published: {format_options(known)}." if known else " Nothing is published yet."))
        ) from None
    problems = verify_version(store, name, version, checksums=True)
    if problems:
        raise IntegrityError(f"Cannot promote {name}@{version}: {problems[0]}. Promote another version, or republish.")
    return update_latest(store, name, version, promoted=True, pin=pin)


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
    """Committed versions of ``name`` (oldest first), and one line per entry that was skipped.

    One bad entry (a corrupt manifest, a manifest of another backbone, a link) never hides the
    others: it is reported in the second list and the listing goes on.
    """
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
            versions.append(VersionInfo(name, parts[1], manifest, latest=parts[1] == latest))
    return sorted(versions, key=lambda v: (v.created_at, v.version)), problems


def list_versions(store: Store, name: str) -> list[VersionInfo]:
    """Committed versions of ``name`` (those with a valid manifest), oldest first.

    A version directory without ``manifest.json`` (a commit in progress, or the leftovers of a
    crashed one) is never listed; nor is one whose manifest does not check
    (:func:`scan_versions` says why).
    """
    return scan_versions(store, name)[0]


def verify_version(store: Store, name: str, version: str, *, checksums: bool = True) -> list[str]:
    """Problems with a committed version (missing artifacts, wrong sizes or sha256); ``[]`` if whole.

    Checksums come from S3 metadata (recorded at upload, no download) or are computed locally;
    ``checksums=False`` checks presence and sizes only.
    """
    try:
        manifest = read_manifest(store, name, version)
    except ObjectNotFoundError as exc:
        return [str(exc)]
    return _artifact_problems(store, _version_dir(name, version), manifest.artifacts, checksums=checksums)


from kerascut_core.gc import GcReport, gc  # noqa: E402  (re-exported: gc lives in its own module)
