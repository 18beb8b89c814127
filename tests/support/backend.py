"""Which Keras backend the tests run on, and the mark for tests that only hold on TensorFlow.

``tests/conftest.py`` defaults ``KERAS_BACKEND`` to ``tensorflow``; CI's JAX slice sets it to
``jax`` and runs the tests marked ``jax`` (``pytest -m "jax and not slow"``). A test of a marked
module that only holds on TensorFlow (a SavedModel, TensorFlow's own devices) is decorated with
:data:`tensorflow_only` and skips there with the reason.
"""

from __future__ import annotations

import os

import pytest

__all__ = ["BACKEND", "tensorflow_only"]

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")

tensorflow_only = pytest.mark.skipif(
    BACKEND != "tensorflow",
    reason=f"TensorFlow backend only (a SavedModel is not exact from {BACKEND}: surgery/backends.py)",
)
