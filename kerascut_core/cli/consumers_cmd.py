"""``kerascut consumers add/ls/rm``: the downstream models a breaking move cannot pass.

    kerascut consumers add ./backbones/mnv2 --consumer detector-v3 --follows prod --outputs C4,C5 --max-drift 0.01
    kerascut consumers ls ./backbones/mnv2 --json
    kerascut consumers rm ./backbones/mnv2 --consumer detector-v3

A consumer records the outputs it relies on (shape, dtype, channels, stride as the version the
pointer names has them), the preprocessing and an optional relative drift bound; every move of
the pointer it follows (``promote``, an alias move, a refresh's update of latest) that breaks it
is refused unless ``--force --reason``. Store text is printed escaped.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from kerascut_core.cli._echo import echo
from kerascut_core.text import printable

if TYPE_CHECKING:
    from kerascut_core.stores import Store

__all__ = ["register"]


def _split(ref: str) -> tuple[str, str]:
    from kerascut_core.uris import split_backbone_ref

    store_uri, name, pinned = split_backbone_ref(ref)
    if pinned:
        raise click.UsageError(
            f"Expected STORE/NAME without @ (the pointer is --follows). Received {printable(ref, 200)!r}."
        )
    return store_uri, name


def _open(store_uri: str, what: str) -> Store:
    from kerascut_core.publishing import require_store_root
    from kerascut_core.stores import open_store

    store = open_store(store_uri)
    require_store_root(store, what)
    return store


@click.group("consumers")
def consumers_group() -> None:
    """Register, list and remove the downstream models that follow a backbone's pointer.

    \b
    Examples:
      kerascut consumers add ./backbones/mnv2 --consumer detector-v3 --follows prod --outputs C4,C5
      kerascut consumers ls ./backbones/mnv2
      kerascut consumers rm ./backbones/mnv2 --consumer detector-v3
    """


@consumers_group.command("add")
@click.argument("ref", metavar="STORE/NAME")
@click.option("--consumer", "consumer", required=True, metavar="ID", help="The consumer's id (a name).")
@click.option("--follows", default="latest", show_default=True, metavar="POINTER",
              help="latest, an alias, or a version (a pin: retention keeps it).")
@click.option("--outputs", required=True, metavar="C4,C5", help="The outputs it uses, comma-separated.")
@click.option("--max-drift", type=float, default=None, metavar="R",
              help="Refuse moves whose outputs differ from the registered version by more than R (relative).")
@click.option("--reason", default=None, metavar="TEXT", help="Why it relies on them (recorded).")
def add_cmd(ref: str, consumer: str, follows: str, outputs: str, max_drift: float | None, reason: str | None) -> None:
    """Record that consumer ID follows POINTER of STORE/NAME and relies on OUTPUTS."""
    from kerascut_core.publishing.consumer_registry import register_consumer

    store_uri, name = _split(ref)
    store = _open(store_uri, "register a consumer in")
    wanted = [o.strip() for o in outputs.split(",") if o.strip()]
    record = register_consumer(store, name, consumer, follows=follows, outputs=wanted, max_drift=max_drift,
                               reason=reason)
    echo(f"{name}: consumer {printable(record.consumer, 200)} follows {printable(record.follows, 200)} "
         f"(now {printable(record.version, 100)}) and relies on {', '.join(printable(o, 100) for o in record.outputs)}"
         + (f"; max drift {record.max_drift:g}" if record.max_drift is not None else ""))


@consumers_group.command("ls")
@click.argument("ref", metavar="STORE/NAME")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def ls_cmd(ref: str, as_json: bool) -> None:
    """List the consumers of STORE/NAME: what each follows and relies on."""
    from kerascut_core.publishing.consumer_registry import list_consumers

    store_uri, name = _split(ref)
    store = _open(store_uri, "list the consumers of")
    records, problems = list_consumers(store, name)
    for problem in problems:
        echo(f"warning: {printable(' '.join(problem.split()), 300)}", err=True)
    if as_json:
        echo(json.dumps([r.model_dump(mode="json") for r in records], indent=2))
        return
    if not records:
        echo(f"No consumers registered for {printable(store.uri(name), 300)}.", err=True)
        return
    rows = [[printable(r.consumer, 100), printable(r.follows, 100), printable(r.version, 100),
             ",".join(printable(o, 60) for o in r.outputs), "-" if r.max_drift is None else f"{r.max_drift:g}",
             printable(r.reason or "", 200)] for r in records]
    header = ["CONSUMER", "FOLLOWS", "REGISTERED ON", "OUTPUTS", "MAX DRIFT", "REASON"]
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header) - 1)]
    echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=False)) + "  " + header[-1])
    for r in rows:
        echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])


@consumers_group.command("rm")
@click.argument("ref", metavar="STORE/NAME")
@click.option("--consumer", "consumer", required=True, metavar="ID", help="The consumer's id.")
def rm_cmd(ref: str, consumer: str) -> None:
    """Remove the registration of consumer ID of STORE/NAME."""
    from kerascut_core.publishing.consumer_registry import remove_consumer

    store_uri, name = _split(ref)
    store = _open(store_uri, "remove a consumer from")
    remove_consumer(store, name, consumer)
    echo(f"{name}: consumer {printable(consumer, 200)} removed")


def register(app: click.Group) -> None:
    """Add this module's commands to ``app``."""
    app.add_command(consumers_group)
