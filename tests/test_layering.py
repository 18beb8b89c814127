"""The layers stay apart: the core knows nothing of Prefect, tasks know nothing of flows.

Every ``.py`` file is parsed with ``ast``; every ``import``/``from ... import`` counts, also
inside functions, and so do ``importlib.import_module("...")`` / ``__import__("...")`` calls
with a literal name and string constants that spell a module path (``"prefect.settings"``,
``"kerascut.flows.cli:run_command"``). Relative imports are resolved against the package the
file installs as (``flows/`` is ``kerascut.flows``, ``tasks/`` is ``kerascut.tasks``).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Folder -> the package it installs as (setup.py's ROOTS).
PACKAGES = {"kerascut_core": "kerascut_core", "flows": "kerascut.flows", "tasks": "kerascut.tasks"}

CORE_FORBIDDEN = ("prefect", "prefect_aws", "flows", "tasks", "kerascut.flows", "kerascut.tasks")
TASKS_FORBIDDEN = ("flows", "kerascut.flows")
#: The repository's folders were top-level packages once; nothing may import them that way.
OLD_NAMES = ("flows", "tasks")

_MODULE_STRING = re.compile(
    r"^(?:(?:prefect|prefect_aws|flows|tasks)(?:\.[A-Za-z_]\w*)+|kerascut\.(?:flows|tasks)(?:\.[A-Za-z_]\w*)*)"
    r"(?::[A-Za-z_]\w*)?$"
)


def _files(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def _package_of(path: Path) -> str:
    """The dotted package that ``path`` (a module) lives in once installed."""
    rel = path.relative_to(ROOT)
    folder, *inner = rel.parts[:-1]
    base = PACKAGES.get(folder, folder)
    return ".".join([base, *inner])


def _resolve(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
    return ".".join([*base, *([node.module] if node.module else [])])


def imported_names(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, dotted name)`` for everything ``path`` imports or names as a module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _package_of(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(node, package)
            yield node.lineno, module
            for alias in node.names:  # `from kerascut import flows` imports kerascut.flows
                yield node.lineno, f"{module}.{alias.name}"
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    yield node.lineno, arg.value
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_STRING.match(node.value)
        ):
            yield node.lineno, node.value.split(":")[0]


def _matches(name: str, forbidden: tuple[str, ...]) -> bool:
    return any(name == f or name.startswith(f + ".") for f in forbidden)


def _violations(folders: list[str], forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for folder in folders:
        for path in _files(folder):
            for line, name in imported_names(path):
                if _matches(name, forbidden):
                    found.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    return found


def test_the_core_imports_nothing_of_prefect_or_the_flows() -> None:
    assert _files("kerascut_core"), "no core modules found"
    assert _violations(["kerascut_core"], CORE_FORBIDDEN) == []


def test_tasks_never_import_flows() -> None:
    assert _files("tasks"), "no task modules found"
    assert _violations(["tasks"], TASKS_FORBIDDEN) == []


@pytest.mark.parametrize("folder", ["kerascut_core", "flows", "tasks", "tests", "benchmarks", "scripts"])
def test_nothing_imports_flows_or_tasks_as_top_level_packages(folder: str) -> None:
    """With the repository root on sys.path ``import flows`` still works; installed it does not."""
    found = []
    for path in _files(folder):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            found += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names if _matches(n, OLD_NAMES)]
    assert found == []


def test_the_checker_sees_every_kind_of_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A planted module with each form of import is caught (guards the checker itself)."""
    core = tmp_path / "kerascut_core"
    core.mkdir()
    (core / "bad.py").write_text(
        "import importlib\n"
        "from . import errors\n"
        "def f():\n"
        "    import prefect.settings\n"
        "    from prefect_aws import AwsCredentials\n"
        "    from kerascut import flows\n"
        "    from kerascut.tasks.cut import cut_backbone\n"
        "    importlib.import_module('flows.cli')\n"
        "    __import__('tasks')\n"
        "    return 'kerascut.flows.cli:run_command'\n"
    )
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "bad.py").write_text("from ..flows import cli\nfrom .. import flows\nfrom . import _common\n")
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    core_hits = {hit.split(": ", 1)[1] for hit in _violations(["kerascut_core"], CORE_FORBIDDEN)}
    assert core_hits == {
        "prefect.settings", "prefect_aws", "prefect_aws.AwsCredentials", "kerascut.flows",
        "kerascut.tasks.cut", "kerascut.tasks.cut.cut_backbone", "flows.cli", "tasks",
        "kerascut.flows.cli",
    }
    task_hits = {hit.split(": ", 1)[1] for hit in _violations(["tasks"], TASKS_FORBIDDEN)}
    assert task_hits == {"kerascut.flows", "kerascut.flows.cli"}
