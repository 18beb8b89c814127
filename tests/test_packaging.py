"""The distribution: its wheel's top level is ``kerascut`` and ``kerascut_core`` only.

The repository's ``flows/`` and ``tasks/`` folders install as ``kerascut.flows`` and
``kerascut.tasks`` (setup.py's ``package_dir``), so a user's project with its own
``flows`` and ``tasks`` packages imports both its own and kerascut's, from the editable install
(``scripts/setup.sh``) as from a built wheel. The wheel is built once, from a copy of the
sources (so a stale ``build/`` in the checkout cannot leak into it), without build isolation.
"""

from __future__ import annotations

import ast
import configparser
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from kerascut_core import pipeline_names

ROOT = Path(__file__).resolve().parents[1]

#: Installed package -> the folder it is built from (setup.py's ROOTS).
ROOTS = {"kerascut": "src/kerascut", "kerascut.flows": "flows", "kerascut.tasks": "tasks",
         "kerascut_core": "kerascut_core"}


def _clean_env(**extra: str) -> dict[str, str]:
    """This interpreter's environment without the repository on PYTHONPATH, as a user has it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src-copy"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for folder in ("src", "kerascut_core", "flows", "tasks"):
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(work / "dist"), str(src)],
        capture_output=True, text=True, timeout=300, env=_clean_env(),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    (built,) = (work / "dist").glob("kerascut-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_site(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel installed into its own folder (a pure wheel installs by unpacking)."""
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    return site


def _dist_info(zf: zipfile.ZipFile, name: str) -> str:
    (path,) = [n for n in zf.namelist() if n.endswith(f".dist-info/{name}")]
    return zf.read(path).decode()


