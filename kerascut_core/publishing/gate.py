"""The consumer gate: may a pointer move onto a version without breaking who follows it?

Every move of ``latest`` or an alias (:func:`~kerascut_core.publishing.pointers.promote`, an
alias move, the pipeline's update of ``latest``) asks :class:`Gate` about the version it moves
onto, at write time (inside the conditional update, so a consumer registered meanwhile is seen:
see :mod:`kerascut_core.publishing.consumer_registry`). For each consumer that follows that
pointer, the version breaks it when an output it relies on is removed or has another shape,
dtype, channels or stride, when the preprocessing changed, or when, with ``max_drift``, the
relative difference of an output it relies on, against the version it registered on, on the
same seeded inputs, exceeds the bound (the models are loaded only then, once per move).

A consumer record that cannot be read (corrupt, a link, a name kerascut does not write) holds
every move of the backbone's pointers until it is repaired or removed: it may be a consumer of
the pointer. A move that breaks a consumer is refused with one line naming each consumer and each break
(:class:`~kerascut_core.errors.ConsumerBreakError`, ``.breaks`` holds them); ``force=True`` with
a reason moves anyway, and the history entry records the override and the consumers it broke.

    >>> Gate(store, "mnv2", "latest").check("0c1d2e4b5a693f9a")     # doctest: +SKIP
    [ConsumerBreak(consumer='detector-v3', breaks=["output 'C5' removed"])]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kerascut_core.errors import ConsumerBreakError, KerascutError, ObjectNotFoundError
from kerascut_core.publishing.consumer_registry import ConsumerRecord, list_consumers
from kerascut_core.publishing.listing import read_manifest
from kerascut_core.stores import Store
from kerascut_core.text import one_line

__all__ = ["DRIFT_SAMPLES", "ConsumerBreak", "Gate", "refusal"]

#: seeded inputs a drift bound is checked on
DRIFT_SAMPLES = 8


@dataclass(frozen=True)
class ConsumerBreak:
    """One consumer a move breaks, and each way it does (one line each)."""

    consumer: str
    breaks: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"consumer": self.consumer, "breaks": list(self.breaks)}

    def line(self) -> str:
        return f"consumer {self.consumer!r} ({'; '.join(self.breaks)})"


def refusal(name: str, pointer: str, version: str, broken: list[ConsumerBreak], fix: str) -> ConsumerBreakError:
    """The one-line error of a refused move, with ``.breaks`` set."""
    error = ConsumerBreakError(
        f"Cannot move {name}@{pointer} to {version}: it breaks {', '.join(b.line() for b in broken)}. {fix}"
    )
    error.breaks = broken  # type: ignore[attr-defined]
    return error


class Gate:
    """The consumers of one pointer, checked against the versions a move may go to."""

    def __init__(self, store: Store, name: str, pointer: str, *, cache_dir: Any = None) -> None:
        self.store, self.name, self.pointer, self.cache_dir = store, name, pointer, cache_dir
        self._models: dict[str, Any] = {}
        self._drift: dict[tuple[str, str, str], list[str]] = {}

    def check(self, version: str) -> list[ConsumerBreak]:
        """Every consumer of the pointer that ``version`` breaks (none: the move may go)."""
        consumers, problems = list_consumers(self.store, self.name, follows=self.pointer)
        # a record that cannot be read may be a consumer of this pointer: it holds the move
        broken = [ConsumerBreak("(unreadable record)", [one_line(p, 300)]) for p in problems]
        if not consumers:
            return broken
        manifest = read_manifest(self.store, self.name, version)
        for record in consumers:
            breaks = record.breaks(manifest)
            if not breaks and record.max_drift is not None and record.version != version:
                breaks = self._drifts(record, version)
            if breaks:
                broken.append(ConsumerBreak(record.consumer, breaks))
        return broken

    def _model(self, version: str) -> Any:
        if version not in self._models:
            from kerascut_core.publishing.consumer import load_backbone

            self._models[version] = load_backbone(f"{self.store.root_uri}/{self.name}@{version}",
                                                  cache_dir=self.cache_dir)
        return self._models[version]

    def _drifts(self, record: ConsumerRecord, version: str) -> list[str]:
        """The outputs whose relative difference from ``record.version`` exceeds ``max_drift``."""
        key = (record.consumer, record.version, version)
        if key in self._drift:
            return self._drift[key]
        from kerascut_core.publishing.diff_models import compare_numbers

        bound = float(record.max_drift or 0.0)
        try:
            before = read_manifest(self.store, self.name, record.version)
            after = read_manifest(self.store, self.name, version)
            rows = compare_numbers(self._model(record.version), self._model(version), before, after,
                                   samples=DRIFT_SAMPLES, seed=0)
        except ObjectNotFoundError:
            found = [f"the version it registered on, {record.version}, is gone, so its max drift cannot be checked"]
        except KerascutError as exc:
            found = [f"its max drift could not be checked ({one_line(exc, 200)})"]
        else:
            found = [f"output {row.output!r} drifts {row.max_rel_diff:.3g} from {record.version} (max drift {bound:g})"
                     for row in rows if row.output in record.outputs and not row.max_rel_diff <= bound]
        self._drift[key] = found
        return found
