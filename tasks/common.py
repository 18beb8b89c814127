"""What every kerascut task shares: retry on transient S3 errors, timeouts, no result caching.

Tasks pass URIs and typed models (pydantic, from ``kerascut_core.publishing``), never Keras
model objects, so a task can run in any process (or be retried) and the Prefect UI shows
readable parameters.
"""

from __future__ import annotations

import threading
from typing import Any

from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from kerascut_core.transient import is_transient

__all__ = [
    "COMPUTE_TASK",
    "IO_TASK",
    "KERAS_LOCK",
    "artifact_key",
    "is_transient",
    "retry_on_transient",
]

def retry_on_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only transient S3/network errors."""
    exc = state.data if isinstance(getattr(state, "data", None), BaseException) else None
    if exc is None:
        try:
            result = state.result(raise_on_failure=False)
        except BaseException as raised:  # the result may itself raise
            result = raised
        exc = result if isinstance(result, BaseException) else None
    return is_transient(exc)


# Options shared by the tasks that talk to a store: a few retries with exponential backoff
# (2 s, 4 s, 8 s, jittered) on transient errors only.
IO_TASK: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": retry_on_transient,
    "cache_policy": NO_CACHE,
    "persist_result": False,
}

# Options for CPU-bound tasks (cut, validate): no retries, results not persisted.
COMPUTE_TASK: dict[str, Any] = {
    "retries": 0,
    "cache_policy": NO_CACHE,
    "persist_result": False,
}


def artifact_key(name: str) -> str:
    """The stable Prefect artifact key of a backbone: ``kerascut-<name>`` (lowercase, dashes).

    Prefect keys allow lowercase letters, digits and dashes; other characters become dashes.
    """
    cleaned = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return f"kerascut-{cleaned}"


# Keras keeps per-thread state that ``keras.backend.clear_session()`` resets for every thread
# at once, and TensorFlow already uses every core for one model. So the tasks that build
# models (cut, in-process validation) take this lock: backbones prepared concurrently overlap
# their downloads, uploads and remote (GPU pool) validations, not their Keras work.
KERAS_LOCK = threading.Lock()
