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
    (tasks / "bad.py").write_text("from ..flows import cli\nfrom .. import flows\nfrom . import common\n")
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    core_hits = {hit.split(": ", 1)[1] for hit in _violations(["kerascut_core"], CORE_FORBIDDEN)}
    assert core_hits == {
        "prefect.settings", "prefect_aws", "prefect_aws.AwsCredentials", "kerascut.flows",
        "kerascut.tasks.cut", "kerascut.tasks.cut.cut_backbone", "flows.cli", "tasks",
        "kerascut.flows.cli",
    }
    task_hits = {hit.split(": ", 1)[1] for hit in _violations(["tasks"], TASKS_FORBIDDEN)}
    assert task_hits == {"kerascut.flows", "kerascut.flows.cli"}


# ---------------------------------------------------------------------------------------------
# One way down: the layers of kerascut_core, no cycles, no private module used from outside.

#: The layers of kerascut_core, bottom first. Each top-level unit (module or subpackage) is in
#: exactly one; a module imports only from its own layer or below (same-layer imports must not
#: form a cycle). ``kerascut_core/__init__`` is the facade over all of them.
LAYERS: tuple[tuple[str, ...], ...] = (
    # base: errors, URIs, names, text, file names, Keras compatibility, S3 client, events
    ("errors", "uris", "_names", "text", "formatting", "_lazy", "_version", "durations", "extras", "installed",
     "artifacts", "keras_compat", "safe_fs", "transient", "aws", "events", "pipeline_names"),
    ("stores", "surgery", "sources", "config"),
    ("validation",),
    ("publishing",),  # the store protocol and the consumer API
    ("catalog",),  # the static site of a store, read through publishing
    ("pipeline",),  # the steps the tasks wrap: the only place that combines all of the above
    ("cli",),
    ("__main__", "__init__"),
)
LAYER_OF = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def _core_modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of kerascut_core (packages as their name)."""
    found = {}
    for path in _files("kerascut_core"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _runtime_imports(path: Path, modules: set[str], *, type_checking: bool) -> Iterator[tuple[int, str]]:
    """``(line, module)`` of kerascut_core imported by ``path``, function-local ones included.

    ``from pkg import mod`` counts as an import of ``pkg.mod`` alone (not of ``pkg``), the way
    Python runs it when ``mod`` is a submodule. ``type_checking=False`` skips the bodies of
    ``if TYPE_CHECKING:`` (they never run, so they cannot make an import cycle)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped: set[int] = set()
    if not type_checking:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
                skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    package = _package_of(path)
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _resolve(node, package)
            subs = [f"{module}.{alias.name}" for alias in node.names if f"{module}.{alias.name}" in modules]
            yield from ((node.lineno, sub) for sub in subs)
            if len(subs) < len(node.names):
                yield node.lineno, module
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    yield node.lineno, arg.value


def _owner(name: str, modules: set[str]) -> str | None:
    """The kerascut_core module ``name`` is (or is an attribute of), else None."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _unit(module: str) -> str:
    """The top-level unit of a kerascut_core module: ``kerascut_core.publishing.x`` -> ``publishing``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _edges(*, type_checking: bool) -> dict[str, set[tuple[str, int]]]:
    modules = _core_modules()
    names = set(modules)
    edges: dict[str, set[tuple[str, int]]] = {}
    for module, path in modules.items():
        found = set()
        for line, name in _runtime_imports(path, names, type_checking=type_checking):
            target = _owner(name, names) if name.startswith("kerascut_core") else None
            if target is not None and target != module:
                found.add((target, line))
        edges[module] = found
    return edges


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def layer_violations() -> list[str]:
    """Every import from a higher layer, with its file and line."""
    found = []
    for module, targets in _edges(type_checking=True).items():
        here = LAYER_OF[_unit(module)]
        for target, line in sorted(targets):
            there = LAYER_OF[_unit(target)]
            if there > here:
                found.append(f"{module}:{line} imports {target} (layer {there} above {here})")
    return found


def _our_modules(folders: tuple[str, ...]) -> set[str]:
    """Installed dotted names of every module and package in ``folders``."""
    found = set()
    for folder in folders:
        for path in _files(folder):
            package = _package_of(path)
            found.add(package if path.name == "__init__.py" else f"{package}.{path.stem}")
    return found


