"""Helpers for error messages: the nearest valid names, and values shown at a bounded length.

Every value that reaches a message through :func:`short_repr` is cut *before* it is formatted,
so a 10 MB name, a 5000-digit integer or a list expanded from YAML aliases costs a few hundred
characters in the message, not its own size.

    >>> short_repr("a" * 10_000_000, limit=40)
    "'aaaaaaaaaa...aaaaa' (10,000,000 characters)"
    >>> short_repr(10 ** 5000)
    '<an integer of 5001 digits>'
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable
from typing import Any

__all__ = ["clip", "closest", "did_you_mean", "format_options", "short_repr"]

# A name longer than this is not a typo of a valid name: no suggestion is looked for.
_MAX_SUGGEST_LEN = 200
# Integers above this many bits (about 300 digits) are described, not printed.
_MAX_INT_BITS = 1000


def closest(name: str, options: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` options closest to ``name`` (best first)."""
    if not isinstance(name, str) or len(name) > _MAX_SUGGEST_LEN:
        return []
    options = list(options)
    found = difflib.get_close_matches(name, options, n=n, cutoff=0.5)
    if len(found) < n:
        lowered = name.lower()
        found += [o for o in options if lowered in o.lower() and o not in found][: n - len(found)]
    return found


def did_you_mean(name: str, options: Iterable[str], n: int = 3) -> str:
    """``" Did you mean 'a', 'b'?"`` or ``""`` when nothing is close."""
    found = closest(name, options, n=n)
    if not found:
        return ""
    return " Did you mean " + ", ".join(repr(f) for f in found) + "?"


def format_options(options: Iterable[str], limit: int = 8) -> str:
    """``"'a', 'b', 'c'"``, cut after ``limit`` items with a count of the rest."""
    options = list(options)
    shown = ", ".join(short_repr(o) for o in options[:limit])
    if len(options) > limit:
        shown += f", ... ({len(options) - limit} more)"
    return shown


def _int_text(value: int) -> str:
    digits = int(abs(value).bit_length() * 0.30103) + 1  # log10(2), close enough to describe it
    return f"<an integer of {digits} digits>"


class _Bounded(reprlib.Repr):
    """``reprlib`` limits everywhere, and integers too large to print described instead."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxtuple = self.maxlist = self.maxarray = self.maxset = self.maxfrozenset = 6
        self.maxdict = 4
        self.maxdeque = 6
        self.maxstring = self.maxother = self.maxlong = max(limit, 12)

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > _MAX_INT_BITS:
            return _int_text(x)
        return super().repr_int(x, level)

    def repr_bytes(self, x: bytes, level: int) -> str:
        text = repr(x[: self.maxstring])
        return text if len(x) <= self.maxstring else text + "..."


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` in at most about ``limit`` characters, computed without a full ``repr``.

    Long strings keep their start and end with the length appended; containers show their
    first items and three levels; huge integers are described by their number of digits.
    """
    if isinstance(value, str) and len(value) > limit:
        keep = max(limit - 24, 12)
        head, tail = value[: keep * 2 // 3], value[len(value) - keep // 3 :]
        return f"{head + '...' + tail!r} ({len(value):,} characters)"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > _MAX_INT_BITS:
        return _int_text(value)
    return clip(_Bounded(limit).repr(value), limit + 40)


def clip(text: str, limit: int = 1000) -> str:
    """``text`` cut to ``limit`` characters (with ``...``), for messages built from other messages."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
