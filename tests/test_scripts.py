"""The scripts work from a fresh clone: deployments/setup_work_pools.sh finds the project's
environment (``.venv/bin/prefect`` from the repository root, else ``prefect`` on PATH, else one
error line), and the README runs every command in one convention (the activated ``.venv``).

The script runs in a subprocess with a minimal PATH (no ``.venv/bin``), in ``--dry-run`` mode
and against a stub ``prefect`` that records its arguments (no Prefect server needed).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kerascut_core.pipeline_names import CPU_POOL, GPU_POOL, PREPARE_DEPLOYMENT, prepare_limit_name

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "deployments" / "setup_work_pools.sh"
MINIMAL_PATH = "/usr/bin:/bin"
PREPARE_LIMIT = prepare_limit_name(PREPARE_DEPLOYMENT)


def _clone(tmp: Path, *, venv: bool) -> Path:
    """A checkout's layout: the script, and optionally a .venv/bin/prefect stub that logs."""
    repo = tmp / "clone"
    (repo / "deployments").mkdir(parents=True)
    shutil.copy(SCRIPT, repo / "deployments" / SCRIPT.name)
    if venv:
        _stub(repo / ".venv" / "bin" / "prefect", tmp / "calls.log")
    return repo


def _stub(path: Path, log: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\necho "$0 $*" >> "{log}"\n')
    path.chmod(0o755)
    return path


def _sh(script: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/bash", str(script), *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={"PATH": MINIMAL_PATH, "HOME": str(cwd), **env})


def test_dry_run_finds_the_projects_prefect_from_anywhere(tmp_path: Path) -> None:
    repo = _clone(tmp_path, venv=True)
    out = _sh(repo / "deployments" / SCRIPT.name, "--dry-run", cwd=tmp_path)  # not from the root
    assert out.returncode == 0, out.stderr
    prefect = str(repo / ".venv" / "bin" / "prefect")
    commands = [line for line in out.stdout.splitlines() if not line.startswith("#")]
    assert commands == [
        f"{prefect} work-pool create {CPU_POOL} --type process --overwrite",
        f"{prefect} work-pool create {GPU_POOL} --type process --overwrite",
        f"{prefect} global-concurrency-limit create {PREPARE_LIMIT} --limit 2",
        f"{prefect} work-pool ls",
    ]
    assert not (tmp_path / "calls.log").exists()  # nothing ran
    out = _sh(repo / "deployments" / SCRIPT.name, "--dry-run", "kubernetes", "2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"work-pool create {GPU_POOL} --type kubernetes --base-job-template" in out.stdout
    assert "2 GPU(s)" in out.stdout


def test_the_real_checkout_uses_its_own_venv_with_a_minimal_path(tmp_path: Path) -> None:
    if not (ROOT / ".venv" / "bin" / "prefect").exists():
        pytest.skip("no .venv in this checkout (scripts/setup.sh makes it)")
    out = _sh(SCRIPT, "--dry-run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1].startswith(f"{ROOT / '.venv' / 'bin' / 'prefect'} work-pool create {CPU_POOL}")


def test_without_venv_prefect_on_path_is_used_and_without_either_one_line(tmp_path: Path) -> None:
    repo = _clone(tmp_path, venv=False)
    script = repo / "deployments" / SCRIPT.name
    out = _sh(script, "--dry-run", cwd=repo)
    assert out.returncode == 127 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "prefect not found" in out.stderr and "scripts/setup.sh" in out.stderr
    bin_dir = tmp_path / "bin"
    _stub(bin_dir / "prefect", tmp_path / "calls.log")
    out = _sh(script, "--dry-run", cwd=repo, PATH=f"{bin_dir}:{MINIMAL_PATH}")
    assert out.returncode == 0 and f"{bin_dir / 'prefect'} work-pool create {CPU_POOL}" in out.stdout


def test_a_real_run_calls_prefect_and_needs_the_server(tmp_path: Path) -> None:
    repo = _clone(tmp_path, venv=True)
    script = repo / "deployments" / SCRIPT.name
    out = _sh(script, cwd=repo)
    assert out.returncode != 0 and "PREFECT_API_URL" in out.stderr
    assert not (tmp_path / "calls.log").exists()
    out = _sh(script, "process", cwd=repo, PREFECT_API_URL="http://127.0.0.1:9/api")
    assert out.returncode == 0, out.stderr
    calls = [line.split(" ", 1)[1] for line in (tmp_path / "calls.log").read_text().splitlines()]
    assert calls == [f"work-pool create {CPU_POOL} --type process --overwrite",
                     f"work-pool create {GPU_POOL} --type process --overwrite",
                     f"global-concurrency-limit create {PREPARE_LIMIT} --limit 2", "work-pool ls"]
    out = _sh(script, "--dry-run", cwd=repo, PREPARE_SLOTS="0")
    assert out.returncode == 2 and "PREPARE_SLOTS" in out.stderr
    out = _sh(script, "--dry-run", "lambda", cwd=repo)
    assert out.returncode == 2 and "expected process, docker or kubernetes" in out.stderr


def test_the_readme_uses_one_convention_for_the_environment() -> None:
    """After its first block (which must stay as it is), the README runs commands in the
    activated environment: it says `source .venv/bin/activate` and never mixes in `.venv/bin/...`."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", readme, re.S)
    assert "source .venv/bin/activate" in readme
    assert readme.index("source .venv/bin/activate") < readme.index("```bash", readme.index("## Tutorial"))
    mixed = [line for block in blocks[1:] for line in block.splitlines() if ".venv/bin/" in line]
    assert mixed == []
    commands = [line.split()[0] for block in blocks[1:] for line in block.splitlines()
                if line.strip() and not line.startswith(("#", " "))]
    assert {"kerascut", "prefect"} <= set(commands)
    assert os.path.basename(SCRIPT) in readme
