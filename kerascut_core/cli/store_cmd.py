"""CLI commands on stores: ``ls``, ``pull`` and ``gc`` (``promote`` and ``history`` are in
:mod:`kerascut_core.cli.pointer_cmd`).

    kerascut ls s3://team-models/backbones                  # backbones, their latest versions and aliases
    kerascut ls s3://team-models/backbones mnv2             # versions of one backbone
    kerascut pull s3://team-models/backbones/mnv2@3f9a0c1d2e4b5a69 -o ./mnv2
    kerascut pull s3://team-models/backbones/mnv2@prod -o ./mnv2
    kerascut gc s3://team-models/backbones --older-than 24h
    kerascut gc s3://team-models/backbones --keep-last 5 --dry-run

Transfers show a progress bar on a terminal; ``--quiet`` (or a pipe) silences it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import click

from kerascut_core import durations
from kerascut_core.cli._echo import echo
from kerascut_core.config.backbone import FORMAT_NAMES
from kerascut_core.errors import StoreError
from kerascut_core.text import printable

__all__ = ["parse_duration", "register"]


def parse_duration(text: str) -> float:
    """``"24h"`` -> 86400.0; also ``s``, ``m``, ``d``, ``w`` and plain seconds
    (:func:`kerascut_core.durations.parse_duration`, as a click parameter error)."""
    try:
        return durations.parse_duration(str(text))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@contextlib.contextmanager
def _progress(label: str, total: int | None, quiet: bool) -> Iterator[Callable[[int], Any] | None]:
    """A thread-safe ``progress(n_bytes)`` callback drawing a rich bar on stderr, or ``None``."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _warn(problems: list[str]) -> None:
    """One escaped line on stderr per entry a listing skipped (the listing itself goes on)."""
    for problem in problems:
        echo(f"warning: {printable(' '.join(problem.split()), 300)}", err=True)


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _when(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


@click.command("ls")
@click.argument("store")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--verify", is_flag=True, help="Also check every artifact's sha256 (reads local files in full).")
def ls_cmd(store: str, name: str | None, as_json: bool, verify: bool) -> None:
    """List the backbones in STORE, or the published versions of NAME.

    Only committed versions (with a manifest) are listed; `*` marks latest, ALIASES lists the
    named aliases (`kerascut promote --alias`). Artifacts are checked for presence and size
    (and sha256 with --verify; on S3 from recorded metadata).

    \b
    Examples:
      kerascut ls ./backbones
      kerascut ls s3://team-models/backbones mnv2 --json
    """
    from kerascut_core.publishing import (
        list_backbones,
        require_store_root,
        scan_versions,
        verify_version,
    )
    from kerascut_core.publishing.pointers import scan_aliases
    from kerascut_core.stores import LocalStore, open_store

    opened = open_store(store)
    require_store_root(opened, "list")
    rows: list[dict[str, Any]]  # JSON objects, one per line of the table
    if name is None:
        rows = []
        for backbone in list_backbones(opened):
            versions, problems = scan_versions(opened, backbone)
            _warn(problems)
            if versions:
                latest = next((v.version for v in versions if v.latest), None)
                aliases, problems = scan_aliases(opened, backbone)
                _warn(problems)
                rows.append({"name": backbone, "latest": latest, "versions": len(versions), "aliases": aliases})
        if as_json:
            echo(json.dumps(rows, indent=2))
            return
        if not rows:
            echo(f"No backbones published in {opened.root_uri}.", err=True)
            return
        width = max(len(printable(r["name"], 200)) for r in rows)
        echo(f"{'NAME'.ljust(width)}  {'LATEST'.ljust(16)}  {'VERSIONS'.ljust(8)}  ALIASES")
        for r in rows:
            pairs = ", ".join(f"{a}={v}" for a, v in r["aliases"].items()) or "-"
            echo(f"{printable(r['name'], 200).ljust(width)}  {printable(r['latest'] or '-', 100).ljust(16)}  {str(r['versions']).ljust(8)}  "
                       f"{printable(pairs, 400)}")
        return
    from kerascut_core.uris import check_name

    versions, problems = scan_versions(opened, check_name(name))
    _warn(problems)
    aliases, problems = scan_aliases(opened, name)
    _warn(problems)
    rows = []
    for v in versions:
        problems = verify_version(opened, name, v.version, checksums=verify or not isinstance(opened, LocalStore))
        rows.append({
            "version": v.version,
            "latest": v.latest,
            "created_at": _when(v.created_at),
            "bytes": v.size,
            "passed": v.passed,
            "max_abs_diff": v.max_abs_diff,
            "source": v.source_uri,
            "problems": problems,
            "aliases": [a for a, target in aliases.items() if target == v.version],
        })
    if as_json:
        echo(json.dumps(rows, indent=2))
        return
    if not rows:
        from kerascut_core._names import did_you_mean
        from kerascut_core.publishing import list_backbones

        hint = did_you_mean(name, list_backbones(opened))
        raise StoreError(
            f"No published versions of {name!r} in {opened.root_uri}.{hint} Run `kerascut ls {store}` to see the names."
        )
    named = [printable(",".join(r["aliases"]) or "-", 200) for r in rows]
    width = max(len("ALIASES"), *(len(n) for n in named))
    echo(f"  {'VERSION'.ljust(16)}  {'CREATED'.ljust(20)}  {'SIZE'.rjust(9)}  {'MAX_ABS_DIFF'.rjust(12)}  "
               f"{'ALIASES'.ljust(width)}  SOURCE")
    for r, shown in zip(rows, named, strict=True):
        diff = "-" if r["max_abs_diff"] is None else f"{r['max_abs_diff']:.3g}"
        mark = "*" if r["latest"] else " "
        note = f"  BROKEN: {r['problems'][0]}" if r["problems"] else ""
        note = printable(note, 300)
        echo(f"{mark} {r['version'].ljust(16)}  {r['created_at'].ljust(20)}  {_human(r['bytes']).rjust(9)}  {diff.rjust(12)}  "
                   f"{shown.ljust(width)}  {printable(r['source'], 200)}{note}")


@click.command("pull")
@click.argument("ref", metavar="STORE/NAME[@VERSION]")
@click.option("-o", "--output", "output", required=True, type=click.Path(), help="Directory to write into.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None, help="Download cache (default: the user cache).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--format", "fmt", type=click.Choice(FORMAT_NAMES), default=None,
              help="Fetch only this format's artifacts (and the manifest); default: every artifact.")
@click.option("--replace", is_flag=True,
              help="The output directory may hold other files: remove them, leaving exactly this version's files.")
def pull_cmd(ref: str, output: str, cache_dir: str | None, quiet: bool, fmt: str | None, replace: bool) -> None:
    """Download a published version (latest by default) into a directory, checking every sha256.

    @x is an alias when NAME has one of that name (`kerascut promote --alias`), else a version.
    The directory must be outside any store and hold nothing but this version's files (an
    earlier pull of it); --replace removes whatever else is there, once every file arrived.

    \b
    Examples:
      kerascut pull s3://team-models/backbones/mnv2 -o ./mnv2
      kerascut pull ./backbones/mnv2@3f9a0c1d2e4b5a69 -o ./mnv2
      kerascut pull ./backbones/mnv2@prod -o ./mnv2 --replace
      kerascut pull ./backbones/mnv2 --format onnx -o ./mnv2-onnx
    """
    from kerascut_core.publishing import pull, resolve
    from kerascut_core.publishing.consumer import format_artifacts
    from kerascut_core.publishing.consumer_cache import CacheWarning
    from kerascut_core.uris import split_backbone_ref

    _, name, version, manifest = resolve(ref)
    total = sum(a.bytes for a in format_artifacts(manifest, fmt))
    exact = f"{split_backbone_ref(ref)[0]}/{name}@{version}"  # resolved once: an alias moving meanwhile changes nothing
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CacheWarning)
        try:
            with _progress(f"pull {manifest.name}@{manifest.version}", total, quiet) as progress:
                manifest, out = pull(exact, output, cache_dir=cache_dir, progress=progress, format=fmt, replace=replace)
        finally:
            for warning in caught:  # a cached copy set aside: one line each, whatever happens next
                if issubclass(warning.category, CacheWarning):
                    echo(f"warning: {printable(' '.join(str(warning.message).split()), 600)}", err=True)
                else:
                    warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    if not quiet:  # pull returns only once every delivered file hashed to the manifest's sha256
        echo(f"Pulled {printable(manifest.name)}@{printable(manifest.version)} ({_human(total)}, sha256 verified) "
                   f"into {printable(out)}", err=True)
    echo(printable(out))


