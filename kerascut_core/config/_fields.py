"""What every config model shares: the strict base model and two value checks.

``StrictModel`` refuses unknown keys (so a typo is an error with a did-you-mean, not a silently
ignored setting) and validates defaults. :func:`check_uri_value` and
:func:`check_deployment_name` are the checks of URI-valued fields (sources, weights, sample
data) and of Prefect deployment names, turned into the ``ValueError`` pydantic reports.

    >>> check_deployment_name("validate-backbone/gpu")
    'validate-backbone/gpu'
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from kerascut_core._names import short_repr
from kerascut_core.errors import KerascutError
from kerascut_core.uris import parse_uri

__all__ = ["StrictModel", "check_deployment_name", "check_uri_value"]


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


class StrictModel(BaseModel):
    """A pydantic model that refuses unknown keys and validates its defaults."""

    model_config = ConfigDict(extra="forbid", validate_default=True)
