"""Consumers: load a published backbone, or pull its files, with every sha256 checked.

    >>> import kerascut_core as kc
    >>> backbone = kc.load_backbone("s3://team-models/backbones/mnv2")              # doctest: +SKIP
    >>> backbone = kc.load_backbone("./backbones/mnv2", version="3f9a0c1d2e4b5a69")  # doctest: +SKIP
    >>> backbone = kc.load_backbone("s3://team-models/backbones/mnv2@prod")         # doctest: +SKIP

Artifacts are downloaded once into the cache (``<cache>/backbones/<store>/<name>/<version>/``;
versions are immutable, so a cached copy never goes stale). Every use of a cached copy checks its
sha256 against the manifest and against the record made when it was downloaded; a copy that
fails is set aside with one :class:`~kerascut_core.publishing.consumer_cache.CacheWarning` and
downloaded again, and a download that does not match raises :class:`IntegrityError`. Keras is
imported only when a model is loaded.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from kerascut_core._names import did_you_mean, format_options
from kerascut_core.errors import IntegrityError, ObjectNotFoundError, SourceError, StoreError
from kerascut_core.publishing.consumer_cache import open_entry
from kerascut_core.publishing.delivery import check_destination, deliver
from kerascut_core.publishing.layout import LATEST_ALIAS, latest_key
from kerascut_core.publishing.listing import list_backbones, read_manifest
from kerascut_core.publishing.manifest import Artifact, Manifest
from kerascut_core.publishing.pointer_files import resolve_pointer, scan_aliases
from kerascut_core.publishing.root import require_store_root
from kerascut_core.sources import check_cache_dir, default_cache_dir
from kerascut_core.stores import Store, open_store
from kerascut_core.uris import check_key, split_backbone_ref

__all__ = ["format_artifacts", "load_backbone", "load_pulled", "pull", "resolve"]


def resolve(ref: str, version: str | None = "latest") -> tuple[Store, str, str, Manifest]:
    """``(store, name, version, manifest)`` for ``"<store>/<name>[@x]"``.

    ``x`` (or ``version`` when ``ref`` has no ``@``) is ``latest`` (``latest.json``), an alias
    (``<name>/aliases/x.json`` exists) or a version; an ``@x`` in ``ref`` wins over ``version``.
    """
    store_uri, name, pinned = split_backbone_ref(ref)
    store = open_store(store_uri)
    require_store_root(store, f"read {name!r} from")
    wanted = pinned or version or LATEST_ALIAS
    try:
        found, pointer = resolve_pointer(store, name, wanted)
    except ObjectNotFoundError:
        known = list_backbones(store)
        if name in known:
            raise
        hint = did_you_mean(name, known)
        raise ObjectNotFoundError(
            f"Cannot resolve {store.uri(name)}@{wanted}: no {latest_key(name)} in {store.root_uri}.{hint} "
            f"Publish it first, or run `kerascut ls {store.root_uri}` to see what is there."
        ) from None
    try:
        return store, name, found, read_manifest(store, name, found)
    except ObjectNotFoundError:
        if pointer is not None:
            raise ObjectNotFoundError(
                f"Cannot resolve {store.uri(name)}@{pointer}: it names {found}, which is not published in "
                f"{store.root_uri}. Point it at a published version with `kerascut promote {store.uri(name)} VERSION"
                + ("`." if pointer == LATEST_ALIAS else f" --alias {pointer}`.")
            ) from None
        aliases, _ = scan_aliases(store, name)
        listed = f" Its aliases: {format_options(aliases)}." if aliases else " It has no aliases."
        raise ObjectNotFoundError(
            f"Cannot resolve {store.uri(name)}@{found}: {found!r} is not published as a version of {name!r} in "
            f"{store.root_uri}, and {name!r} has no alias of that name."
            f"{did_you_mean(found, [*aliases, LATEST_ALIAS]) or listed} Run `kerascut ls {store.root_uri} {name}` "
            "to see the versions."
        ) from None


def _cache_base(cache_dir: str | os.PathLike[str] | None) -> Path:
    """The cache root: an explicit ``cache_dir`` must be a local directory (a URI is a
    :class:`ConfigError`, as for the download cache)."""
    return Path(check_cache_dir(cache_dir)).expanduser() if cache_dir is not None else default_cache_dir()


def pull(
    ref: str,
    dest: str | os.PathLike[str] | None = None,
    *,
    version: str | None = "latest",
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[int], Any] | None = None,
    format: str | None = None,
    replace: bool = False,
) -> tuple[Manifest, Path]:
    """Download a version's artifacts (checked) and its ``manifest.json``; return them.

    Without ``dest`` the files stay in the cache (:mod:`~kerascut_core.publishing.consumer_cache`:
    every hit verified against the manifest and the download record). With it they are
    delivered into ``dest``, laid out as in the store (:mod:`~kerascut_core.publishing.delivery`):
    ``dest`` must not be in a store, and may hold only files this version lists unless
    ``replace=True``, which leaves exactly the version's files there. ``format`` (``keras``,
    ``saved_model``, ``onnx``, ``litert``) fetches only that format's artifacts
    (:func:`format_artifacts`).
    """
    store, name, version, manifest = resolve(ref, version)
    if not manifest.artifacts:
        raise IntegrityError(f"Refusing {store.uri(name)}@{version}: its manifest lists no artifacts.")
    wanted = {check_key(a.path): a for a in format_artifacts(manifest, format)}
    target = check_destination(dest, store) if dest is not None else None  # refused before any download
    entry = open_entry(_cache_base(cache_dir), store, name, version)
    if target is None:
        for rel, artifact in wanted.items():
            entry.fetch(artifact, rel, progress=progress)
        entry.write_manifest(manifest.to_json())
        return manifest, entry.root

    def fill(rel: str, out: IO[bytes]) -> None:
        entry.fetch(wanted[rel], rel, out, progress)

    deliver(target, list(wanted), fill, manifest.to_json(), what=f"{store.uri(name)}@{version}", replace=replace)
    entry.write_manifest(manifest.to_json())
    return manifest, target


def format_artifacts(manifest: Manifest, format: str | None) -> list[Artifact]:
    """The artifacts of ``manifest`` in ``format`` (all of them when ``None``); a one-line
    ObjectNotFoundError naming the formats it has when it has none in ``format``."""
    if format is None:
        return list(manifest.artifacts)
    found = [a for a in manifest.artifacts if a.format == format]
    if not found:
        present = sorted({a.format for a in manifest.artifacts} - {"md", "svg"})
        raise ObjectNotFoundError(
            f"Expected {manifest.name}@{manifest.version} to have a {format!r} artifact. Received only "
            f"{present}; add {format!r} to the backbone's formats: and publish again, or pull another format."
        )
    return found


def load_backbone(
    ref: str,
    version: str = "latest",
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    compile: bool = False,
    safe_mode: bool = True,
    progress: Callable[[int], Any] | None = None,
) -> Any:
    """Load a published backbone as a ``keras.Model``.

    ``ref`` is ``"<store>/<name>"`` (``s3://bucket/prefix/name`` or ``./store/name``), optionally
    ``@version``. Every artifact's sha256 is checked against the manifest before loading; a
    mismatch raises :class:`IntegrityError`. ``safe_mode=True`` refuses ``Lambda`` layers with
    code; a backbone published from an ``allow_unsafe`` source needs ``safe_mode=False``.
    """
    manifest, root = pull(ref, version=version, cache_dir=cache_dir, progress=progress)
    return load_pulled(ref, manifest, root, compile=compile, safe_mode=safe_mode)


def load_pulled(ref: str, manifest: Manifest, root: Path, *, compile: bool = False, safe_mode: bool = True) -> Any:
    """The ``keras.Model`` of the version :func:`pull` brought into ``root`` (``ref`` names it in
    errors); :func:`load_backbone` is ``pull`` then this."""
    primary = manifest.primary
    if primary is None or primary.format not in ("keras", "h5"):
        raise SourceError(
            f"Cannot load {ref}@{manifest.version}: it has no .keras or .h5 artifact "
            f"(formats: {sorted({a.format for a in manifest.artifacts})}). Use kerascut pull and load it yourself."
        )
    from kerascut_core.sources import check_model_file

    check_model_file(root / primary.path)  # the zip-bomb and format checks that sources get
    import keras

    from kerascut_core.surgery.backends import cross_backend_note

    note = cross_backend_note(manifest.software.keras_backend, keras.config.backend())
    if note:  # allowed: the same graph, equal within round-off (surgery/backends.py says why)
        warnings.warn(f"{ref}@{manifest.version}: {note}", stacklevel=2)
    try:
        return keras.saving.load_model(root / primary.path, compile=compile, safe_mode=safe_mode)
    except ValueError as exc:
        if "safe_mode" in str(exc) or "Lambda" in str(exc):
            hint = " It was published from an allow_unsafe source." if manifest.source.allow_unsafe else ""
            raise SourceError(
                f"Cannot load {ref}@{manifest.version}: it contains a Lambda layer with code, refused in safe mode.{hint} "
                "Pass safe_mode=False only if you trust the store."
            ) from None
        raise StoreError(f"Cannot load {ref}@{manifest.version}: {' '.join(str(exc).split())[:300]}") from exc
