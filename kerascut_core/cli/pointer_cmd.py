"""CLI commands on a backbone's pointers: ``promote`` (latest or a named alias) and ``history``.

    kerascut promote s3://team-models/backbones/mnv2 3f9a0c1d2e4b5a69                  # latest, pinned
    kerascut promote s3://team-models/backbones/mnv2 3f9a0c1d2e4b5a69 --alias prod --reason "ok in A/B"
    kerascut history s3://team-models/backbones/mnv2                                    # every move, oldest first

Text from the store (reasons, user and host names) is printed escaped. ``promote`` emits
``kerascut.backbone.promoted`` where a Prefect API is configured (:mod:`kerascut_core.events`);
an event that cannot be sent is one ``warning:`` line, never a failure.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator

import click

from kerascut_core import events
from kerascut_core.cli._echo import echo
from kerascut_core.text import one_line, printable

__all__ = ["register"]


def _split(ref: str) -> tuple[str, str]:
    from kerascut_core.uris import split_backbone_ref

    store_uri, name, pinned = split_backbone_ref(ref)
    if pinned:
        raise click.UsageError(
            f"Expected STORE/NAME without @version (the version is its own argument). Received {printable(ref, 200)!r}."
        )
    return store_uri, name


@click.command("promote")
@click.argument("ref", metavar="STORE/NAME")
@click.argument("version")
@click.option("--alias", "alias", default=None, metavar="ALIAS",
              help="Move this named alias (e.g. prod) instead of latest. Created if missing.")
@click.option("--reason", default=None, metavar="TEXT", help="Why: recorded in the pointer history.")
@click.option("--no-pin", is_flag=True, help="Let scheduled refreshes move latest again afterwards (latest only).")
@click.option("--force", is_flag=True,
              help="Move even when it breaks a registered consumer (needs --reason; the history records it).")
def promote_cmd(ref: str, version: str, alias: str | None, reason: str | None, no_pin: bool, force: bool) -> None:
    """Point NAME's latest, or a named alias, at an existing VERSION (roll back or forward).

    latest is then pinned: refreshes keep publishing new versions but do not move latest
    until the next promote (use --no-pin to hand it back to them). An alias (--alias prod)
    moves only by promote; consumers load it as STORE/NAME@prod. The version must be
    committed, validated and whole (every artifact's sha256 is checked). Every move is
    recorded in `kerascut history`. A move that breaks a registered consumer of the pointer
    (`kerascut consumers`) is refused unless --force --reason TEXT.

    \b
    Examples:
      kerascut promote s3://team-models/backbones/mnv2 3f9a0c1d2e4b5a69
      kerascut promote ./backbones/mnv2 3f9a0c1d2e4b5a69 --alias prod --reason "passed A/B"
    """
    from kerascut_core.publishing import promote, require_store_root
    from kerascut_core.publishing.layout import LATEST_ALIAS
    from kerascut_core.stores import open_store

    store_uri, name = _split(ref)
    pointer = alias or LATEST_ALIAS
    if no_pin and pointer != LATEST_ALIAS:
        raise click.UsageError(
            f"Expected --no-pin only when moving latest (aliases are never moved automatically). Received --alias "
            f"{printable(pointer, 100)} with --no-pin; drop --no-pin."
        )
    opened = open_store(store_uri)
    require_store_root(opened, "promote in")
    with _event_warnings():  # the move emits kerascut.backbone.promoted where an API is configured
        result = promote(opened, name, version, pin=not no_pin, alias=alias, reason=reason, force=force)
        events.flush()
    previous = result.get("previous")
    echo(f"{name}: {printable(pointer, 200)} is now {version}"
               + (f" (was {printable(previous, 200)})" if previous and previous != version else "")
               + ("; pinned" if result.get("pinned") else ""))
    override = (result.get("last_move") or {}).get("override") if isinstance(result, dict) else None
    for broken in (override or {}).get("broke") or []:
        echo(f"warning: forced past consumer {printable(broken.get('consumer'), 200)}: "
             f"{printable('; '.join(map(str, broken.get('breaks') or [])), 600)}", err=True)


@contextlib.contextmanager
def _event_warnings() -> Iterator[None]:
    """Each event that could not be sent as one ``warning:`` line on stderr (never a failure)."""
    recorded: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", events.EventWarning)
            try:
                yield
            finally:
                recorded = list(caught)
    finally:
        # Shown once the `with` is left: one replayed inside it would be recorded again, without end.
        shown: set[str] = set()
        for w in recorded:
            if issubclass(w.category, events.EventWarning):
                line = printable(one_line(str(w.message), None), 300)
                if line not in shown:
                    shown.add(line)
                    echo(f"warning: {line}", err=True)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


@click.command("history")
@click.argument("ref", metavar="STORE/NAME")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def history_cmd(ref: str, as_json: bool) -> None:
    """Show every move of NAME's latest and aliases, oldest first.

    Each entry says which pointer moved, from and to which version, when, by whom (user and
    host), in which Prefect flow run, and why (promote --reason).

    \b
    Examples:
      kerascut history ./backbones/mnv2
      kerascut history s3://team-models/backbones/mnv2 --json
    """
    from kerascut_core.publishing import require_store_root
    from kerascut_core.publishing.history import read_history
    from kerascut_core.stores import open_store

    store_uri, name = _split(ref)
    opened = open_store(store_uri)
    require_store_root(opened, "read the history of")
    entries, problems = read_history(opened, name)
    for problem in problems:
        echo(f"warning: {printable(' '.join(problem.split()), 300)}", err=True)
    if as_json:
        echo(json.dumps([{"id": e.id, **e.to_json()} for e in entries], indent=2))
        return
    if not entries:
        echo(f"No pointer moves recorded for {printable(opened.uri(name), 300)}.", err=True)
        return
    rows = []
    for e in entries:
        by = "@".join(printable(v or "?", 100) for v in (e.by.get("user"), e.by.get("host")))
        reason = printable(e.reason or "", 300)
        if e.override is not None:
            broke = [str(b.get("consumer")) for b in e.override.get("broke") or [] if isinstance(b, dict)]
            reason = f"[forced past {printable(', '.join(broke), 200)}] {reason}"
        rows.append([printable(e.at, 40), printable(e.pointer, 60), printable(e.from_ or "-", 60),
                     printable(e.to, 60), by, printable(e.flow_run_id or "-", 60), reason])
    header = ["AT", "POINTER", "FROM", "TO", "BY", "FLOW RUN", "REASON"]
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header) - 1)]
    echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=False)) + "  " + header[-1])
    for r in rows:
        echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])


def register(app: click.Group) -> None:
    """Add this module's commands to ``app``."""
    for command in (promote_cmd, history_cmd):
        app.add_command(command)
