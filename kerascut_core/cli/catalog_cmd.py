"""``kerascut catalog STORE -o DIR``: a static HTML catalog of a store a team can browse.

    kerascut catalog s3://team/backbones -o ./catalog
    python -m http.server -d ./catalog 8000                          # any static file server
    aws s3 sync ./catalog s3://team-catalog --delete                 # or an S3 website bucket

The site is plain HTML and CSS with no script; store text is escaped everywhere. ``DIR`` is
replaced whole once the new catalog is written, so a server never serves half of one.
"""

from __future__ import annotations

from pathlib import Path

import click

from kerascut_core.cli._echo import echo
from kerascut_core.text import printable

__all__ = ["register"]


@click.command(
    "catalog",
    epilog=(
        "\b\nExamples:\n"
        "  kerascut catalog ./backbones -o ./catalog\n"
        "  kerascut catalog s3://team/backbones -o ./catalog && python -m http.server -d ./catalog"
    ),
)
@click.argument("store_uri", metavar="STORE")
@click.option("-o", "--output", "out", required=True, type=click.Path(path_type=Path), metavar="DIR",
              help="The directory to write (replaced whole when done).")
def catalog_command(store_uri: str, out: Path) -> None:
    """Write a static HTML catalog of STORE to DIR: an index of the backbones (latest version,
    aliases, consumers, outputs, last refresh), one page per backbone (the versions on a
    timeline, the alias history, the consumers) and one per version (the card's content, the
    picture, the contract, the validation, the diff to the previous version)."""
    from kerascut_core.catalog import build_catalog
    from kerascut_core.stores import open_store

    report = build_catalog(open_store(store_uri), out)
    for problem in report.problems[:50]:
        echo(f"warning: {printable(' '.join(problem.split()), 300)}", err=True)
    echo(f"catalog of {printable(store_uri, 300)}: {report.backbones} backbones, {report.versions} versions, "
         f"{report.pages} pages in {printable(report.out, 300)}")


def register(app: click.Group) -> None:
    """Add this module's commands to ``app``."""
    app.add_command(catalog_command)
