"""The store layout has one owner: ``kerascut_core/publishing/layout.py`` (issue 11).

Every other module of the core, the tasks and the flows builds keys with it; none spells a store
object's name in code (docstrings may describe the layout). And the names the package exports
stay functions whatever is imported first.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kerascut_core.publishing import layout

ROOT = Path(__file__).resolve().parents[2]
OWNER = ROOT / "kerascut_core" / "publishing" / "layout.py"
#: the names only the store has (``model.keras`` and ``saved_model`` are also format names)
STORE_NAMES = (layout.MANIFEST, layout.LATEST, layout.STAGING, layout.CLAIM, layout.STAGED_INDEX,
               layout.REPORT, layout.MARKER)


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


#: a store name as a path segment (``kerascut_core.publishing.staging`` is a module, not a key)
PATTERNS = {name: re.compile(rf"(?<![\w.]){re.escape(name)}(?!\w)") for name in STORE_NAMES}


def spelled_keys(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    skip = _docstrings(tree)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            for name, pattern in PATTERNS.items():
                if pattern.search(node.value):
                    hits.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name!r} in {node.value[:60]!r}")
    return hits


@pytest.mark.parametrize("folder", ["kerascut_core", "flows", "tasks"])
def test_only_the_layout_spells_store_keys(folder: str) -> None:
    files = [p for p in sorted((ROOT / folder).rglob("*.py")) if p != OWNER and "__pycache__" not in p.parts]
    assert files
    assert [hit for p in files for hit in spelled_keys(p)] == []


def test_the_checker_sees_a_spelled_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        '"""Reads <name>/latest.json."""\nimport kerascut_core.publishing.staging\n'
        'def f(name):\n    return f"{name}/latest.json", ".staging/" + name\n'
    )
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    assert [hit.split(": ", 1)[1].split(" in ")[0] for hit in spelled_keys(bad)] == ["'latest.json'", "'.staging'"]


def test_the_keys() -> None:
    assert layout.version_dir("mnv2", "v1") == "mnv2/v1"
    assert layout.manifest_key("mnv2", "v1") == "mnv2/v1/manifest.json"
    assert layout.latest_key("mnv2") == "mnv2/latest.json"
    assert layout.staging_dir("mnv2", "v1") == ".staging/mnv2/v1"
    assert layout.claim_key("mnv2", "v1") == ".staging/mnv2/v1/claim.json"
    assert layout.run_prefix("mnv2", "v1", "r1") == ".staging/mnv2/v1/r1"
    assert layout.run_of(".staging/mnv2/v1/r1/saved_model/x.pb") == ".staging/mnv2/v1/r1"
    assert layout.run_of(".staging/mnv2/v1/r1") == ".staging/mnv2/v1/r1"
    assert layout.run_of(".staging/mnv2/v1") is None
    assert layout.run_of("mnv2/v1/r1/model.keras") is None
    assert layout.artifact_key("mnv2", "v1", "saved_model/x.pb") == "mnv2/v1/saved_model/x.pb"
    assert layout.manifest_ref("v1") == "v1/manifest.json"


def test_package_names_stay_functions_whatever_is_imported_first() -> None:
    code = (
        "import kerascut_core.publishing.garbage, kerascut_core.publishing; "
        "import kerascut_core as kc, kerascut_core.publishing as p; import types; "
        "print(not any(isinstance(f, types.ModuleType) for f in (kc.gc, p.gc, kc.pull, p.pull, kc.promote)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
