"""Keras's private API is used in one module only: kerascut_core/keras_compat.py.

Every ``.py`` file of kerascut_core is parsed with ``ast`` (nothing is imported). A module other
than the allowed one fails when it reads or writes a private Keras attribute (as an attribute,
or as a string given to ``getattr``/``__dict__``), or imports ``keras.src`` (``import``, ``from``
or an ``import_module("keras.src...")`` string).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import kerascut_core

ROOT = Path(kerascut_core.__file__).parent
ALLOWED = ROOT / "keras_compat.py"

# Private attributes of Keras objects that kerascut_core relies on (see keras_compat's docstring).
PRIVATE = frozenset({
    "_call_context_args",
    "_functional",
    "_inbound_nodes",
    "_inputs_struct",
    "_keras_history",
    "_keras_mask",
    "_nodes_by_depth",
    "_operations",
    "_outbound_nodes",
    "_outputs_struct",
})
_KERAS_SRC = re.compile(r"keras\.src(\.[A-Za-z_]\w*)*")


def _is_keras_src(module: str | None) -> bool:
    return module is not None and (module == "keras.src" or module.startswith("keras.src."))


def violations(source: str) -> list[str]:
    """``line: what`` for each private-Keras access in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        what = None
        if isinstance(node, ast.Attribute):
            if node.attr in PRIVATE:
                what = f"attribute .{node.attr}"
            elif node.attr == "src" and isinstance(node.value, ast.Name) and node.value.id == "keras":
                what = "keras.src"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value in PRIVATE or _KERAS_SRC.fullmatch(node.value):
                what = f"string {node.value!r}"
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if _is_keras_src(a.name)]
            if names:
                what = f"import {', '.join(names)}"
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            if _is_keras_src(node.module):
                what = f"from {node.module} import ..."
            elif node.module == "keras" and any(a.name == "src" for a in node.names):
                what = "from keras import src"
        if what is not None:
            found.append(f"{node.lineno}: {what}")
    return found


def _modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts)


def test_only_the_keras_api_module_touches_private_keras():
    bad = {}
    for path in _modules():
        if path == ALLOWED:
            continue
        found = violations(path.read_text(encoding="utf-8"))
        if found:
            bad[str(path.relative_to(ROOT.parent))] = found
    assert not bad, (
        "Private Keras API outside kerascut_core/keras_compat.py (add a function there, "
        f"with a docstring note, and call it): {bad}"
    )


def test_the_keras_api_module_is_where_the_private_api_is():
    # not vacuous: the allowed module exists and the checker sees what it does
    found = violations(ALLOWED.read_text(encoding="utf-8"))
    assert any("_inbound_nodes" in v for v in found)
    assert any("_nodes_by_depth" in v for v in found)
    assert any("keras.src" in v for v in found)
    assert len(_modules()) > 20


@pytest.mark.parametrize(
    "snippet",
    [
        "op._inbound_nodes",
        "f._nodes_by_depth[0]",
        "t._keras_history.operation",
        "x.__dict__['_outbound_nodes'] = []",
        "getattr(model, '_inputs_struct', None)",
        "from keras.src.ops.node import Node",
        "import keras.src.random",
        "from keras import src",
        "keras.src.models.functional",
        "importlib.import_module('keras.src.random')",
        "def f():\n    from keras.src.random import seed_generator\n",
    ],
)
def test_the_checker_catches(snippet):
    assert violations(snippet)


@pytest.mark.parametrize(
    "snippet",
    [
        "self._cache",
        "from keras import ops",
        '"""Keras keeps nodes in ``_inbound_nodes``; see keras.src.ops.node."""',
        "from kerascut_core import keras_compat\nkeras_compat.inbound_nodes(op)",
    ],
)
def test_the_checker_lets_pass(snippet):
    assert violations(snippet) == []
