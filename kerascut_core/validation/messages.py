"""How validation words what it found: one line per reason, shapes as text.

Every failure in a report is one line. An exception becomes its message with whitespace
collapsed, cut to 400 characters, and prefixed with its type unless it is a kerascut error
(whose messages are already written for users).

    >>> one_line(ValueError("bad   value"))
    'ValueError: bad value'
    >>> shape_text((None, 8, 8, 3))
    '(None, 8, 8, 3)'
"""

from __future__ import annotations

from collections.abc import Iterable

from kerascut_core.text import one_line

__all__ = ["one_line", "shape_text"]


def shape_text(shape: Iterable[int | None]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"
