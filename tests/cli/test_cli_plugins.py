"""Commands from the ``kerascut.commands`` entry points: ``run`` and ``deploy``, and a broken one.

The core's CLI lists entry-point commands next to its own, loads each only when it is used or
listed, and a plugin that fails to load is listed as unavailable (one line) and fails only its
own command. A fake distribution on PYTHONPATH contributes the test's plugins.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kerascut_core.cli.app import COMMAND_ENTRY_POINTS


@pytest.fixture
def plugins(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    info = site / "fakeplugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[{COMMAND_ENTRY_POINTS}]\n"
        "broken = no_such_module_for_kerascut:command\n"
        "notacommand = json:dumps\n"
        "hello = hello_plugin:hello_command\n"
        "inspect = hello_plugin:hello_command\n"  # a built-in name: the built-in stays
    )
    (site / "hello_plugin.py").write_text(
        "import click\n\n"
        "@click.command('greet')\n"
        "@click.option('--name', default='world')\n"
        "def hello_command(name):\n"
        '    """Say hello."""\n'
        "    click.echo(f'hello {name}')\n"
    )
    return site


def _cli(*args: str, site: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(COLUMNS="200", TF_CPP_MIN_LOG_LEVEL="3")
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return subprocess.run([sys.executable, "-m", "kerascut_core", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def _listed(help_text: str) -> dict[str, str]:
    rows = help_text.split("Commands:")[1].split("\n\n")[0].splitlines()
    return {row.split()[0]: " ".join(row.split()[1:]) for row in rows if row.strip()}


def test_help_lists_run_and_deploy_without_importing_prefect() -> None:
    code = (
        "import sys\nfrom kerascut_core.cli.app import main\nrc = main(['--help'])\n"
        "print('PREFECT', 'prefect' in sys.modules, 'TF', 'tensorflow' in sys.modules)\nsys.exit(rc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "COLUMNS": "200"})
    assert out.returncode == 0, out.stderr
    listed = _listed(out.stdout)
    assert listed["run"] == "Publish the stale backbones of CONFIG now, on this machine."
    assert listed["deploy"].startswith("Register refresh-backbones/cpu")
    assert {"config", "cut", "inspect", "validate", "ls", "pull", "promote", "gc"} <= set(listed)
    assert "PREFECT False TF False" in out.stdout


def test_a_broken_plugin_is_listed_as_unavailable_and_breaks_nothing_else(plugins: Path) -> None:
    out = _cli("--help", site=plugins)
    assert out.returncode == 0 and out.stderr == "", out.stderr
    listed = _listed(out.stdout)
    assert listed["broken"] == "(unavailable: ModuleNotFoundError: No module named 'no_such_module_for_kerascut')"
    assert listed["notacommand"].startswith("(unavailable: TypeError: json:dumps is a function")
    assert listed["hello"] == "Say hello."
    assert listed["inspect"].startswith("List MODEL's layers")
    assert "run" in listed and "deploy" in listed

    out = _cli("broken", "x", "--flag", site=plugins)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: The command 'broken' could not be loaded")
    assert "no_such_module_for_kerascut:command" in out.stderr and "kerascut.commands" in out.stderr

    out = _cli("hello", "--name", "kerascut", site=plugins)
    assert (out.returncode, out.stdout) == (0, "hello kerascut\n"), out.stderr
    assert _cli("hello", "--help", site=plugins).stdout.startswith("Usage: kerascut hello [OPTIONS]")

    out = _cli("config", "schema", site=plugins)  # other commands never load the plugins
    assert out.returncode == 0 and out.stderr == ""


def test_an_unknown_command_is_still_a_usage_error() -> None:
    out = _cli("no-such-command")
    assert out.returncode == 2
    assert out.stderr.startswith("error: No such command 'no-such-command'.")
