"""Keras backends: which export formats a backend can produce, and what a manifest's backend means.

kerascut runs on the TensorFlow backend (the default) and on JAX (``KERAS_BACKEND=jax``): a
cut is the same graph with the same weights either way, and ``.keras`` files are backend-neutral.
Exports differ, because Keras exports each backend its own way:

- ``keras``: every backend;
- ``saved_model``: TensorFlow only. Keras exports a JAX model through ``jax2tf`` (with TensorFlow
  installed), but the SavedModel then runs TensorFlow's kernels, which differ from JAX's by
  float32 round-off (6e-8 on a tiny residual model): it cannot be proven exact against the
  candidate, so a JAX worker neither exports nor checks it;
- ``onnx``: kerascut exports and validates ONNX through tf2onnx, on the TensorFlow backend only
  (Keras's JAX path goes through ``jax2onnx``, which kerascut neither pins nor validates);
- ``litert``: TensorFlow only (Keras's own LiteRT exporter refuses the JAX backend).

:func:`export_supported` answers for one format and backend: ``None`` when it works, else the
one-line reason, which names the fix.

**A version is valid on every backend.** The version (a content address, see
:mod:`kerascut_core.publishing.versioning`) is computed from the source, the cut and the weights,
not from the backend, and the manifest records the backend it was built and validated on
(``software.keras_backend``). Exactness (max abs diff 0) is proven on that backend, on the
validation device; on another backend the same graph computes the same function through other
kernels, so a consumer there gets the published numbers within float32 round-off (of the order
of 1e-6 relative, measured in ``tests/validation/test_jax_backend.py``), not bit for bit.
:func:`cross_backend_note` is the one line a consumer is shown when the two differ.

    >>> export_supported("saved_model", "tensorflow") is None
    True
    >>> print(export_supported("litert", "jax"))  # doctest: +ELLIPSIS
    Cannot export format 'litert' on the Keras backend 'jax': ...
    >>> print(cross_backend_note("tensorflow", "jax"))  # doctest: +ELLIPSIS
    built and validated exactly on Keras backend 'tensorflow'; running on 'jax' ...
    >>> cross_backend_note("jax", "jax") is None
    True
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from kerascut_core.errors import CutError

__all__ = ["SUPPORTED_BACKENDS", "cross_backend_note", "export_supported", "importable", "require_export"]

#: Backends kerascut is tested on (``torch`` is documented in the README, not supported yet).
SUPPORTED_BACKENDS = ("tensorflow", "jax")

_FIX = "export it from a worker with KERAS_BACKEND=tensorflow, or drop the format from `formats:`"


def export_supported(fmt: str, backend: str, *, action: str = "export") -> str | None:
    """``None`` when the Keras backend ``backend`` can export format ``fmt``, else the reason.

    The reason is one line that names the format, the backend, why, and the fix; ``action``
    is the verb it starts with (validation passes ``"check"``).
    """
    if fmt == "keras" or backend == "tensorflow":
        return None
    head = f"Cannot {action} format {fmt!r} on the Keras backend {backend!r}"
    if backend == "jax":
        if fmt == "saved_model":
            needs = "" if importable("tensorflow") else ", needs TensorFlow (not installed here)"
            return (
                f"{head}: Keras converts JAX to a SavedModel through jax2tf{needs}, and TensorFlow's kernels "
                f"differ from JAX's by float32 round-off, so it cannot be validated exactly; {_FIX}."
            )
        if fmt == "onnx":
            return (
                f"{head}: kerascut exports and checks ONNX through tf2onnx on TensorFlow graphs only "
                f"(Keras's jax2onnx path is not validated); {_FIX}."
            )
        if fmt == "litert":
            return f"{head}: Keras's LiteRT exporter runs on the TensorFlow and PyTorch backends only; {_FIX}."
    return f"{head}: kerascut exports only from the backends {list(SUPPORTED_BACKENDS)}; {_FIX}."


def require_export(formats: Sequence[str], backend: str | None = None) -> None:
    """Raise :class:`~kerascut_core.errors.CutError` with :func:`export_supported`'s reason for
    the first format of ``formats`` the backend (default: the running one) cannot export.

    Called by each exporter of :mod:`~kerascut_core.surgery.export` (``export_saved_model``,
    ``export_onnx``, ``export_litert``), and by ``save_candidate`` before anything is written.
    """
    if backend is None:
        import keras

        backend = str(keras.config.backend())
    for fmt in formats:
        reason = export_supported(fmt, backend)
        if reason is not None:
            raise CutError(reason)


def cross_backend_note(built: str | None, running: str | None) -> str | None:
    """The line a consumer sees when a version built on ``built`` runs on ``running``, else ``None``.

    ``None`` too when either is unknown (manifests written before the backend was recorded).
    """
    if not built or not running or built == running:
        return None
    return (
        f"built and validated exactly on Keras backend {built!r}; running on {running!r} computes "
        "the same graph with other kernels, equal within float32 round-off, not bit for bit"
    )


def importable(module: str) -> bool:
    """Whether ``module`` can be imported here (found without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
