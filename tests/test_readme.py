"""The README stays true: its config reference is generated, its test command is CI's."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_config_reference_is_generated_from_the_schema():
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "config_reference.py"), "--check"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_readme_opens_with_the_two_commands_and_ci_runs_the_second():
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    commands = [line for line in first_block.splitlines() if line and not line.startswith("#")]
    assert commands == [
        "bash scripts/setup.sh && .venv/bin/kerascut run deployments/quickstart.yaml",
        'bash scripts/setup.sh && .venv/bin/python -m pytest -m "not slow"',
    ]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/setup.sh" in ci and '.venv/bin/python -m pytest -m "not slow"' in ci
    assert (ROOT / "deployments" / "quickstart.yaml").is_file()
