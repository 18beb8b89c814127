"""Shapes, strides and numbers written for people: ``kerascut show``, the model card, ``inspect``.

One spelling for each, so the terminal and the card agree:

    >>> shape_text([None, 14, 14, 96])
    '(None, 14, 14, 96)'
    >>> shape_text((None, 7, 7), unknown="?")
    '(?, 7, 7)'
    >>> stride_text([16, 16]), stride_text([8, 16]), stride_text([8, None], sep=" x "), stride_text(None)
    ('16', '8x16', '8 x ?', '?')
    >>> number_text(0.000123456), number_text(1280), number_text(None)
    ('0.000123', '1280', '?')

A value that is not a number (a manifest field someone else wrote) comes back as ``str``: the
caller escapes it for where it is shown (:mod:`kerascut_core.text`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["number_text", "shape_text", "stride_text"]


def shape_text(shape: Iterable[int | None], *, unknown: str = "None") -> str:
    """``(None, 14, 14, 96)``: a tensor shape, an unknown dimension written as ``unknown``."""
    return "(" + ", ".join(unknown if d is None else str(d) for d in shape) + ")"


def stride_text(stride: Iterable[int | None] | None, *, sep: str = "x") -> str:
    """An output's stride: one number when every axis has the same, else the axes joined by
    ``sep``; ``?`` for an unknown axis or stride."""
    values = ["?" if s is None else str(s) for s in stride or ()]
    if not values:
        return "?"
    return values[0] if len(set(values)) == 1 else sep.join(values)


def number_text(value: Any) -> str:
    """A float to three significant digits, ``?`` for ``None``, anything else as ``str``."""
    if value is None:
        return "?"
    return f"{value:.3g}" if isinstance(value, float) else str(value)
