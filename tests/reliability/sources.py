"""Small source models and configs for the flow-level harnesses (faults, races, gate, secrets).

``make_sources(dir)`` saves, in a subprocess (so the caller never imports TensorFlow):

- ``tiny_a.keras``, ``tiny_b.keras``, ``tiny_c.keras``: the corpus's residual ``tiny`` model with
  three different seeds (three backbones, three versions);
- ``noisy.keras``: a model whose ``Lambda`` adds a random constant drawn when the graph is
  traced, so the candidate never reproduces the source: validation must fail and the flow
  must publish nothing. It carries code, so it loads only with ``allow_unsafe: true``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["NOISY", "TINY", "backbone", "kerascut", "make_sources", "shared_sources"]

REPO = Path(__file__).resolve().parents[2]
TINY = ("tiny_a", "tiny_b", "tiny_c")
NOISY = "noisy"

_SCRIPT = r"""
import sys
from pathlib import Path
import keras
from tests.bad_inputs.make_corpus import _tiny

out = Path(sys.argv[1])
for seed, name in enumerate(("tiny_a", "tiny_b", "tiny_c")):
    keras.utils.set_random_seed(seed)
    _tiny(keras).save(out / f"{name}.keras")
    keras.backend.clear_session()
inputs = keras.Input((16, 16, 3), name="image")
x = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inputs)
x = keras.layers.Lambda(lambda t: t + __import__("numpy").random.rand(), name="noise")(x)
x = keras.layers.Conv2D(4, 3, padding="same", name="c3")(x)
keras.Model(inputs, x, name="noisy").save(out / "noisy.keras")
"""


def make_sources(out: str | Path) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-c", _SCRIPT, str(out)], cwd=REPO, env=env, check=True,
                   capture_output=True, timeout=300)
    return out


_SHARED: list[Path] = []


def shared_sources() -> Path:
    """:func:`make_sources` once per process, in a temporary directory removed at exit (read only:
    for tests that only read the sources)."""
    if not _SHARED:
        import atexit
        import shutil
        import tempfile

        tmp = Path(tempfile.mkdtemp(prefix="kerascut-sources-"))
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        _SHARED.append(make_sources(tmp))
    return _SHARED[0]


def backbone(name: str, source: str, **extra: Any) -> dict[str, Any]:
    """A config entry cutting a tiny source at ``c3``."""
    return {"name": name, "source": source, "end": "c3", **extra}


def kerascut(argv: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m kerascut_core ARGV`` like a user would (the working tree on PYTHONPATH)."""
    full = dict(env, PYTHONPATH=str(REPO), COLUMNS="200", NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "kerascut_core", *argv], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=timeout)