def test_the_wheel_top_level_is_kerascut_and_kerascut_core_only(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        top = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
        assert top == {"kerascut", "kerascut_core"}
        assert set(_dist_info(zf, "top_level.txt").split()) == {"kerascut", "kerascut_core"}
    assert "kerascut/__init__.py" in names
    assert "kerascut/flows/refresh_backbones.py" in names and "kerascut/tasks/cut.py" in names
    assert "kerascut_core/schemas/config.schema.json" in names and "kerascut_core/py.typed" in names


def test_setup_py_maps_the_folders_to_their_installed_names() -> None:
    tree = ast.parse((ROOT / "setup.py").read_text())
    (roots,) = [
        ast.literal_eval(node.value) for node in tree.body
        if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["ROOTS"]
    ]
    assert roots == ROOTS


def test_the_wheel_holds_every_module_of_the_source_folders(wheel: Path) -> None:
    """Subpackages are found by setup.py: a new one lands in the wheel without a config change."""
    expected = set()
    for package, folder in ROOTS.items():
        for path in (ROOT / folder).rglob("*.py"):
            if "__pycache__" not in path.parts:
                rel = path.relative_to(ROOT / folder)
                expected.add("/".join([*package.split("."), *rel.parts]))
    with zipfile.ZipFile(wheel) as zf:
        modules = {n for n in zf.namelist() if n.endswith(".py")}
    assert sorted(expected - modules) == []
    assert sorted(modules - expected) == []


def test_the_wheel_registers_the_cli_and_its_prefect_commands(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        parser = configparser.ConfigParser()
        parser.read_string(_dist_info(zf, "entry_points.txt"))
    assert dict(parser["console_scripts"]) == {"kerascut": "kerascut_core.cli.app:main"}
    assert dict(parser["kerascut.commands"]) == {
        "run": "kerascut.flows.cli:run_command",
        "deploy": "kerascut.flows.cli:deploy_command",
    }


def _user_project(root: Path) -> Path:
    """A user's project with its own ``flows`` and ``tasks`` packages that import each other."""
    project = root / "user-project"
    (project / "flows").mkdir(parents=True)
    (project / "tasks").mkdir()
    (project / "flows" / "__init__.py").write_text('"""The user\'s flows."""\n')
    (project / "flows" / "train.py").write_text("from tasks.prep import prep\n\nTRAIN = 'user-train'\n")
    (project / "tasks" / "__init__.py").write_text('"""The user\'s tasks."""\n')
    (project / "tasks" / "prep.py").write_text("def prep():\n    return 'user-prep'\n")
    return project


_IMPORT_BOTH = """
import sys
import flows.train, tasks.prep
import kerascut.flows.refresh_backbones, kerascut.tasks.cut
import kerascut, kerascut.flows, kerascut.tasks
assert flows.train.TRAIN == "user-train" and tasks.prep.prep() == "user-prep"
assert kerascut.flows.refresh_backbones.refresh_backbones.name == "refresh-backbones"
assert callable(kerascut.tasks.cut.cut_backbone)
assert "tensorflow" not in sys.modules, "importing the flows imported TensorFlow"
print(flows.__file__)
print(tasks.__file__)
print(kerascut.__file__)
print(kerascut.flows.__file__)
print(kerascut.tasks.__file__)
"""


def _run(code: str, cwd: Path, env: dict[str, str]) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout.split()


def test_a_user_project_with_its_own_flows_and_tasks_imports_kerascut_too(tmp_path: Path) -> None:
    """With the editable install: the user's packages and kerascut's side by side."""
    project = _user_project(tmp_path)
    user_flows, user_tasks, kc, kc_flows, kc_tasks = _run(_IMPORT_BOTH, project, _clean_env())
    assert Path(user_flows) == project / "flows" / "__init__.py"
    assert Path(user_tasks) == project / "tasks" / "__init__.py"
    assert Path(kc) == ROOT / "src" / "kerascut" / "__init__.py"
    assert Path(kc_flows) == ROOT / "flows" / "__init__.py"
    assert Path(kc_tasks) == ROOT / "tasks" / "__init__.py"


def test_the_editable_install_puts_no_flows_or_tasks_on_the_top_level(tmp_path: Path) -> None:
    code = (
        "import importlib.util\n"
        "print([n for n in ('flows', 'tasks') if importlib.util.find_spec(n) is not None])\n"
    )
    assert _run(code, tmp_path, _clean_env()) == ["[]"]


@pytest.mark.parametrize("where", ["user project", "repository root"])
def test_the_built_wheel_imports_from_a_user_project_and_from_the_repository_root(
    wheel_site: Path, tmp_path: Path, where: str
) -> None:
    """The wheel's packages come first on sys.path: its ``kerascut`` is the one imported."""
    project = _user_project(tmp_path)
    env = _clean_env(PYTHONPATH=str(wheel_site))
    if where == "user project":
        paths = _run(_IMPORT_BOTH, project, env)
        assert Path(paths[0]) == project / "flows" / "__init__.py"
        kc, kc_flows, kc_tasks = paths[2:]
    else:  # the root's own flows/ and tasks/ are top-level there; kerascut.* is the wheel's
        code = "import kerascut.flows.cli, kerascut.tasks.cut, kerascut\n" + "".join(
            f"print({m}.__file__)\n" for m in ("kerascut", "kerascut.flows", "kerascut.tasks")
        )
        kc, kc_flows, kc_tasks = _run(code, ROOT, env)
    assert Path(kc) == wheel_site / "kerascut" / "__init__.py"
    assert Path(kc_flows) == wheel_site / "kerascut" / "flows" / "__init__.py"
    assert Path(kc_tasks) == wheel_site / "kerascut" / "tasks" / "__init__.py"


def test_the_built_wheel_cli_lists_run_and_deploy(wheel_site: Path, tmp_path: Path) -> None:
    env = _clean_env(PYTHONPATH=str(wheel_site), COLUMNS="200")
    code = (
        "import sys\n"
        "from kerascut_core.cli.app import main\n"
        "rc = main(['--help'])\n"
        "import kerascut.flows.cli\n"
        "print('FROM', kerascut.flows.cli.__file__, 'PREFECT', 'prefect' in sys.modules)\n"
        "sys.exit(rc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    commands = [line.split()[0] for line in out.stdout.split("Commands:")[1].splitlines() if line.startswith("  ")]
    assert {"run", "deploy", "inspect", "cut", "validate", "config"} <= set(commands)
    assert f"FROM {wheel_site / 'kerascut' / 'flows' / 'cli.py'} PREFECT False" in out.stdout
    assert out.stderr == ""


def test_prefect_yaml_names_the_installed_flows_pools_and_deployments() -> None:
    """deployments/prefect.yaml agrees with kerascut_core.pipeline_names and imports."""
    from prefect.flows import load_flow_from_entrypoint

    config = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    declared = {}
    for deployment in config["deployments"]:
        flow = load_flow_from_entrypoint(deployment["entrypoint"])
        assert deployment["entrypoint"].startswith("kerascut.flows.")
        declared[f"{flow.name}/{deployment['name']}"] = deployment["work_pool"]["name"]
    assert declared == {
        pipeline_names.REFRESH_DEPLOYMENT: pipeline_names.CPU_POOL,
        pipeline_names.PREPARE_DEPLOYMENT: pipeline_names.CPU_POOL,
        pipeline_names.VALIDATE_DEPLOYMENT: pipeline_names.GPU_POOL,
    }


def test_kerascut_deploy_registers_the_flows_by_their_installed_module_path() -> None:
    from prefect.deployments.runner import EntrypointType

    from kerascut.flows.refresh_backbones import refresh_backbones
    from kerascut.flows.validate_backbone import validate_backbone

    for flow, module in ((refresh_backbones, "refresh_backbones"), (validate_backbone, "validate_backbone")):
        deployment = flow.to_deployment(name="check", entrypoint_type=EntrypointType.MODULE_PATH)
        assert deployment.entrypoint == f"kerascut.flows.{module}.{module}"
