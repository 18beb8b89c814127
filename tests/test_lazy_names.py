"""Every package's lazy names (``_LAZY``) are mirrored under ``TYPE_CHECKING``, name for name.

IDEs and mypy do not run ``__getattr__``: without the mirror, ``kc.cut`` is an unknown
attribute to them. The two lists are written by hand side by side, so this test keeps them
equal: the same names, each imported from the module ``_LAZY`` resolves it from.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = [
    "kerascut_core",
    "kerascut_core.pipeline",
    "kerascut_core.surgery",
    "kerascut_core.sources",
    "kerascut_core.validation",
]


def _type_checking_imports(tree: ast.Module) -> dict[str, str]:
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom) and stmt.module:
                    found.update({alias.asname or alias.name: stmt.module for alias in stmt.names})
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_lazy_names_are_mirrored_for_type_checkers(package):
    module = importlib.import_module(package)
    path = Path(module.__file__)
    mirrored = _type_checking_imports(ast.parse(path.read_text()))
    assert mirrored == module._LAZY


@pytest.mark.parametrize("package", PACKAGES)
def test_every_lazy_name_resolves_and_is_public(package):
    module = importlib.import_module(package)
    for name, where in module._LAZY.items():
        assert name in module.__all__, name
        assert hasattr(importlib.import_module(where), name), f"{where} has no {name}"
