"""Text from a store or a model printed on a terminal: bounded, control characters escaped.

A manifest field with terminal escape sequences must not repaint a user's terminal, and a
10 MB value must not become a 10 MB line. (Values inside error messages go through
:func:`kerascut_core._names.short_repr`.)

    >>> printable("mnv2\\x1b[2J")
    'mnv2\\\\x1b[2J'
    >>> printable("a\\tb\\x07")
    'a\\\\tb\\\\x07'
    >>> len(printable("x" * 10_000))
    403
"""

from __future__ import annotations

from typing import Any

__all__ = ["printable"]


def printable(value: Any, limit: int = 400) -> str:
    """``str(value)`` cut to ``limit`` characters *before* escaping, control characters escaped."""
    text = value if isinstance(value, str) else str(value)
    cut = len(text) > limit
    text = text[:limit]
    out = []
    for ch in text:
        code = ord(ch)
        if code < 0x20 or 0x7F <= code < 0xA0 or ch in "\u2028\u2029":
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out) + ("..." if cut else "")
