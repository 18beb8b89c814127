"""The ``kerascut`` CLI for tests: in this process by default, in a subprocess where it must be.

Starting ``python -m kerascut_core`` costs 2-14 s on these machines (most of it importing
TensorFlow), so a test that only needs the command's exit code and output runs it here, through
the same :func:`kerascut_core.cli.app.main` the console script calls, with Click's test
isolation (its own stdin/stdout/stderr and environment) and the working directory set.
``process=True`` keeps a real process for what only a process can prove: the installed
script's exit code, what a command does *not* import, signals, a fresh interpreter's state.

    out = kerascut("ls", store, env={"KERASCUT_CACHE_DIR": str(cache)})
    assert out.returncode == 0 and "mnv2" in out.stdout
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]

__all__ = ["CliResult", "kerascut"]


@dataclass
class CliResult:
    """What a command left: like ``subprocess.CompletedProcess`` (``args``, ``returncode``,
    ``stdout``, ``stderr``; bytes when ``text=False``)."""

    args: list[str]
    returncode: int
    stdout: str | bytes
    stderr: str | bytes


@contextlib.contextmanager
def _cwd(path: str | os.PathLike[str] | None) -> Iterator[None]:
    if path is None:
        yield
        return
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def kerascut(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    input: str | bytes | None = None,
    text: bool = True,
    timeout: float = 300,
    process: bool = False,
) -> CliResult | subprocess.CompletedProcess:
    """Run ``kerascut ARGS``; ``env`` adds to (or, with a value of ``None``, removes from) this
    process's environment for the call."""
    argv = [str(a) for a in args]
    if process:
        full = {**os.environ, **{k: v for k, v in (env or {}).items() if v is not None}}
        for key in [k for k, v in (env or {}).items() if v is None]:
            full.pop(key, None)
        full.setdefault("PYTHONPATH", str(REPO))
        return subprocess.run([sys.executable, "-m", "kerascut_core", *argv], capture_output=True, text=text,
                              timeout=timeout, env=full, cwd=cwd, input=input)
    from kerascut_core.cli.app import main

    runner = CliRunner()
    with runner.isolation(input=input, env=env) as (out, err, _), _cwd(cwd):
        code = main(argv)
        sys.stdout.flush()
        sys.stderr.flush()
        stdout, stderr = out.getvalue(), err.getvalue()
    if text:
        return CliResult(argv, code, stdout.decode(errors="replace"), stderr.decode(errors="replace"))
    return CliResult(argv, code, stdout, stderr)
