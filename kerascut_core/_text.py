"""Text from outside (a store, a config, a model) made safe to print: bounded and escaped.

A manifest name with terminal escape sequences must not repaint a user's terminal, and a
10 MB value must not become a 10 MB error line.

    >>> shown("mnv2\\x1b[2J")
    "'mnv2\\\\x1b[2J'"
    >>> printable("a\\tb\\x07")
    'a\\\\tb\\\\x07'
    >>> len(shown("x" * 10_000)) < 200
    True
"""

from __future__ import annotations

from typing import Any

__all__ = ["printable", "shown"]

_LIMIT = 120


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


def shown(value: Any, limit: int = _LIMIT) -> str:
    """A quoted, bounded, escaped rendering for messages (like ``repr`` but never huge)."""
    if isinstance(value, str):
        return repr(value[:limit]) + ("..." if len(value) > limit else "")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 3 * limit:
        return f"<an integer of about {int(value.bit_length() * 0.30103)} digits>"
    if isinstance(value, (int, float, bool, type(None))):
        return repr(value)
    return printable(f"<{type(value).__name__}>", limit)