@click.command("gc")
@click.argument("store")
@click.option("--older-than", default="24h", show_default=True, help="Only remove what is older than this (30m, 24h, 7d).")
@click.option("--keep-last", type=click.IntRange(min=1), default=None, metavar="N",
              help="Also remove committed versions beyond the newest N of each backbone, in the store's commit order "
                   "(never one latest or an alias names).")
@click.option("--dry-run", is_flag=True, help="Show what would be removed, remove nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def gc_cmd(store: str, older_than: str, keep_last: int | None, dry_run: bool, as_json: bool) -> None:
    """Remove orphaned staging, stale claims, uncommitted leftovers and partial uploads.

    Committed versions (those with a manifest), at any depth, latest.json and each backbone's
    aliases/ and history/ are never touched; STORE must be a store root (a path above or
    inside one is refused).

    With --keep-last N, committed versions beyond the newest N of each backbone (in the
    store's commit order: when the store wrote each manifest, not a committer's clock) are
    removed first, except any that latest or an alias names: each one's manifest
    goes first (it stops being committed), then its artifacts. --dry-run lists exactly what a
    real run removes.

    \b
    Examples:
      kerascut gc s3://team-models/backbones --older-than 7d --dry-run
      kerascut gc ./backbones --keep-last 5
    """
    from kerascut_core.publishing import gc
    from kerascut_core.publishing.retention import apply_retention
    from kerascut_core.stores import open_store

    opened = open_store(store)
    cutoff = parse_duration(older_than)
    retained = apply_retention(opened, keep_last, dry_run=dry_run) if keep_last is not None else None
    report = gc(opened, older_than=cutoff, dry_run=dry_run)  # refuses a non-root
    if as_json:
        retention = None if retained is None else {
            "keep_last": retained.keep_last, "removed_versions": retained.removed_versions,
            "removed": retained.removed, "kept": retained.kept, "skipped": retained.skipped,
        }
        echo(json.dumps({"dry_run": dry_run, "removed": report.removed, "aborted_uploads": report.aborted_uploads,
                               "kept": report.kept, "skipped": report.skipped, "recoverable": report.recoverable,
                               "retention": retention}, indent=2))
        return
    verb = "would remove" if dry_run else "removed"
    if retained is not None:
        _warn([f"retention skipped {item}" for item in retained.skipped])
        for item in retained.removed:
            echo(f"{verb} {printable(item, 1000)}")
        echo(f"retention: {verb} {len(retained.removed_versions)} versions ({len(retained.removed)} objects) beyond "
                   f"the newest {retained.keep_last} of each backbone; kept {len(retained.kept)} older versions that a "
                   "pointer names.", err=True)
    _warn([f"skipped {item}" for item in report.skipped])
    for item in report.recoverable:  # the whole restore command, on one line
        echo(f"warning: recoverable {printable(item, 1000)}", err=True)
    for item in report.removed:
        echo(f"{verb} {printable(item, 1000)}")
    for item in report.aborted_uploads:
        echo(f"{'would abort' if dry_run else 'aborted'} upload {printable(item, 1000)}")
    echo(f"gc: {verb} {len(report.removed)} objects, {len(report.aborted_uploads)} partial uploads; "
               f"kept {len(report.kept)} recent or in-progress items.", err=True)


def register(app: click.Group) -> None:
    """Add this module's commands to ``app``."""
    for command in (ls_cmd, pull_cmd, gc_cmd):
        app.add_command(command)
