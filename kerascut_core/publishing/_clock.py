"""The publishing clock: seconds since the epoch, and ISO timestamps (UTC) for what is written.

One place, so that tests and the lease rules (:mod:`kerascut_core.publishing.claim`) see the
same time.
"""

from __future__ import annotations

import datetime as dt
import time

__all__ = ["iso", "now"]


def now() -> float:
    return time.time()


def iso(ts: float | None = None) -> str:
    return dt.datetime.fromtimestamp(now() if ts is None else ts, tz=dt.timezone.utc).isoformat()
