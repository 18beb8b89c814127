"""The state of one validation run: the failures found so far and the pieces of the report.

:func:`~kerascut_core.validation.validate` fills a :class:`Run` phase by phase (each phase timed
into ``timings``) and turns it into a :class:`~kerascut_core.validation.report.ValidationReport`
at the end. A report with no compared output never passes.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from kerascut_core.validation.comparisons import max_diff
from kerascut_core.validation.report import (
    FormatCheck,
    OutputCheck,
    StructureCheck,
    ThroughputRow,
    Timings,
    ValidationReport,
    WeightCheck,
)

__all__ = ["Run"]


@dataclass
class Run:
    """What one validation found so far: the failures, one line each, and the report's parts."""

    atol: float
    rtol: float
    batch_size: int
    failures: list[str] = field(default_factory=list)
    outputs: list[OutputCheck] = field(default_factory=list)
    structure: StructureCheck | None = None
    weights: WeightCheck | None = None
    formats: list[FormatCheck] = field(default_factory=list)
    throughput: list[ThroughputRow] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)
    progress: Callable[[str, int, int], None] | None = None

    def reporter(self, phase: str) -> Callable[[int, int], None] | None:
        """``(done, total) -> None`` for one phase's batches, or ``None`` when nobody listens."""
        if self.progress is None:
            return None
        return functools.partial(self.progress, phase)

    def fail(self, reason: str) -> None:
        self.failures.append(reason)

    def fail_all(self, reasons: Iterable[str]) -> None:
        self.failures.extend(reasons)

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the seconds spent in the block to ``timings.<phase>``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            setattr(self.timings, phase, getattr(self.timings, phase) + time.perf_counter() - started)

    def report(self, **fields: Any) -> ValidationReport:
        from kerascut_core._version import __version__

        failures = list(self.failures)
        if not self.outputs and not failures:
            failures.append("no output was compared")
        diffs = [o.max_abs_diff for o in self.outputs]
        rels = [o.max_rel_diff for o in self.outputs]
        return ValidationReport(
            passed=not failures,
            max_abs_diff=max_diff(diffs) if diffs else math.inf,
            max_rel_diff=max_diff(rels) if rels else math.inf,
            failures=failures,
            atol=self.atol,
            rtol=self.rtol,
            outputs=self.outputs,
            structure=self.structure,
            weights=self.weights,
            formats=self.formats,
            throughput=self.throughput,
            timings=self.timings,
            kerascut_version=__version__,
            **fields,
        )
