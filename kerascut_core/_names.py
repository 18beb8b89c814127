"""Helpers for error messages that suggest the nearest valid names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["closest", "did_you_mean", "format_options"]


def closest(name: str, options: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` options closest to ``name`` (best first)."""
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
    shown = ", ".join(repr(o) for o in options[:limit])
    if len(options) > limit:
        shown += f", ... ({len(options) - limit} more)"
    return shown
