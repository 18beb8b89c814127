"""``kerascut diff REF_A REF_B``: what changed between two versions of a backbone, and the verdict.

    kerascut diff ./backbones/mnv2@prod ./backbones/mnv2@latest
    kerascut diff s3://team/backbones/mnv2@3f9a0c1d2e4b5a69 s3://team/backbones/mnv2 --json
    kerascut diff ./backbones/mnv2@prod ./backbones/mnv2 --samples 0   # manifests only, no model loaded

Exit codes: 0 for ``identical`` or ``compatible``, 3 for ``breaking`` (as ``plan --check``
uses 3 for "action needed"), 2 for bad input (a reference that names nothing, bad options).
Store text is printed escaped.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from kerascut_core.cli._echo import echo
from kerascut_core.text import printable

__all__ = ["BREAKING_EXIT_CODE", "register"]

#: the exit code of a breaking diff
BREAKING_EXIT_CODE = 3


@click.command(
    "diff",
    epilog=(
        "\b\nExamples:\n"
        "  kerascut diff ./backbones/mnv2@prod ./backbones/mnv2@latest\n"
        "  kerascut diff ./backbones/mnv2@3f9a0c1d2e4b5a69 ./backbones/mnv2 --json\n"
        "  kerascut diff ./backbones/mnv2@prod ./backbones/mnv2 --samples 0"
    ),
)
@click.argument("ref_a", metavar="REF_A")
@click.argument("ref_b", metavar="REF_B")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option("--samples", default=8, show_default=True, type=click.IntRange(min=0),
              help="Seeded inputs pushed through both versions; 0 loads no model (manifests only).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the inputs.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Download cache (default: the user cache directory).")
def diff_command(ref_a: str, ref_b: str, as_json: bool, samples: int, seed: int, cache_dir: Path | None) -> int:
    """Compare version REF_A with REF_B (each STORE/NAME@ALIAS or STORE/NAME@VERSION; no @ is @latest).

    Interface (inputs and outputs added, removed, renamed; per output shape, dtype, channels,
    stride), preprocessing, weights (layers changed bitwise, the largest change), numbers (max
    abs and relative difference per common output on the same seeded inputs) and lineage. The
    verdict: identical (same interface, bitwise-equal weights), compatible (same interface and
    preprocessing; weights or numbers differ) or breaking, each reason on one line. Exit 0 for
    identical or compatible, 3 for breaking, 2 for bad input.
    """
    from kerascut_core.publishing.diff import diff

    result = diff(ref_a, ref_b, samples=samples, seed=seed, cache_dir=cache_dir)
    if as_json:
        echo(json.dumps(result.to_json(), indent=2, default=str))
    else:
        for line in result.lines():
            echo(printable(line, 2000))
    return BREAKING_EXIT_CODE if result.verdict == "breaking" else 0


def register(app: click.Group) -> None:
    """Add this module's commands to ``app``."""
    app.add_command(diff_command)
