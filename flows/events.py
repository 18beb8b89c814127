"""kerascut's events as Prefect events: the emitter of the ``kerascut.events`` entry point.

:mod:`kerascut_core.events` builds each event as a plain dict; :data:`emitter` sends it to the
Prefect API, so that a deployment trigger (``deployments/downstream.yaml``) can start a flow on
``kerascut.backbone.published``. The core's resource keys ``id``, ``name`` and ``role`` become
``prefect.resource.id``, ``.name`` and ``.role``; the other keys are labels as they are.

- **Active only where there is an API**: ``PREFECT_API_URL`` in the environment, a Prefect
  profile that sets it, or a Prefect flow or task run in this process. Checking costs no
  Prefect import when none is configured, so ``kerascut promote`` without Prefect stays as fast
  as before.
- **Inside a run** (the pipeline's flows) the event goes to Prefect's own events worker, which
  relates it to the flow run and delivers it with the run's other events.
- **Outside a run** (``kerascut promote``, a notebook) it is sent at once on its own
  connection, with one connection attempt and a deadline (:data:`SEND_TIMEOUT_S`), so a
  short-lived process has delivered it when the call returns. An API that cannot be reached
  costs one warning (``kerascut_core.events.EventWarning``), and no further attempt in this
  process.

Example (with a Prefect server at ``PREFECT_API_URL``)::

    from kerascut.flows.events import emitter
    from kerascut_core import events

    emitter.active()        # True: PREFECT_API_URL is set
    events.backbone_failed("./backbones", "mnv2", reason="validation failed")   # sent when it returns
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

__all__ = ["SEND_TIMEOUT_S", "PrefectEmitter", "emitter", "to_prefect"]

#: how long one event may take to reach the API from outside a run (connect and send)
SEND_TIMEOUT_S = 10.0
_API_URL_VAR = "PREFECT_API_URL"
_LABELS = {"id": "prefect.resource.id", "name": "prefect.resource.name", "role": "prefect.resource.role"}
#: Prefect's loggers that would print the connection failure in several lines of their own
_QUIET_LOGGERS = ("prefect.events.clients", "prefect._internal.version_checking")


def _in_run() -> bool:
    """A Prefect flow or task run in this thread (never imports Prefect)."""
    if "prefect.context" not in sys.modules:
        return False
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def _profile_may_set_api_url() -> bool:
    """Whether Prefect's profiles file names PREFECT_API_URL at all (a text search: no import)."""
    path = os.environ.get("PREFECT_PROFILES_PATH")
    if not path:
        path = str(Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect") / "profiles.toml")
    try:
        return _API_URL_VAR in Path(path).expanduser().read_text(errors="replace")
    except OSError:
        return False


def _configured_api_url() -> str | None:
    if os.environ.get(_API_URL_VAR):
        return os.environ[_API_URL_VAR]
    if not _profile_may_set_api_url():
        return None
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    return url if isinstance(url, str) and url else None


def _resource(labels: dict[str, Any]) -> dict[str, str]:
    return {_LABELS.get(k, k): str(v) for k, v in labels.items() if v is not None}


def to_prefect(event: dict[str, Any]) -> Any:
    """The ``prefect.events.Event`` of a core event dict."""
    from prefect.events import Event

    return Event(
        event=event["event"],
        id=uuid.UUID(event["id"]),
        occurred=event["occurred"],
        resource=_resource(event["resource"]),
        related=[_resource(r) for r in event.get("related", [])],
        payload=dict(event.get("payload") or {}),
    )


_THREAD = "kerascut-events"


class _NotFromOurThread(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName != _THREAD


class PrefectEmitter:
    """Sends kerascut's events to the Prefect API (see the module docstring)."""

    def __init__(self) -> None:
        self._unreachable: str | None = None  # the API URL that failed once in this process

    def active(self) -> bool:
        if _in_run():
            return True
        url = _configured_api_url()
        return url is not None and url != self._unreachable

    def __call__(self, event: dict[str, Any]) -> None:
        prefect_event = to_prefect(event)
        if _in_run():
            from prefect.events import emit_event

            emit_event(event=prefect_event.event, resource=dict(prefect_event.resource),
                       related=[dict(r) for r in prefect_event.related], payload=prefect_event.payload,
                       occurred=prefect_event.occurred, id=prefect_event.id)
            return
        url = _configured_api_url()
        try:
            self._send_now(prefect_event)
        except Exception:
            self._unreachable = url
            raise

    def flush(self, timeout: float = SEND_TIMEOUT_S) -> None:
        """Nothing is held outside a run; inside one, Prefect's events worker delivers the run's
        events when the run's process ends."""

    @staticmethod
    def _send_now(event: Any) -> None:
        """Send ``event`` on a connection of its own, in a thread (the caller may be inside an
        event loop), within :data:`SEND_TIMEOUT_S`; raise what went wrong in one line."""
        import asyncio

        failure: list[BaseException] = []

        async def send() -> None:
            from prefect.events.clients import get_events_client

            async with get_events_client(reconnection_attempts=0) as client:
                await client.emit(event)

        def run() -> None:
            try:
                asyncio.run(send())
            except BaseException as exc:
                failure.append(exc)

        thread = threading.Thread(target=run, name=_THREAD, daemon=True)
        quiet, hush = [logging.getLogger(n) for n in _QUIET_LOGGERS], _NotFromOurThread()
        for logger in quiet:
            logger.addFilter(hush)
        try:
            thread.start()
            thread.join(SEND_TIMEOUT_S)
        finally:
            for logger in quiet:
                logger.removeFilter(hush)
        if thread.is_alive():
            raise TimeoutError(f"the Prefect API did not take the event within {SEND_TIMEOUT_S:g} s")
        if failure:
            exc = failure[0]
            raise ConnectionError(f"the Prefect API at {_configured_api_url()} could not be reached "
                                  f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None


#: the emitter the ``kerascut.events`` entry point names
emitter = PrefectEmitter()
