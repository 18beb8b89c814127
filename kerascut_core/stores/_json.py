"""Parsing the JSON objects a store holds, defensively: whatever the bytes, one line or a value.

Every JSON object kerascut reads from a store (pointers, aliases, claims, history entries,
manifests, staging indexes) was written by kerascut, but anyone with write access to the store
can replace it. The parse must therefore never fail in a way its callers cannot report as one
line about that file: no ``RecursionError`` from a 400 KB ``[[[[...]]]]``, no ``ValueError``
from a 5,000-digit integer (Python's int-string limit), no ``NaN``, ``Infinity`` or ``1e999``
that later compares or formats oddly. :func:`parse_json` bounds, before and while parsing:

* nesting depth, by a linear scan of the bytes with the strings taken out (so no recursion
  starts on a deep document; kerascut's own objects nest a few levels);
* the number of items (array elements and object members), counted in the same scan: the
  byte limit bounds text, this bounds the objects a parse builds (16 MB of small numbers
  would otherwise become hundreds of MB of Python objects);
* integer size, through ``parse_int`` (checked on the digits before ``int()`` sees them);
* non-finite numbers, through ``parse_constant`` (``NaN``, ``Infinity``) and ``parse_float``
  (``1e999`` overflows to infinity).

Each refusal is a :class:`~kerascut_core.errors.StoreError` naming the file and the reason.

    >>> parse_json(b'{"version": "0a1b2c3d4e5f6071"}', "latest.json")
    {'version': '0a1b2c3d4e5f6071'}
    >>> parse_json(b'[' * 100 + b']' * 100, "x.json")
    Traceback (most recent call last):
    ...
    kerascut_core.errors.StoreError: Cannot parse x.json: arrays and objects nested 100 deep, over the 64 kerascut reads. Restore or delete it.
"""

from __future__ import annotations

import json
import math
import os
import re
from itertools import accumulate
from typing import Any

from kerascut_core.errors import StoreError

__all__ = ["MAX_JSON_DEPTH", "MAX_JSON_INT_DIGITS", "MAX_JSON_ITEMS", "check_json_shape", "json_shape", "parse_json"]

#: The deepest nesting of arrays and objects a store's JSON object may have (kerascut's own
#: nest at most about six levels; a validation report's extras a few more).
MAX_JSON_DEPTH = 64
#: The most digits an integer in a store's JSON object may have (sizes and counts have at most 20).
MAX_JSON_INT_DIGITS = 40
#: The most items (array elements plus object members) a store's JSON object may hold; a
#: manifest of a large model has a few thousand. Bounds the memory one parse takes.
MAX_JSON_ITEMS = int(os.environ.get("KERASCUT_MAX_STORE_JSON_ITEMS", "250000"))

# A JSON string, escapes included (the unrolled form: no backtracking on long strings).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


class _Refused(Exception):
    """Raised by the parse hooks; turned into a StoreError naming the file."""


def json_shape(data: bytes) -> tuple[int, int]:
    """``(depth, items)`` of the JSON document ``data``: the deepest nesting of arrays and
    objects, and about how many items (elements and members) they hold. Brackets and commas
    inside strings are ignored.

    Linear in the size and free of recursion, so it is safe on any input; on invalid JSON it is
    an estimate (the parse then fails anyway).

    >>> json_shape(b'{"a": [1, {"b": "]]],"}]}'), json_shape(b'"[[["'), json_shape(b'[][][]')
    ((3, 4), (0, 0), (1, 3))
    """
    if data.count(b"[") + data.count(b"{") == 0:
        return 0, 0
    structure = _STRING.sub(b"", data)
    brackets = structure.translate(None, _NOT_BRACKETS)
    items = structure.count(b",") + brackets.count(b"[") + brackets.count(b"{")
    return max(0, max(accumulate(map(_STEP.__getitem__, brackets)), default=0)), items


def check_json_shape(data: bytes, where: str) -> None:
    """A one-line StoreError naming ``where`` when ``data`` nests deeper than
    :data:`MAX_JSON_DEPTH` or holds more than :data:`MAX_JSON_ITEMS` items; checked before any
    parser (``json``, pydantic) builds anything from it."""
    depth, items = json_shape(data)
    if depth > MAX_JSON_DEPTH:
        raise StoreError(
            f"Cannot parse {where}: arrays and objects nested {depth} deep, over the {MAX_JSON_DEPTH} kerascut reads. "
            "Restore or delete it."
        )
    if items > MAX_JSON_ITEMS:
        raise StoreError(
            f"Cannot parse {where}: about {items} items in its arrays and objects, over the {MAX_JSON_ITEMS} kerascut "
            "reads (KERASCUT_MAX_STORE_JSON_ITEMS). Restore or delete it."
        )


def _int(text: str) -> int:
    digits = len(text) - text.startswith("-")
    if digits > MAX_JSON_INT_DIGITS:
        raise _Refused(f"an integer of {digits} digits, over the {MAX_JSON_INT_DIGITS} kerascut reads")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {text[:24]}{'...' if len(text) > 24 else ''} is not finite")
    return value


def _constant(text: str) -> Any:
    raise _Refused(f"{text} is not a JSON number (kerascut writes only finite numbers)")


def parse_json(data: bytes, where: str) -> Any:
    """The value of the JSON document ``data`` read from ``where``; a one-line StoreError when it
    is not valid JSON, nests deeper than :data:`MAX_JSON_DEPTH`, holds more than
    :data:`MAX_JSON_ITEMS` items, an integer of more than
    :data:`MAX_JSON_INT_DIGITS` digits, or a non-finite number."""
    check_json_shape(data, where)
    try:
        return json.loads(data, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except _Refused as exc:
        raise StoreError(f"Cannot parse {where}: {exc}. Restore or delete it.") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise StoreError(f"Cannot parse {where}: not valid JSON ({exc.__class__.__name__}). Restore or delete it.") from None
