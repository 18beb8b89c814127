"""A refresh's update of ``latest``: moved, unchanged, pinned by a person, or held for consumers.

The pipeline commits a new version whatever its consumers, but moves ``latest`` onto it only
when no registered consumer of ``latest`` breaks (:mod:`kerascut_core.publishing.gate`). When
one does, ``latest`` stays where it is: :func:`advance_latest` returns ``status="held"`` with
each consumer and break, and emits ``kerascut.backbone.held`` (:mod:`kerascut_core.events`).
A held refresh is not a failed one: the version is published, and a person decides with
``kerascut diff`` and ``kerascut promote --force --reason``.

    >>> update = advance_latest(store, "mnv2", version, run_id="flow-run-1")   # doctest: +SKIP
    >>> update.status, update.latest                                           # doctest: +SKIP
    ('held', '3f9a0c1d2e4b5a69')
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kerascut_core import events
from kerascut_core.errors import ConsumerBreakError
from kerascut_core.publishing.pointer_files import read_latest
from kerascut_core.publishing.pointers import update_latest
from kerascut_core.stores import Store
from kerascut_core.text import one_line

__all__ = ["LatestUpdate", "advance_latest"]


class LatestUpdate(BaseModel):
    """What a refresh's update of ``latest`` did.

    ``status``: ``moved`` (latest names ``version`` now), ``unchanged`` (it already did),
    ``pinned`` (a person's promote holds it on ``latest``) or ``held`` (``version`` breaks the
    ``consumers`` of ``latest``; ``reason`` is the one line). ``latest`` is what it names after.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    status: Literal["moved", "unchanged", "pinned", "held"]
    latest: str | None = None
    consumers: list[dict[str, Any]] = Field(default_factory=list)
    reason: str | None = None


def advance_latest(store: Store, name: str, version: str, *, run_id: str | None = None) -> LatestUpdate:
    """Point ``latest`` at ``version`` unless a person pinned it or a consumer of ``latest``
    breaks; never raises for a consumer (see the module docstring)."""
    before = read_latest(store, name)
    try:
        stored = update_latest(store, name, version, run_id=run_id)
    except ConsumerBreakError as exc:
        broken = [b.to_json() for b in getattr(exc, "breaks", [])]
        held = read_latest(store, name)
        reason = one_line(exc, 2000)
        events.backbone_held(store, name, version=version, latest=held, consumers=broken, reason=reason)
        return LatestUpdate(name=name, version=version, status="held", latest=held, consumers=broken, reason=reason)
    now = stored.get("version") if isinstance(stored, dict) else None
    if now != version:
        return LatestUpdate(name=name, version=version, status="pinned", latest=now if isinstance(now, str) else None,
                            reason=f"latest is pinned on {now} by a promote; `kerascut promote --no-pin` hands it back")
    return LatestUpdate(name=name, version=version, status="unchanged" if before == version else "moved", latest=now)
