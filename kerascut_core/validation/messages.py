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

from kerascut_core.errors import KerascutError

__all__ = ["one_line", "shape_text"]


def one_line(exc: BaseException | str) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, BaseException) and not isinstance(exc, KerascutError):
        text = f"{type(exc).__name__}: {text}"
    return text[:400]


def shape_text(shape: Iterable[int | None]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"
