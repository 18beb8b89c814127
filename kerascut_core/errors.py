"""Exceptions raised by kerascut.

Every message is one line that names the thing, the reason and the fix, shaped like Keras's
own errors: ``Expected ... Received ...`` with the valid options listed where there are any.
The CLI prints ``str(error)`` without a traceback.
"""

from __future__ import annotations

__all__ = [
    "BadRefError",
    "ConfigError",
    "ConsumerBreakError",
    "CutError",
    "CutWarning",
    "DeviceError",
    "DrawError",
    "IntegrityError",
    "KerascutError",
    "ObjectExistsError",
    "ObjectNotFoundError",
    "PreconditionFailedError",
    "PublishRefusedError",
    "SourceError",
    "StoreError",
    "ValidationError",
]


class KerascutError(Exception):
    """Base class of every error kerascut raises on purpose.

    ``exit_code`` is what the CLI exits with when this error reaches it.
    ``transient`` is True on an error worth retrying later as it is (throttling, a 5xx reply, a
    reset or timed-out connection, a body cut short); task retries (``kerascut.tasks.common``)
    read it. The S3 layer sets it on the instance; every other error keeps False.
    """

    exit_code: int = 1
    transient: bool = False


class CutError(KerascutError, ValueError):
    """A cut that cannot be made: unknown names, crossing skips, bad ranges, subclassed models."""


class CutWarning(UserWarning):
    """A cut that can be made but may not be the one meant (``drop_first`` that dropped more)."""


class SourceError(KerascutError):
    """A source model that cannot be fetched, fingerprinted or loaded."""


class StoreError(KerascutError):
    """A store operation that failed (permissions, network, layout)."""


class ObjectNotFoundError(StoreError):
    """The object, version or bucket does not exist."""


class ObjectExistsError(StoreError):
    """An immutable object already exists; published versions are never overwritten."""


class PreconditionFailedError(StoreError):
    """A conditional update lost a race (``latest.json`` changed under us)."""


class BadRefError(StoreError):
    """A backbone reference (``STORE/NAME@ALIAS`` or ``@VERSION``) that names nothing readable:
    bad input, exit 2 (``kerascut diff``)."""

    exit_code = 2


class IntegrityError(StoreError):
    """Bytes that do not match their recorded size or sha256."""


class ValidationError(KerascutError):
    """Validation could not run (as opposed to running and failing)."""


class DeviceError(ValidationError):
    """The required device is missing, e.g. ``require_gpu=True`` on a CPU-only worker."""


class ConfigError(KerascutError, ValueError):
    """A config file or field that does not validate."""

    exit_code = 2


class DrawError(KerascutError):
    """The picture could not be drawn (graphviz missing, unknown format)."""


class PublishRefusedError(StoreError):
    """A publish refused on purpose: no passing validation report, or artifacts that do not match."""


class ConsumerBreakError(PublishRefusedError):
    """A pointer move refused because it would break a registered consumer of that pointer
    (``--force --reason`` overrides it; the history records the override)."""
