"""Staging: a candidate's files under ``.staging/<name>/<version>/<run_id>/``, index last.

The run record ``run.json`` comes first (:mod:`kerascut_core.publishing.run_record`: ``gc``
keeps the staging of a live run whatever its age), then each file, put-if-absent, then
``staged.json`` (paths, formats, sizes, sha256): a candidate without it is incomplete and is
never committed. Validation reads these exact bytes, and the
commit copies them server-side, so what is published is what was validated (rule 2 of the
protocol in :mod:`kerascut_core.publishing.commit`). Whatever happens next, the pipeline
removes its run's candidate (:func:`discard_candidate`); ``gc`` removes what is left.

    >>> store = open_store("./backbones")                                                   # doctest: +SKIP
    >>> uri = stage_candidate(store, "mnv2", version, {"model.keras": "/tmp/cut.keras"})    # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kerascut_core.errors import ObjectNotFoundError, PublishRefusedError, StoreError
from kerascut_core.publishing._clock import iso
from kerascut_core.publishing.layout import (
    MODEL,
    STAGED_INDEX,
    artifact_format,
    run_of,
    run_prefix,
    staging_dir,
)
from kerascut_core.publishing.manifest import Artifact
from kerascut_core.publishing.root import ensure_store_root
from kerascut_core.publishing.run_record import start_run, stop_run
from kerascut_core.stores import Store, open_store, sha256_file
from kerascut_core.uris import check_key, check_name

__all__ = [
    "Discarded",
    "add_staged_file",
    "candidate_prefix",
    "discard_candidate",
    "new_run_id",
    "stage_candidate",
    "staged_artifacts",
]


def new_run_id() -> str:
    """A sortable, unique run id: ``20260101T120000Z-1a2b3c4d``."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]


def _files_mapping(files: Mapping[str, str | os.PathLike[str]] | str | os.PathLike[str] | Iterable[Any]) -> dict[str, Path]:
    if isinstance(files, (str, os.PathLike)):
        return {MODEL: Path(files)}
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
    prefix = run_prefix(name, version, run_id)
    ensure_store_root(store)
    for path in mapping.values():
        if not path.is_file():
            raise StoreError(f"Cannot stage {path}: no such file. Save the candidate first.")
    start_run(store, prefix, run_id)  # the run record first: gc keeps a live run's staging
    try:
        entries = []
        for rel, path in mapping.items():
            digest = sha256_file(path)
            store.put_file(f"{prefix}/{rel}", path, progress=progress, metadata={"sha256": digest})
            entries.append({"path": rel, "format": artifact_format(rel), "bytes": path.stat().st_size,
                            "sha256": digest})
        store.put_json(
            f"{prefix}/{STAGED_INDEX}",
            {"name": name, "version": version, "run_id": run_id, "staged_at": iso(), "files": entries},
        )
    except BaseException:
        stop_run(store, prefix)  # what was staged is left to gc (no longer renewed)
        raise
    primary = MODEL if MODEL in mapping else next(iter(mapping))
    return store.uri(f"{prefix}/{primary}")


def candidate_prefix(store: Store, staged: str, name: str, version: str) -> str:
    """The run directory (``.staging/<name>/<version>/<run_id>``) of a staged URI or key;
    :class:`PublishRefusedError` when it is not a candidate of ``name/version``."""
    key = store.key_of(staged) if ("://" in staged or os.path.isabs(staged)) else check_key(staged)
    parts = key.split("/")
    expected = staging_dir(name, version).split("/")
    if len(parts) < 4 or parts[:3] != expected:
        raise PublishRefusedError(
            f"Expected a candidate staged under {store.uri(staging_dir(name, version))}/<run_id>/. "
            f"Received {staged!r}; stage it with stage_candidate(store, {name!r}, {version!r}, files)."
        )
    return "/".join(parts[:4])


def staged_artifacts(store: Store, staged: str, name: str, version: str) -> list[Artifact]:
    """The artifacts of a staged candidate (from its ``staged.json``)."""
    prefix = candidate_prefix(store, staged, name, version)
    try:
        index = store.read_json(f"{prefix}/{STAGED_INDEX}")
    except ObjectNotFoundError:
        raise PublishRefusedError(
            f"Cannot publish {store.uri(prefix)}: the candidate is incomplete (no {STAGED_INDEX}); "
            "its staging was interrupted. Stage it again."
        ) from None
    return [Artifact(**entry) for entry in index.get("files", [])]


def add_staged_file(store: Store, staged: str, name: str, version: str, path: str, data: bytes) -> Artifact:
    """Add ``data`` as ``path`` to a staged candidate (a file made from the candidate after it
    was validated, such as the model card); return its artifact.

    The object is written, then ``staged.json`` is rewritten with its entry (an earlier entry of
    ``path`` is replaced, so a retried publish stages the same card again), so the commit copies
    and checks it like every other artifact. The candidate must be complete (``staged.json``
    there); the files validation read are not touched.
    """
    rel = check_key(path)
    prefix = candidate_prefix(store, staged, name, version)
    index_key = f"{prefix}/{STAGED_INDEX}"
    try:
        index = store.read_json(index_key)
    except ObjectNotFoundError:
        raise PublishRefusedError(
            f"Cannot add {rel} to {store.uri(prefix)}: the candidate is incomplete (no {STAGED_INDEX}). Stage it again."
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    store.put_bytes(f"{prefix}/{rel}", data, overwrite=True, metadata={"sha256": digest})
    entry = {"path": rel, "format": artifact_format(rel), "bytes": len(data), "sha256": digest}
    files = [f for f in index.get("files", []) if f.get("path") != rel] + [entry]
    store.put_json(index_key, {**index, "files": files}, overwrite=True)
    return Artifact(**entry)


@dataclass(frozen=True)
class Discarded:
    """What :func:`discard_candidate` removed: ``objects`` under the run directory ``run_uri``."""

    run_uri: str
    objects: int


def discard_candidate(store: Store | str, candidate_uri: str) -> Discarded:
    """Delete the staging directory (the run) of the candidate at ``candidate_uri``."""
    target = open_store(store) if isinstance(store, str) else store
    prefix = run_of(target.key_of(candidate_uri))  # .staging/<name>/<version>/<run_id>
    if prefix is None:
        raise ValueError(f"Expected a staged candidate URI. Received {candidate_uri!r}.")
    stop_run(target, prefix)
    keys = target.list(prefix + "/")
    for item in keys:
        target.delete(item)
    return Discarded(run_uri=target.uri(prefix), objects=len(keys))
