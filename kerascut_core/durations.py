"""Durations as people write them: ``30m``, ``6h``, ``7d`` or plain seconds.

One syntax for the whole of kerascut: ``kerascut gc --older-than`` and the config's timeouts
(``validation.timeout``, ``refresh_timeout``) read durations with :func:`parse_duration`, and
messages show them with :func:`format_duration`. Pure Python.

    >>> parse_duration("6h"), parse_duration("30m"), parse_duration("90"), parse_duration(1.5)
    (21600.0, 1800.0, 90.0, 1.5)
    >>> format_duration(21600), format_duration(5400), format_duration(45), format_duration(1.5)
    ('6h', '90m', '45s', '1.5s')
    >>> parse_duration("6 hours")
    Traceback (most recent call last):
    ValueError: Expected a duration such as 30m, 24h or 7d (s, m, h, d, w), or a number of seconds. Received '6 hours'.
"""

from __future__ import annotations

import math
import re

from kerascut_core._names import short_repr

__all__ = ["DURATION_PATTERN", "UNITS", "format_duration", "parse_duration"]

#: seconds per unit suffix; no suffix means seconds
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*")
#: the same syntax for editors (ECMA regex, in the config's JSON schema)
DURATION_PATTERN = r"^\s*\d+(\.\d+)?\s*[smhdw]?\s*$"


def parse_duration(value: str | float | int) -> float:
    """Seconds in ``value``: ``"24h"`` -> 86400.0, ``"30m"``, ``"7d"``, ``"2w"``, ``"90"`` or a
    number (seconds). A ``ValueError`` with one line for anything else (negative, NaN, words)."""
    if isinstance(value, bool):  # True is an int to Python, not a duration to a person
        raise ValueError(_expected(value))
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(_expected(value))
        return float(value)
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(_expected(value))
    return float(match.group(1)) * UNITS[match.group(2) or "s"]


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of ``seconds`` in the largest unit: 21600 -> ``"6h"``."""
    for unit in ("w", "d", "h", "m"):
        count = seconds / UNITS[unit]
        if count >= 1 and count == int(count):
            return f"{int(count)}{unit}"
    return f"{int(seconds)}s" if seconds == int(seconds) else f"{seconds:g}s"


def _expected(value: object) -> str:
    return (
        "Expected a duration such as 30m, 24h or 7d (s, m, h, d, w), or a number of seconds. "
        f"Received {short_repr(value)}."
    )
