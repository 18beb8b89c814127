"""CLI commands on stores: ``ls``, ``pull``, ``promote`` and ``gc``.

    kerascut ls s3://team-models/backbones                  # backbones and their latest versions
    kerascut ls s3://team-models/backbones mnv2             # versions of one backbone
    kerascut pull s3://team-models/backbones/mnv2@3f9a0c1d2e4b5a69 -o ./mnv2
    kerascut promote s3://team-models/backbones/mnv2 3f9a0c1d2e4b5a69
    kerascut gc s3://team-models/backbones --older-than 24h

Transfers show a progress bar on a terminal; ``--quiet`` (or a pipe) silences it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click

from kerascut_core._text import printable
from kerascut_core.errors import StoreError

__all__ = ["parse_duration", "register"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """``"24h"`` -> 86400.0; also ``s``, ``m``, ``d``, ``w`` and plain seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", str(text))
    if not match:
        raise click.BadParameter(f"Expected a duration such as 30m, 24h or 7d. Received {text!r}.")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


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
        click.echo(f"warning: {printable(' '.join(problem.split()), 300)}", err=True)


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

    Only committed versions (with a manifest) are listed; `*` marks latest. Artifacts are
    checked for presence and size (and sha256 with --verify; on S3 from recorded metadata).

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
                rows.append({"name": backbone, "latest": latest, "versions": len(versions)})
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        if not rows:
            click.echo(f"No backbones published in {opened.root_uri}.", err=True)
            return
        width = max(len(r["name"]) for r in rows)
        click.echo(f"{'NAME'.ljust(width)}  {'LATEST'.ljust(16)}  VERSIONS")
        for r in rows:
            click.echo(f"{r['name'].ljust(width)}  {(r['latest'] or '-').ljust(16)}  {r['versions']}")
        return
    from kerascut_core.uris import check_name

    versions, problems = scan_versions(opened, check_name(name))
    _warn(problems)
    rows = []
    for v in versions:
        problems = verify_version(opened, name, v.version, checksums=verify or not isinstance(opened, LocalStore))
        rows.append({
            "version": v.version,
            "latest": v.latest,
            "created_at": _when(v.created_at),
            "bytes": sum(a.bytes for a in v.manifest.artifacts),
            "passed": v.manifest.validation.passed,
            "max_abs_diff": v.manifest.validation.max_abs_diff,
            "source": v.manifest.source.uri,
            "problems": problems,
        })
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        from kerascut_core._names import did_you_mean
        from kerascut_core.publishing import list_backbones

        hint = did_you_mean(name, list_backbones(opened))
        raise StoreError(
            f"No published versions of {name!r} in {opened.root_uri}.{hint} Run `kerascut ls {store}` to see the names."
        )
    click.echo(f"  {'VERSION'.ljust(16)}  {'CREATED'.ljust(20)}  {'SIZE'.rjust(9)}  {'MAX_ABS_DIFF'.rjust(12)}  SOURCE")
    for r in rows:
        diff = "-" if r["max_abs_diff"] is None else f"{r['max_abs_diff']:.3g}"
        mark = "*" if r["latest"] else " "
        note = f"  BROKEN: {r['problems'][0]}" if r["problems"] else ""
        note = printable(note, 300)
        click.echo(f"{mark} {r['version'].ljust(16)}  {r['created_at'].ljust(20)}  {_human(r['bytes']).rjust(9)}  {diff.rjust(12)}  {printable(r['source'], 200)}{note}")


