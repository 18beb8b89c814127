"""Figures the reliability tests measured, appended as JSON lines for RELIABILITY.md.

Set ``KERASCUT_RELIABILITY_FIGURES=path.jsonl`` (``python -m tests.reliability.run`` does) and
every harness appends one line per result; without it, :func:`record` does nothing.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

__all__ = ["record"]


def record(kind: str, **figures: Any) -> None:
    path = os.environ.get("KERASCUT_RELIABILITY_FIGURES")
    if not path:
        return
    with open(path, "a") as handle:
        handle.write(json.dumps({"kind": kind, "at": time.strftime("%Y-%m-%dT%H:%M:%S"), **figures}, default=str) + "\n")
