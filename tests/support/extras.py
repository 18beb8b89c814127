"""Tests that need an optional extra: skip without it, except in CI's extras slice.

``.ci/run`` installs the extras (``scripts/setup.sh --extras``) and runs ``pytest -m extras``
with ``KERASCUT_REQUIRE_EXTRAS=1``: there a missing extra fails the test instead of skipping
it, so the slice cannot pass by running nothing.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

__all__ = ["needs"]


def needs(module: str) -> ModuleType:
    """Import ``module`` for a test, or skip it (fail in the extras slice) when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if os.environ.get("KERASCUT_REQUIRE_EXTRAS") == "1":
            pytest.fail(f"the extras slice needs {module!r}: {exc}", pytrace=False)
        pytest.skip(f"optional extra not installed: {module}")
