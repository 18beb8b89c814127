"""In-process progress events: how ``kerascut run`` shows what each backbone is doing.

Flows call :func:`emit` at each step; listeners registered with :func:`listen` (the CLI) get
``(name, step, info)``. Deployed runs have no listeners: there the Prefect UI shows the same
steps as task runs and artifacts. Listeners must be quick and thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

__all__ = ["Listener", "emit", "listen"]

Listener = Callable[[str, str, dict[str, Any]], None]
_listeners: list[Listener] = []
_lock = threading.Lock()


def emit(name: str, step: str, **info: Any) -> None:
    """Tell listeners that backbone ``name`` reached ``step`` (never raises)."""
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        with suppress(Exception):  # a broken listener must not break a refresh
            listener(name, step, info)


@contextmanager
def listen(listener: Listener) -> Iterator[None]:
    """Register ``listener`` for the duration of the ``with`` block."""
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)
