"""Optional extras: import a module that only an extra installs, or say which extra to install.

kerascut's base install runs TensorFlow Keras only. The runtimes a consumer may deploy to, and
the sources some teams use, come with extras (``pip install 'kerascut[onnx]'``), so that a team
that never exports to ONNX never installs onnxruntime:

============  =====================================================  ==========================
extra         installs                                               used for
============  =====================================================  ==========================
``onnx``      onnx, onnxruntime, tf2onnx                             ``formats: [onnx]``
``litert``    ai-edge-litert                                         ``formats: [litert]``
``jax``       jax (CPU), scipy                                       ``KERAS_BACKEND=jax``
``hub``       keras-hub                                              keras-hub preset sources
============  =====================================================  ==========================

``scripts/setup.sh --extras`` installs all four against ``constraints-extras.txt``, keeping one
TensorFlow in the environment (keras-hub's ``tensorflow-text`` would otherwise pull the full
``tensorflow`` next to ``tensorflow-cpu``).

>>> require("json", extra="onnx", purpose="reading JSON").__name__
'json'
>>> require("no_such_module_kc", extra="onnx", purpose="the 'onnx' format")
Traceback (most recent call last):
...
kerascut_core.extras.MissingExtraError: The 'onnx' format needs the optional extra 'onnx' (module 'no_such_module_kc' is not installed). Install it with: pip install 'kerascut[onnx]'
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import KerascutError

__all__ = ["EXTRAS", "FORMAT_MODULES", "MissingExtraError", "require", "require_format"]

#: Format -> what exporting it and what running (validating) it imports, in that order; its
#: extra is named after the format (``kerascut[onnx]``, ``kerascut[litert]``). The one table
#: of the runtime formats' modules: :func:`require_format` reads it, and so does :data:`EXTRAS`.
FORMAT_MODULES: dict[str, dict[str, tuple[str, ...]]] = {
    "onnx": {"export": ("tf2onnx", "onnx"), "run": ("onnxruntime",)},
    "litert": {"export": ("ai_edge_litert",), "run": ("ai_edge_litert", "ai_edge_litert.interpreter")},
}
#: Extra -> the modules it provides (the first one is the one whose absence is reported).
EXTRAS: dict[str, tuple[str, ...]] = {
    **{fmt: tuple(dict.fromkeys([*uses["run"], *uses["export"]])) for fmt, uses in FORMAT_MODULES.items()},
    "jax": ("jax",),
    "hub": ("keras_hub",),
}
_VERBS = {"export": "exporting", "run": "validating"}


class MissingExtraError(KerascutError, ImportError):
    """A feature needs an optional extra that is not installed."""


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtraError` naming the extra that installs it.

    Only a missing module is translated: an extra that is installed but broken (an ABI mismatch,
    say) raises its own ImportError, because "install the extra" would not fix it.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or module
        if missing != module and not module.startswith(missing + "."):
            raise  # the module exists but one of its own dependencies is missing
        subject = purpose[:1].upper() + purpose[1:]
        raise MissingExtraError(
            f"{subject} needs the optional extra {extra!r} (module {module!r} is not "
            f"installed). Install it with: pip install 'kerascut[{extra}]'"
        ) from None


def require_format(fmt: str, use: str = "run") -> dict[str, ModuleType]:
    """The modules ``fmt`` needs to ``use`` (``"export"`` or ``"run"``), imported, by name:
    ``{}`` for a format without an extra (``keras``, ``saved_model``). A missing one raises
    the one-line :class:`MissingExtraError` naming ``kerascut[<fmt>]``.

    >>> require_format("keras")
    {}
    """
    purpose = f"{_VERBS[use]} the {fmt!r} format"
    return {m: require(m, extra=fmt, purpose=purpose) for m in FORMAT_MODULES.get(fmt, {}).get(use, ())}
