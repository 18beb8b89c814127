"""The one way a command writes a line: :func:`echo`, ``click.echo`` with the text made inert.

Commands escape each store or model value where they format it
(:func:`kerascut_core.text.for_terminal`, bounded); :func:`echo` escapes what is left of the
whole text once more (:func:`kerascut_core.text.inert_lines`: newlines kept, nothing cut), so a
value a command forgot cannot set the terminal's title or reorder the line. Escaped text has no
control or format characters left, so escaping it again changes nothing.
"""

from __future__ import annotations

from typing import Any

import click

from kerascut_core.text import inert_lines

__all__ = ["echo"]


def echo(message: Any = "", err: bool = False, nl: bool = True) -> None:
    """``click.echo(message)`` with control, bidi and other format characters escaped."""
    click.echo(inert_lines(str(message)), err=err, nl=nl)
