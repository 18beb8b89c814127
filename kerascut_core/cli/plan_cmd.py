"""``kerascut plan CONFIG``: what the next refresh would publish, and why, without running it.

    kerascut plan backbones.yaml                 # one line per backbone: status, version, latest, why
    kerascut plan backbones.yaml --json          # the same as JSON
    kerascut plan backbones.yaml --check         # exit 3 when anything would be published (CI, cron)

The plan is :func:`kerascut_core.pipeline.plan.plan_backbones`, built on the refresh's own
freshness check, so ``plan`` and the ``kerascut run`` that follows cannot disagree. No Prefect
server is needed and TensorFlow is not imported. Exit codes: 0, or 3 with ``--check`` when
something would be published; 2 for a bad config; 1 when a backbone could not be checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kerascut_core.cli._echo import echo
from kerascut_core.text import printable

if TYPE_CHECKING:
    from kerascut_core.pipeline.plan import PlanEntry

__all__ = ["CHANGES_EXIT_CODE", "register"]

#: ``--check``'s exit code when the refresh would publish something
CHANGES_EXIT_CODE = 3


@click.command(
    "plan",
    epilog=(
        "\b\nExamples:\n"
        "  kerascut plan deployments/quickstart.yaml\n"
        "  kerascut plan backbones.yaml --only resnet50-c3-c5 --json\n"
        "  kerascut plan backbones.yaml --check || kerascut run backbones.yaml"
    ),
)
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--only", "only", multiple=True, metavar="NAME", help="Plan only this backbone (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--check", is_flag=True, help=f"Exit {CHANGES_EXIT_CODE} when anything would be published.")
def plan_command(config: Path, only: tuple[str, ...], as_json: bool, check: bool) -> int:
    """Show, for every backbone of CONFIG, whether the next refresh publishes it, and why.

    up-to-date: its version is published. new: nothing is published yet. stale: latest names
    an older version; WHY says what changed since (source, cut spec, input shape, formats,
    Keras or kerascut major.minor). VERSION is what the refresh publishes, LATEST what latest
    names now. Fingerprints only: nothing but latest.json and the latest manifest is read.
    """
    from kerascut_core.config import load_config
    from kerascut_core.pipeline.plan import plan_backbones

    cfg = load_config(config)
    entries = plan_backbones(cfg, only)
    publishing = [e for e in entries if e.publishes]
    errors = [e for e in entries if e.status == "error"]
    if as_json:
        echo(json.dumps({
            "store": cfg.store,
            "would_publish": len(publishing),
            "errors": len(errors),
            "backbones": [e.model_dump(mode="json") for e in entries],
        }, indent=2))
    else:
        _table(entries)
        counts = {s: sum(e.status == s for e in entries) for s in ("new", "stale", "up-to-date", "error")}
        echo(
            f"plan: {len(publishing)} to publish ({counts['new']} new, {counts['stale']} stale), "
            f"{counts['up-to-date']} up to date, {counts['error']} failed to check, in {printable(cfg.store, 200)}",
            err=True,
        )
    for entry in errors:
        echo(f"error: {printable(entry.name)}: {printable(entry.message, 600)}", err=True)
    if errors:
        return 1
    return CHANGES_EXIT_CODE if check and publishing else 0


def _table(entries: list[PlanEntry]) -> None:
    rows = []
    for e in entries:
        why = "; ".join(str(r) for r in e.reasons)
        if e.status == "new":
            why = "nothing published yet"
        elif e.status == "error":
            why = e.message
        if e.latest_after and e.latest_after != e.latest and e.status == "up-to-date":
            why = f"latest moves to {e.latest_after}"
        if e.pinned:
            why = (why + "; " if why else "") + f"latest stays pinned at {e.latest}"
        rows.append([e.name, e.status, e.version or "-", e.latest or "-", why or "-"])
    if not rows:
        return
    header = ["BACKBONE", "STATUS", "VERSION", "LATEST", "WHY"]
    widths = [max(len(header[i]), *(len(printable(r[i], 200)) for r in rows)) for i in range(4)]
    echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=False)) + "  " + header[4])
    for r in rows:
        cells = [printable(c, 200).ljust(w) for c, w in zip(r[:4], widths, strict=True)]
        echo("  ".join(cells) + "  " + printable(r[4], 1000))


def register(app: click.Group) -> None:
    """Add ``plan`` to ``app``."""
    app.add_command(plan_command)
