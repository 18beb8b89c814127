"""The ``kerascut`` command line. Each command group lives in its own module with ``register(app)``."""

from __future__ import annotations

from kerascut_core.cli.app import app, main

__all__ = ["app", "main"]
