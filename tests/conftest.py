"""Shared pytest setup. Fixtures live in ``tests/fixtures/`` as plugins, one file per area."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Tests never reach the Prefect server of the machine's user (kerascut emits events wherever an
# API is configured): a fresh PREFECT_HOME (profiles, the embedded API's database) for the
# session, and no API from the environment. Tests that need an API start one
# (tests/fixtures/prefect.py) and pass it on explicitly.
if os.environ.get("KERASCUT_TEST_KEEP_PREFECT_ENV") != "1":
    _prefect_home = tempfile.mkdtemp(prefix="kerascut-tests-prefect-")
    atexit.register(shutil.rmtree, _prefect_home, ignore_errors=True)
    os.environ["PREFECT_HOME"] = _prefect_home
    for _key in ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILE"):
        os.environ.pop(_key, None)
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

pytest_plugins = [
    "tests.fixtures.models",
    "tests.fixtures.s3",
    "tests.fixtures.stores",
    "tests.fixtures.prefect",
]
