"""Progress bars for long CLI steps: drawn on stderr on a terminal, silent in pipes and with --quiet.

    with phase_bars(quiet) as progress:          # progress(phase, done, total) or None
        report = validate(..., progress=progress)
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

__all__ = ["phase_bars"]


@contextlib.contextmanager
def phase_bars(quiet: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """Yield ``progress(phase, done, total)`` drawing one bar per phase, or ``None`` when quiet."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bars:
        tasks: dict[str, TaskID] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bars.add_task(phase, total=total)
            bars.update(tasks[phase], completed=done, total=total)

        yield progress
