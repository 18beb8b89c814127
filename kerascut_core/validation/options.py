"""How one validation is asked for: a :class:`~kerascut_core.config.ValidationSettings`, a dict
of its fields, keyword overrides, or any mix, resolved into one object.

``validate(candidate, source, spec, settings)`` takes the config's settings as they are (a
refresh passes its ``ValidationSettings``; nothing unpacks them field by field), and keyword
arguments such as ``samples=4`` still work on top of them. The values are checked where they
are used (:func:`kerascut_core.validation.run.validate`), so a bad one gets the same one-line
error whichever way it came.

    >>> resolve_settings({"samples": 4}, {"atol": 1e-6}).samples
    4
    >>> resolve_settings(None, {"sampels": 4})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    kerascut_core.errors.ValidationError: Expected validation settings among ...; Received 'sampels'...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kerascut_core._names import did_you_mean, short_repr
from kerascut_core.config.settings import ValidationSettings
from kerascut_core.errors import ValidationError

__all__ = ["resolve_settings"]


def resolve_settings(
    settings: ValidationSettings | Mapping[str, Any] | None, overrides: Mapping[str, Any]
) -> ValidationSettings:
    """``settings`` (the defaults when ``None``) with ``overrides`` on top, unvalidated values kept.

    An unknown name (in either) is a one-line :class:`ValidationError` naming the valid ones.
    """
    fields = list(ValidationSettings.model_fields)
    given = settings.model_dump() if isinstance(settings, ValidationSettings) else dict(settings or {})
    for name in [*given, *overrides]:
        if name not in fields:
            raise ValidationError(
                f"Expected validation settings among {', '.join(fields)}; Received {short_repr(name)}."
                f"{did_you_mean(str(name), fields)}"
            )
    values = {**ValidationSettings().model_dump(), **given, **overrides}
    # model_construct keeps each value as given: validate() checks them with its own messages
    return ValidationSettings.model_construct(**values)