@click.command("pull")
@click.argument("ref", metavar="STORE/NAME[@VERSION]")
@click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False), help="Directory to write into.")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None, help="Download cache (default: the user cache).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def pull_cmd(ref: str, output: str, cache_dir: str | None, quiet: bool) -> None:
    """Download a published version (latest by default) into a directory, checking every sha256.

    \b
    Examples:
      kerascut pull s3://team-models/backbones/mnv2 -o ./mnv2
      kerascut pull ./backbones/mnv2@3f9a0c1d2e4b5a69 -o ./mnv2
    """
    from kerascut_core.publishing import pull, resolve

    _, _, _, manifest = resolve(ref)
    total = sum(a.bytes for a in manifest.artifacts)
    with _progress(f"pull {manifest.name}@{manifest.version}", total, quiet) as progress:
        manifest, out = pull(ref, output, version=manifest.version, cache_dir=cache_dir, progress=progress)
    if not quiet:
        click.echo(f"Pulled {printable(manifest.name)}@{printable(manifest.version)} ({_human(total)}, sha256 verified) "
                   f"into {printable(out)}", err=True)
    click.echo(printable(out))


@click.command("promote")
@click.argument("ref", metavar="STORE/NAME")
@click.argument("version")
@click.option("--no-pin", is_flag=True, help="Let scheduled refreshes move latest again afterwards.")
def promote_cmd(ref: str, version: str, no_pin: bool) -> None:
    """Point NAME's latest at an existing VERSION (roll back or forward).

    latest is then pinned: refreshes keep publishing new versions but do not move latest
    until the next promote (use --no-pin to hand it back to them).

    \b
    Example:
      kerascut promote s3://team-models/backbones/mnv2 3f9a0c1d2e4b5a69
    """
    from kerascut_core.publishing import promote, require_store_root
    from kerascut_core.stores import open_store
    from kerascut_core.uris import split_backbone_ref

    store_uri, name, pinned = split_backbone_ref(ref)
    if pinned:
        raise click.UsageError(f"Expected STORE/NAME without @version (the version is its own argument). Received {printable(ref, 200)!r}.")
    opened = open_store(store_uri)
    require_store_root(opened, "promote in")
    result = promote(opened, name, version, pin=not no_pin)
    previous = result.get("previous")
    click.echo(f"{name}: latest is now {version}" + (f" (was {previous})" if previous and previous != version else "")
               + ("; pinned" if result.get("pinned") else ""))


@click.command("gc")
@click.argument("store")
@click.option("--older-than", default="24h", show_default=True, help="Only remove what is older than this (30m, 24h, 7d).")
@click.option("--dry-run", is_flag=True, help="Show what would be removed, remove nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def gc_cmd(store: str, older_than: str, dry_run: bool, as_json: bool) -> None:
    """Remove orphaned staging, stale claims, uncommitted leftovers and partial uploads.

    Committed versions (those with a manifest), at any depth, and latest.json are never
    touched; STORE must be a store root (a path above or inside one is refused).

    \b
    Example:
      kerascut gc s3://team-models/backbones --older-than 7d --dry-run
    """
    from kerascut_core.publishing import gc
    from kerascut_core.stores import open_store

    opened = open_store(store)
    report = gc(opened, older_than=parse_duration(older_than), dry_run=dry_run)  # refuses a non-root
    if as_json:
        click.echo(json.dumps({"dry_run": dry_run, "removed": report.removed, "aborted_uploads": report.aborted_uploads,
                               "kept": report.kept, "skipped": report.skipped}, indent=2))
        return
    _warn([f"skipped {item}" for item in report.skipped])
    verb = "would remove" if dry_run else "removed"
    for item in report.removed:
        click.echo(f"{verb} {printable(item, 1000)}")
    for item in report.aborted_uploads:
        click.echo(f"{'would abort' if dry_run else 'aborted'} upload {printable(item, 1000)}")
    click.echo(f"gc: {verb} {len(report.removed)} objects, {len(report.aborted_uploads)} partial uploads; "
               f"kept {len(report.kept)} recent or in-progress items.", err=True)


def register(app: click.Group) -> None:
    """Add this module's commands to ``app``."""
    for command in (ls_cmd, pull_cmd, promote_cmd, gc_cmd):
        app.add_command(command)
