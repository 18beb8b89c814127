"""The bound on one whole refresh (``refresh_timeout`` in the config).

The refresh computes one deadline when it starts. Waiting for the freshness checks stops at
the deadline, and every ``prepare-backbone`` subflow gets what is left as its Prefect
``timeout_seconds`` (Prefect ends such a run as ``TimedOut``: the subflow's staging is cleaned
on the way out, and its backbone is reported failed). A config without ``refresh_timeout``
waits as long as it takes.

Example::

    deadline = Deadline(cfg.refresh_timeout)           # seconds, or None
    future.wait(deadline.remaining())
    deadline.call(prepare_backbone, backbone=..., ...)    # bounded by what is left when it starts
"""

from __future__ import annotations

import time
from typing import Any

from kerascut_core.durations import format_duration

__all__ = ["Deadline"]

#: the least a subflow is given once the deadline is near (Prefect refuses a timeout of 0)
_MIN_SECONDS = 0.001


class Deadline:
    """``seconds`` from now (``None``: no deadline), on the monotonic clock."""

    def __init__(self, seconds: float | None, *, now: float | None = None) -> None:
        self.seconds = seconds
        start = time.monotonic() if now is None else now
        self.at = None if seconds is None else start + seconds

    def remaining(self) -> float | None:
        """Seconds left (never below zero), or ``None`` without a deadline."""
        return None if self.at is None else max(0.0, self.at - time.monotonic())

    @property
    def expired(self) -> bool:
        left = self.remaining()
        return left is not None and left <= 0.0

    def bound(self, flow: Any) -> Any:
        """The Prefect ``flow`` with what is left as its ``timeout_seconds`` (``flow`` itself
        without a deadline)."""
        left = self.remaining()
        if left is None:
            return flow
        return flow.with_options(timeout_seconds=max(_MIN_SECONDS, left))

    def call(self, flow: Any, /, **parameters: Any) -> Any:
        """Run ``flow`` bounded by what is left *now* (a subflow queued behind others gets less)."""
        return self.bound(flow)(**parameters)

    def message(self, what: str) -> str:
        """One line: ``what`` did not finish within ``refresh_timeout``, and the fix."""
        limit = format_duration(self.seconds) if self.seconds is not None else "no limit"
        return (
            f"{what} did not finish within refresh_timeout={limit}; raise refresh_timeout in the config "
            "(or find what was slow in the run's logs)."
        )
