"""scripts/gpu_check_jax.sh on a CPU: the dry run (the GPU check's own steps, TensorFlow blocked,
``--cpu-ok``) and its refusals. The GPU run itself needs a JAX+CUDA machine (README, "GPU
workers"); here the GPU path is covered by tests/validation/test_device.py's fake device lists.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu_check_jax.sh"


def _run(*args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def test_the_check_refuses_to_run_without_its_wheels(tmp_path):
    out = _run(env={"KERASCUT_GPU_WHEELS": str(tmp_path / "none")})
    assert out.returncode == 2
    assert out.stderr.strip() == (
        f"error: no wheels in {tmp_path / 'none'}/; run 'bash scripts/gpu_check_jax.sh --download' "
        "where there is internet"
    )


@pytest.mark.extras  # CI's extras slice (jax installed); a subprocess under KERAS_BACKEND=jax
def test_dry_run_cuts_and_validates_on_cpu_without_tensorflow(tmp_path):
    pytest.importorskip("jax")
    out = _run("--dry-run", "--size", "32", "--samples", "2", "--batch-size", "2", "--out", str(tmp_path))
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert "- device: CPU " in out.stdout and "(Keras backend jax " in out.stdout
    assert "kerascut forward / model.predict:" in out.stdout and out.stdout.rstrip().endswith("PASSED")
    summary = json.loads((tmp_path / "gpu_check_jax.json").read_text())
    assert summary["passed"] and summary["max_abs_diff"] == 0.0
    assert summary["device"]["backend"] == "jax" and summary["device"]["kind"] == "cpu"
    assert summary["tensorflow_imported"] is False
    assert set(summary["candidate_items_per_s"]) == {"kerascut forward (jax.jit)", "model.predict"}
    assert summary["validate_throughput"] == []  # kerascut measures throughput on a GPU only


@pytest.mark.extras
def test_the_gpu_run_needs_a_gpu_and_says_so(tmp_path):
    """Without --cpu-ok the check is require_gpu=True: on a CPU it stops at the device check."""
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "scripts/gpu_check_jax.py", "--out", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode != 0
    assert "Expected a GPU because require_gpu=True. Received a machine where JAX sees no GPU" in out.stderr
