"""CLI commands: store_cmd (filled in by its issue)."""

from __future__ import annotations

import click

__all__ = ["register"]


def register(app: click.Group) -> None:
    """Add this module's commands to ``app``."""