def private_violations(folders: tuple[str, ...] = ("kerascut_core", "tasks", "flows")) -> list[str]:
    """Imports of one of our ``_modules`` from outside the package that holds it (a private
    *name* such as ``base._CHUNK`` is the module's own business, not this check's)."""
    ours = _our_modules(("kerascut_core", "tasks", "flows"))
    found = []
    for folder in folders:
        for path in _files(folder):
            importer = _package_of(path)
            for line, name in imported_names(path):
                module = name
                while module and module not in ours:
                    module = module.rpartition(".")[0]
                private = [i for i, part in enumerate(module.split(".")) if part.startswith("_") and not part.startswith("__")]
                if module and private:
                    home = ".".join(module.split(".")[: private[0]])
                    if not (importer == home or importer.startswith(home + ".")):
                        found.append(f"{path.relative_to(ROOT)}:{line}: {module} (private to {home})")
    return sorted(set(found))


def test_every_unit_of_the_core_has_a_layer() -> None:
    units = {_unit(m) for m in _core_modules()}
    assert units - set(LAYER_OF) == set(), "add each new module or subpackage to LAYERS"
    assert set(LAYER_OF) - units == set(), "LAYERS names a unit that no longer exists"


def test_no_import_from_a_higher_layer() -> None:
    assert layer_violations() == []


def test_no_import_cycle_between_modules() -> None:
    graph = {m: {t for t, _ in targets} for m, targets in _edges(type_checking=False).items()}
    assert _cycles(graph) == []


def test_no_import_cycle_between_subpackages() -> None:
    graph: dict[str, set[str]] = {}
    for module, targets in _edges(type_checking=False).items():
        for target, _ in targets:
            if _unit(module) != _unit(target) and _unit(module) != "__init__":
                graph.setdefault(_unit(module), set()).add(_unit(target))
    assert _cycles(graph) == []


def test_no_private_module_is_imported_from_outside_its_package() -> None:
    assert private_violations() == []


def test_publishing_keeps_the_pipeline_names_only_as_lazy_aliases() -> None:
    """``kerascut_core.publishing`` still resolves the names that moved to ``pipeline``."""
    import kerascut_core.pipeline as pipeline
    import kerascut_core.publishing as publishing

    for name, module in publishing._MOVED.items():
        assert module.startswith("kerascut_core.pipeline.")
        assert getattr(publishing, name) is getattr(pipeline, name)


def test_the_layer_checks_catch_what_they_promise(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Planted modules: an upward import (function-local), a cycle, a private cross-package import."""
    core = tmp_path / "kerascut_core"
    for folder in ("stores", "publishing", "sources"):
        (core / folder).mkdir(parents=True)
        (core / folder / "__init__.py").write_text("")
    (core / "__init__.py").write_text("")
    (core / "errors.py").write_text("")
    (core / "stores" / "_client.py").write_text("")
    (core / "stores" / "a.py").write_text("def f():\n    from kerascut_core.publishing import b\n")
    (core / "publishing" / "b.py").write_text("from kerascut_core.publishing import c\n")
    (core / "publishing" / "c.py").write_text("def g():\n    import kerascut_core.publishing.b\n")
    (core / "sources" / "d.py").write_text("from kerascut_core.stores import _client\n")
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    assert [v.split(" imports ")[0] for v in layer_violations()] == ["kerascut_core.stores.a:2"]
    graph = {m: {t for t, _ in targets} for m, targets in _edges(type_checking=False).items()}
    assert _cycles(graph) == [["kerascut_core.publishing.b", "kerascut_core.publishing.c"]]
    assert [v.split(": ", 1)[1] for v in private_violations(("kerascut_core",))] == [
        "kerascut_core.stores._client (private to kerascut_core.stores)"
    ]


#: Test folders that mirror no package: shared helpers and harnesses, not tests of one unit.
TEST_SUPPORT_FOLDERS = {"fixtures", "support", "reliability", "bad_inputs"}


def test_the_tests_mirror_the_packages() -> None:
    """Every subpackage of the core, and ``tasks``/``flows``, has its test folder, every test
    folder names a package (or is a support folder), and only project-wide tests (layering,
    packaging, README, the base modules) sit at the top of ``tests/``."""
    packages = {p.name for p in (ROOT / "kerascut_core").iterdir() if (p / "__init__.py").is_file()}
    packages |= {"tasks", "flows"}
    folders = {p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert packages - folders == set(), f"no tests/<package>/ for {sorted(packages - folders)}"
    stray = folders - packages - TEST_SUPPORT_FOLDERS
    assert stray == set(), f"tests/ folders that mirror no package: {sorted(stray)}"
    top = sorted(p.name for p in (ROOT / "tests").glob("*.py") if p.name not in ("__init__.py", "conftest.py"))
    assert all(name.startswith("test_") for name in top), f"helper modules belong in tests/support/: {top}"
