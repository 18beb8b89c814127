"""Building the catalog: read a store once, streaming, and write a static site.

Per backbone, the versions are listed as small records (:func:`scan_versions`) in commit order,
then each manifest is read, its page written and the manifest dropped: at most two manifests are
held at a time (a version's and the one before it, for the diff), however many versions a
store has. The site goes to a temporary directory beside ``out`` and replaces it at the end,
so a server never serves a half-built catalog (the old one stays until the new one is whole).

    >>> report = build_catalog(open_store("s3://team/backbones"), "./catalog")   # doctest: +SKIP
    >>> report.backbones, report.versions, report.pages                          # doctest: +SKIP
    (50, 1000, 1051)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from kerascut_core.catalog.html import CSS, STYLESHEET
from kerascut_core.catalog.pages import (
    BackboneSummary,
    VersionRow,
    backbone_page,
    index_page,
    version_page,
)
from kerascut_core.errors import KerascutError, StoreError
from kerascut_core.publishing.consumer_registry import list_consumers
from kerascut_core.publishing.diff import diff_manifests
from kerascut_core.publishing.history import read_history
from kerascut_core.publishing.layout import GRAPH, LATEST_ALIAS, artifact_key
from kerascut_core.publishing.listing import list_backbones, read_manifest, scan_versions
from kerascut_core.publishing.manifest import Manifest
from kerascut_core.publishing.pointer_files import read_latest, scan_aliases
from kerascut_core.publishing.root import require_store_root
from kerascut_core.stores import Store
from kerascut_core.text import one_line

__all__ = ["MAX_GRAPH_BYTES", "CatalogReport", "build_catalog"]

#: the largest graph picture copied into the catalog (larger ones are left out, with a note)
MAX_GRAPH_BYTES = 16 << 20


@dataclass
class CatalogReport:
    """What :func:`build_catalog` wrote: counts, the directory, and one line per entry skipped."""

    out: str
    backbones: int = 0
    versions: int = 0
    pages: int = 0
    problems: list[str] = field(default_factory=list)


def _write(directory: Path, relative: str, text: str) -> None:
    path = directory / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _copy_graph(store: Store, name: str, manifest: Manifest, target: Path, problems: list[str]) -> bool:
    artifact = manifest.artifact(GRAPH)
    if artifact is None:
        return False
    if artifact.bytes > MAX_GRAPH_BYTES:
        problems.append(f"{name}@{manifest.version}: {GRAPH} is {artifact.bytes:,} bytes; left out of the catalog")
        return False
    try:
        data = store.get_bytes(artifact_key(name, manifest.version, GRAPH), max_bytes=MAX_GRAPH_BYTES)
    except KerascutError as exc:
        problems.append(f"{name}@{manifest.version}: {GRAPH} not copied ({one_line(exc, 300)})")
        return False
    target.mkdir(parents=True, exist_ok=True)
    (target / GRAPH).write_bytes(data)  # shown with <img>: an SVG there runs no script
    return True


def _backbone(store: Store, name: str, site: Path, report: CatalogReport) -> BackboneSummary:
    problems: list[str] = []
    listed, skipped = scan_versions(store, name)
    problems += skipped
    order = sorted(listed, key=lambda v: (v.last_modified, v.created_at, v.version))
    del listed
    latest = read_latest(store, name)
    aliases, alias_problems = scan_aliases(store, name)
    problems += alias_problems
    history, history_problems = read_history(store, name)
    problems += history_problems
    consumers, consumer_problems = list_consumers(store, name)
    problems += consumer_problems
    pointed: dict[str, list[str]] = {}
    if latest is not None:
        pointed.setdefault(latest, []).append(LATEST_ALIAS)
    for alias, version in aliases.items():
        pointed.setdefault(version, []).append(alias)
    timeline: list[VersionRow] = []
    previous: Manifest | None = None
    outputs: list[str] = []
    for info in order:
        try:
            manifest = read_manifest(store, name, info.version)
        except KerascutError as exc:
            problems.append(one_line(exc, 400))
            continue
        diff = diff_manifests(previous, manifest) if previous is not None else None
        graph = _copy_graph(store, name, manifest, site / "b" / name / manifest.version, problems)
        _write(site, f"b/{name}/{manifest.version}/index.html",
               version_page(manifest, diff, graph=graph, pointers=pointed.get(manifest.version, [])))
        report.pages += 1
        report.versions += 1
        timeline.append(VersionRow(manifest.version, manifest.created_at.isoformat(timespec="seconds"),
                                   diff.verdict if diff else None, previous.version if previous else None,
                                   pointed.get(manifest.version, [])))
        if manifest.version == latest:
            outputs = [f"{o.name}: {o.channels if o.channels is not None else '?'} ch, stride "
                       + ("?" if o.stride is None else "x".join("?" if s is None else str(s) for s in o.stride))
                       for o in manifest.outputs]
        previous = manifest
    _write(site, f"b/{name}/index.html", backbone_page(name, timeline, history, consumers, problems))
    report.pages += 1
    report.problems += [f"{name}: {p}" for p in problems]
    moves = [e.at for e in history if e.pointer == LATEST_ALIAS]
    return BackboneSummary(name=name, latest=latest, aliases=aliases, consumers=[c.consumer for c in consumers],
                           outputs=outputs, last_refresh=moves[-1] if moves else (timeline[-1].created_at if timeline else None),
                           versions=len(timeline))


def build_catalog(store: Store, out: str | os.PathLike[str]) -> CatalogReport:
    """Write the catalog of ``store`` to the directory ``out`` (replaced whole when done):
    ``index.html``, ``b/<name>/index.html`` and ``b/<name>/<version>/index.html`` (with
    ``graph.svg`` when the version has one), and ``style.css``. One backbone that cannot be read
    is reported in ``problems`` and skipped; the others are written."""
    require_store_root(store, "build a catalog of")
    target = Path(out).resolve()
    if target.exists() and not target.is_dir():
        raise StoreError(f"Expected a directory for the catalog. Received {str(target)!r}, a file; pick another -o.")
    target.parent.mkdir(parents=True, exist_ok=True)
    site = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    report = CatalogReport(out=str(target))
    try:
        summaries = []
        for name in list_backbones(store):
            try:
                summaries.append(_backbone(store, name, site, report))
            except KerascutError as exc:
                report.problems.append(f"{name}: not in the catalog ({one_line(exc, 400)})")
        report.backbones = len(summaries)
        _write(site, "index.html", index_page(store.root_uri, summaries, report.problems))
        _write(site, STYLESHEET, CSS)
        report.pages += 1
        os.chmod(site, 0o755)
        if target.exists():
            old = target.with_name(f".{target.name}-old-{os.getpid()}")
            target.rename(old)
            site.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            site.rename(target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            if site.exists():
                shutil.rmtree(site)
    return report
