"""What every config model shares: the strict base model and two value checks.

``StrictModel`` refuses unknown keys (so a typo is an error with a did-you-mean, not a silently
ignored setting) and validates defaults. :func:`check_uri_value` and
:func:`check_deployment_name` are the checks of URI-valued fields (sources, weights, sample
data) and of Prefect deployment names, turned into the ``ValueError`` pydantic reports.
:data:`Duration` is a timeout field: ``30m``, ``6h``, ``7d`` or a number of seconds
(:func:`kerascut_core.durations.parse_duration`, the syntax of ``kerascut gc --older-than``),
held as seconds.

    >>> check_deployment_name("validate-backbone/gpu")
    'validate-backbone/gpu'
    >>> positive_seconds("6h"), positive_seconds(90)
    (21600.0, 90.0)
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, WithJsonSchema

from kerascut_core._names import short_repr
from kerascut_core.durations import DURATION_PATTERN, parse_duration
from kerascut_core.errors import KerascutError
from kerascut_core.uris import parse_uri

__all__ = ["Duration", "StrictModel", "check_deployment_name", "check_uri_value", "positive_seconds"]


def check_uri_value(value: str) -> str:
    """Refuse s3:// URIs with '..' keys, file:// URIs with a host and unknown schemes."""
    if "://" in value:
        try:
            parse_uri(value)
        except KerascutError as exc:
            raise ValueError(str(exc)) from None
    return value


def check_deployment_name(value: str | None) -> str | None:
    """``None`` or ``FLOW/DEPLOYMENT`` with both parts non-empty."""
    if value is not None and (value.count("/") != 1 or not all(value.split("/"))):
        raise ValueError(
            "Expected a deployment name as 'FLOW/DEPLOYMENT' such as 'validate-backbone/gpu'. "
            f"Received {short_repr(value)}."
        )
    return value


def positive_seconds(value: Any) -> float:
    """Seconds in a duration (``"30m"``, ``"6h"``, a number); zero and negatives are refused."""
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"Expected a duration above zero such as 30m or 6h. Received {short_repr(value)}.")
    return seconds


#: A timeout field: ``30m``, ``6h``, ``7d`` or seconds in the file, seconds (float) once loaded.
Duration = Annotated[
    float,
    BeforeValidator(positive_seconds),
    WithJsonSchema({
        "anyOf": [
            {"type": "number", "exclusiveMinimum": 0},
            {"type": "string", "pattern": DURATION_PATTERN},
        ]
    }),
]


class StrictModel(BaseModel):
    """A pydantic model that refuses unknown keys and validates its defaults."""

    model_config = ConfigDict(extra="forbid", validate_default=True)
