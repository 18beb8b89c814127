"""Keep TensorFlow's import-time C++ log lines off the CLI's stderr.

TensorFlow 2.21 prints absl/oneDNN/CPU-feature lines while ``import tensorflow`` runs, whatever
``TF_CPP_MIN_LOG_LEVEL`` says; they would bury the CLI's one-line errors. The CLI installs
:func:`install` once: the first ``import tensorflow`` (wherever it happens, only when it happens)
runs with file descriptor 2 sent to a temporary file, and every line that is not that noise is
written back to stderr afterwards. ``kerascut --debug`` and ``KERASCUT_TF_LOGS=1`` keep them.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import tempfile
import types
from collections.abc import Iterator, Sequence

__all__ = ["install"]

_NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|[IW]\d{4} [\d:.]+\s+\d+ \w+\.cc:\d+\]"
    rb"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.)"
)


@contextlib.contextmanager
def _fd2_filtered() -> Iterator[None]:
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced (tests, notebooks): leave it
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            sink.seek(0)
            kept = [line for line in sink.read().splitlines(keepends=True) if not _NOISE.match(line)]
            if kept:
                sys.stderr.flush()
                os.write(fd, b"".join(kept))


class _QuietTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        name: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            loader = spec.loader
            run = loader.exec_module

            def exec_module(module: types.ModuleType) -> None:
                with _fd2_filtered():
                    run(module)

            loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install() -> None:
    """Filter the first ``import tensorflow`` of this process (a no-op if it already happened)."""
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietTensorFlow) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietTensorFlow())
