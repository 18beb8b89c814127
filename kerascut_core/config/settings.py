"""The settings of a config file: when it is refreshed and how backbones are validated.

``schedule`` (:class:`Schedule`: a cron string and its time zone), ``validation``
(:class:`ValidationSettings`, the defaults for every backbone) and a backbone's
``validation`` (:class:`ValidationOverrides`: the fields it changes), and ``retention``
(:class:`RetentionSettings`: how many committed versions each backbone keeps; a backbone may
set its own), and ``prepare`` (:class:`PrepareSettings`: where each stale backbone is prepared).

    >>> Schedule(cron="0  3 * * 1").cron
    '0 3 * * 1'
    >>> ValidationSettings().samples, ValidationOverrides(atol=1e-5).samples
    (8, None)
    >>> RetentionSettings().keep_last, RetentionSettings(keep_last=5).keep_last
    (None, 5)
    >>> PrepareSettings().deployment, PrepareSettings(deployment="prepare-backbone/cpu").deployment
    (None, 'prepare-backbone/cpu')
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from kerascut_core._names import did_you_mean, short_repr
from kerascut_core.config._fields import (
    Duration,
    StrictModel,
    check_deployment_name,
    check_uri_value,
)

__all__ = ["PrepareSettings", "RetentionSettings", "Schedule", "ValidationOverrides", "ValidationSettings"]

_CRON_FIELD_RE = re.compile(r"^[0-9A-Za-z*/,?#LW-]+$")


class Schedule(StrictModel):
    """When ``kerascut deploy`` schedules the refresh: a cron string and its time zone."""

    cron: str = Field(description='Cron expression (5 fields), e.g. "0 3 * * 1" for Mondays at 03:00.')
    timezone: str = Field("UTC", description="IANA time zone the cron is read in, e.g. Europe/Berlin.")

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, value: str) -> str:
        fields = value.split()
        if len(fields) not in (5, 6) or not all(_CRON_FIELD_RE.match(f) for f in fields):
            raise ValueError(
                f'Expected a cron expression with 5 fields like "0 3 * * 1". Received {short_repr(value)}.'
            )
        return " ".join(fields)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file
            raise ValueError(
                f"Expected an IANA time zone such as 'UTC' or 'Europe/Berlin'. Received {short_repr(value)}."
                + did_you_mean(value, sorted(available_timezones()))
            ) from None
        return value


class ValidationSettings(StrictModel):
    """How candidates are validated before they are published (defaults for every backbone)."""

    samples: int = Field(8, ge=1, description="Random (or data) samples pushed through source and candidate.")
    batch_size: int = Field(8, ge=1, description="Batch size for the comparison forward passes.")
    atol: float = Field(0.0, ge=0.0, description="Absolute tolerance; 0.0 on the same device and dtype.")
    rtol: float = Field(0.0, ge=0.0, description="Relative tolerance, for cross-device validation.")
    seed: int = Field(0, description="Seed of the random inputs.")
    require_gpu: bool = Field(False, description="Refuse to validate on a worker without a GPU.")
    data: str | None = Field(None, description="Sample data (.npz/.npy, local path or s3:// URI) instead of random inputs.")
    sample_dim: int | None = Field(
        None,
        ge=1,
        description=(
            "Size of the random inputs' unknown dimensions other than the batch; null finds one every "
            "layer accepts by shape inference (64, 128, ... up to 65536; 32, 16, ... 1 when the model "
            "only runs below 64, as a short position embedding does)."
        ),
    )
    deployment: str | None = Field(
        None,
        description=(
            'Run validation as this Prefect deployment ("validate-backbone/gpu", a GPU work pool) '
            "through run_deployment and wait for it; null validates in-process."
        ),
    )
    timeout: Duration = Field(
        6 * 3600.0,
        json_schema_extra={"default": "6h"},  # editors and the README show it as written in a file
        description=(
            "How long a refresh waits for the validation run on `deployment` (30m, 6h or seconds); "
            "past it the backbone fails and nothing is published."
        ),
    )

    @field_validator("deployment")
    @classmethod
    def _check_deployment(cls, value: str | None) -> str | None:
        return check_deployment_name(value)

    @field_validator("data")
    @classmethod
    def _check_data(cls, value: str | None) -> str | None:
        return None if value is None else check_uri_value(value)


class ValidationOverrides(StrictModel):
    """Per-backbone overrides of :class:`ValidationSettings`; unset fields keep the defaults."""

    samples: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=1)
    atol: float | None = Field(None, ge=0.0)
    rtol: float | None = Field(None, ge=0.0)
    seed: int | None = None
    require_gpu: bool | None = None
    data: str | None = None
    sample_dim: int | None = Field(None, ge=1)
    deployment: str | None = None
    timeout: Duration | None = None

    @field_validator("deployment")
    @classmethod
    def _check_deployment(cls, value: str | None) -> str | None:
        return check_deployment_name(value)

    @field_validator("data")
    @classmethod
    def _check_data(cls, value: str | None) -> str | None:
        return None if value is None else check_uri_value(value)


class RetentionSettings(StrictModel):
    """How many committed versions of a backbone are kept after each publish."""

    keep_last: int | None = Field(
        None,
        ge=1,
        description=(
            "After each publish, remove the committed versions beyond the newest N of that backbone "
            "(never one that latest or an alias names); null keeps every version. A failure to apply "
            "it is logged and reported, never fails the publish. `kerascut gc STORE --keep-last N` "
            "does the same by hand."
        ),
    )


class PrepareSettings(StrictModel):
    """Where a refresh prepares each stale backbone: in its own process, or on CPU workers."""

    deployment: str | None = Field(
        None,
        description=(
            'Prepare each stale backbone as a flow run of this Prefect deployment ("prepare-backbone/cpu", '
            "which `kerascut deploy` registers on the CPU pool) through run_deployment, so every worker "
            "of the pool takes its share; at most `concurrency` at a time, and at most the slots of the "
            "global concurrency limit kerascut-<flow>-<deployment> (kerascut-prepare-backbone-cpu) over "
            "all refreshes. null prepares in the refresh's own process (and `kerascut run` without "
            "PREFECT_API_URL always does)."
        ),
    )

    @field_validator("deployment")
    @classmethod
    def _check_deployment(cls, value: str | None) -> str | None:
        return check_deployment_name(value)
