"""Lazy public names for a package: resolved from their defining module on first access.

Packages re-export their API without importing what it needs (TensorFlow, Keras, boto3) until
a name is used (PEP 562)::

    __getattr__, __dir__ = lazy_exports(__name__, {"cut": "kerascut_core.surgery.rebuild"}, globals())

    >>> getattr_, dir_ = lazy_exports("demo", {"sqrt": "math"}, namespace := {})
    >>> getattr_("sqrt")(9.0), "sqrt" in namespace, "sqrt" in dir_()
    (3.0, True, True)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, table: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``table`` maps a public name to its module."""

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # the next access skips this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
