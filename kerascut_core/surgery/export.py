"""Export: a cut model saved as a candidate's files, named as the store names its artifacts.

One function, :func:`save_candidate`, used by the pipeline (``kerascut.tasks.cut``) and by
``kerascut cut``: ``model.keras`` (written beside its target, reloaded with Keras's own loader
as a consumer would, and only then renamed into place: a candidate that does not reload is
never written, and a failed save never leaves half a file), ``graph.svg`` (the picture, stages
collapsed; skipped when graphviz's ``dot`` is missing) and, when asked for, the SavedModel
export under ``saved_model/``, the ONNX export ``model.onnx`` (:func:`export_onnx`, extra
``kerascut[onnx]``) and the LiteRT export ``model.tflite`` (:func:`export_litert`, extra
``kerascut[litert]``). Keras and TensorFlow are used through the model's own methods (and
Keras's loader for the reload); nothing is imported here until a model is saved.

The ONNX and LiteRT exports name every output after the candidate's outputs (the names the
manifest records), whatever the candidate returns (one tensor, a list or a dict), so their
runtimes hand outputs back by name; the ONNX graph lists them in the candidate's order.

    >>> files = save_candidate(model, "/tmp/kc", ["keras", "saved_model"])   # doctest: +SKIP
    >>> sorted(files)[:2]                                                     # doctest: +SKIP
    ['graph.svg', 'model.keras']
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kerascut_core.artifacts import GRAPH, LITERT, MODEL, ONNX, SAVED_MODEL
from kerascut_core.errors import CutError
from kerascut_core.surgery.backends import require_export
from kerascut_core.text import one_line

__all__ = [
    "export_litert", "export_onnx", "export_saved_model", "output_names", "require_exporters", "save_candidate",
]


def save_candidate(
    model: Any,
    directory: str | os.PathLike[str],
    formats: Sequence[str] = ("keras",),
    *,
    keras_name: str = MODEL,
    graph: bool = True,
    on_draw_error: Callable[[str], Any] | None = None,
    allow_unsafe: bool = False,
    custom_objects: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Save ``model`` into ``directory``; return ``{artifact path: file}``.

    The artifact paths are those of the store: ``model.keras`` (saved as ``keras_name``),
    ``graph.svg`` when ``graph`` and graphviz can draw it (otherwise ``on_draw_error`` gets the
    one-line reason and the picture is left out), and ``saved_model/...`` when ``formats``
    holds ``"saved_model"``. ``directory`` must exist.

    ``model.keras`` is reloaded (``keras.saving.load_model``, ``safe_mode`` unless
    ``allow_unsafe``, with ``custom_objects``; the modules of custom layers must already be
    imported) before anything else is written.

    Raises:
        CutError: the saved model does not reload; the message holds the innermost cause
            (e.g. "Unrecognized keyword arguments passed to Scale") and nothing is left behind.
    """
    require_exporters(formats)  # before anything is written: a missing extra is one line
    require_export(formats)  # and a format this Keras backend cannot export (surgery/backends.py)
    base = Path(directory)
    files = {MODEL: _save_keras(model, base / keras_name, allow_unsafe, custom_objects)}
    if graph:
        picture = _draw(model, base / GRAPH, on_draw_error)
        if picture is not None:
            files[GRAPH] = picture
    if SAVED_MODEL in formats:
        exported = export_saved_model(model, base / SAVED_MODEL)
        for path in sorted(p for p in exported.rglob("*") if p.is_file()):
            files[f"{SAVED_MODEL}/{path.relative_to(exported).as_posix()}"] = path
    if "onnx" in formats:
        files[ONNX] = export_onnx(model, base / ONNX)
    if "litert" in formats:
        files[LITERT] = export_litert(model, base / LITERT)
    return files


def require_exporters(formats: Sequence[str]) -> dict[str, Any]:
    """The modules that export ``formats`` (:data:`kerascut_core.extras.FORMAT_MODULES`), by
    name; the one-line :class:`~kerascut_core.extras.MissingExtraError` when a format needs an
    extra that is not installed (``onnx``: ``kerascut[onnx]``, ``litert``: ``kerascut[litert]``)."""
    from kerascut_core.extras import require_format

    modules: dict[str, Any] = {}
    for fmt in formats:
        modules.update(require_format(fmt, "export"))
    return modules


def export_saved_model(model: Any, path: Path) -> Path:
    """Export ``model`` as a SavedModel directory (``model.export(format="tf_saved_model")``).

    Raises:
        CutError: the running Keras backend cannot export it exactly (JAX:
            :func:`~kerascut_core.surgery.backends.export_supported` says why).
    """
    require_export([SAVED_MODEL])
    model.export(str(path), format="tf_saved_model", verbose=False)
    return path


def output_names(model: Any) -> list[str]:
    """The candidate's output names: its cut plan's (``model.cut_plan``, as the manifest records
    them), else the keys of its dict outputs, else ``output_0``, ``output_1``... in order."""
    from kerascut_core.keras_compat import outputs_struct

    plan = getattr(model, "cut_plan", None)
    if plan is not None and len(plan.outputs) == len(model.outputs):
        return list(plan.outputs)
    struct = outputs_struct(model)
    if isinstance(struct, dict):
        return list(struct)
    return [f"output_{i}" for i in range(len(model.outputs))]


def export_onnx(model: Any, path: Path, names: Sequence[str] | None = None) -> Path:
    """Export ``model`` to ONNX (Keras's ``model.export(format="onnx")``, through tf2onnx) with
    each output named (``names``, default :func:`output_names`) and listed in the model's order.

    Raises:
        MissingExtraError: ``kerascut[onnx]`` is not installed.
        CutError: the running Keras backend cannot export ONNX (JAX, :mod:`.backends`).
    """
    require_export(["onnx"])  # first: under JAX tf2onnx would not even import (no TensorFlow)
    onnx = require_exporters(["onnx"])["onnx"]
    names = list(names or output_names(model))
    partial = path.with_name(f".{path.stem}.partial.onnx")
    try:
        _named(model, names).export(str(partial), format="onnx", verbose=False,
                                    input_signature=_signature(model))
        proto = onnx.load(str(partial))
        by_name = {o.name: o for o in proto.graph.output}
        if set(by_name) == set(names) and list(by_name) != names:
            # tf2onnx lists a dict's outputs sorted by key; consumers read them by position
            ordered = [by_name[n] for n in names]
            copies = [type(o)() for o in ordered]
            for copy, original in zip(copies, ordered, strict=True):
                copy.CopyFrom(original)
            del proto.graph.output[:]
            proto.graph.output.extend(copies)
            onnx.save(proto, str(partial))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def export_litert(model: Any, path: Path, names: Sequence[str] | None = None) -> Path:
    """Export ``model`` to a LiteRT flatbuffer (``model.export(format="litert")``), its serving
    signature naming each output (``names``, default :func:`output_names`).

    Raises:
        MissingExtraError: ``kerascut[litert]`` is not installed.
        CutError: the running Keras backend cannot export LiteRT (JAX, :mod:`.backends`).
    """
    require_export(["litert"])
    require_exporters(["litert"])
    names = list(names or output_names(model))
    partial = path.with_name(f".{path.stem}.partial.tflite")
    try:
        _named(model, names).export(str(partial), format="litert", verbose=False,
                                    input_signature=_signature(model))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _named(model: Any, names: list[str]) -> Any:
    """``model`` itself when it returns a dict with exactly ``names``, else the same graph
    returning ``{name: output}`` (no layer is copied)."""
    import keras

    from kerascut_core.keras_compat import inputs_struct, outputs_struct

    struct = outputs_struct(model)
    if isinstance(struct, dict) and list(struct) == names:
        return model
    if isinstance(struct, dict) and set(struct) == set(names):  # model.outputs is sorted by key
        return keras.Model(inputs_struct(model), {n: struct[n] for n in names}, name=model.name)
    if len(names) != len(model.outputs):
        raise CutError(
            f"Expected one name per output of the model ({len(model.outputs)}). Received "
            f"{len(names)} names {names!r}; pass the names of the cut's outputs."
        )
    return keras.Model(inputs_struct(model), dict(zip(names, model.outputs, strict=True)), name=model.name)


def _signature(model: Any) -> list[Any]:
    """The export signature: the model's input structure, batch dimension free, each input
    named as in the model (a model reloaded from ``.keras`` was never called, so Keras cannot
    infer it)."""
    import keras

    from kerascut_core.keras_compat import inputs_struct

    def spec(tensor: Any) -> Any:
        return keras.InputSpec(shape=(None, *tensor.shape[1:]), dtype=tensor.dtype, name=tensor.name)

    return [keras.tree.map_structure(spec, inputs_struct(model))]


def _save_keras(
    model: Any, output: Path, allow_unsafe: bool, custom_objects: Mapping[str, Any] | None
) -> Path:
    """Write next to the target, reload, then rename: what is left behind is whole and loads."""
    partial = output.with_name(f".{output.stem}.partial.keras")
    try:
        model.save(partial)
        _check_reloads(partial, output.name, allow_unsafe, custom_objects)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return output


def _check_reloads(
    path: Path, shown: str, allow_unsafe: bool, custom_objects: Mapping[str, Any] | None
) -> None:
    import keras

    from kerascut_core.sources.load_errors import innermost, missing_class

    try:
        reloaded = keras.saving.load_model(
            path, compile=False, safe_mode=not allow_unsafe,
            custom_objects=dict(custom_objects) if custom_objects else None,
        )
    except Exception as exc:
        cause = innermost(exc)
        text = one_line(str(cause), 403)
        missing = missing_class(exc)
        if missing is not None:
            fix = (f"import the module that registers {missing[0]!r} first "
                   f"(--import {missing[1] or 'MODULE'}; config: imports:)")
        elif "Lambda" in text and not allow_unsafe:
            fix = "allow Lambda layers with --allow-unsafe (config: allow_unsafe: true) if you trust them"
        else:
            fix = ("make each custom layer's get_config() return exactly what its __init__ (or "
                   "from_config) accepts, and its build() recreate every weight")
        raise CutError(
            f"Expected the cut model to reload from {shown}, as a consumer loads it. Received "
            f"{type(cause).__name__}: {text}. Nothing was written; {fix}."
        ) from exc
    del reloaded


def _draw(model: Any, path: Path, on_error: Callable[[str], Any] | None) -> Path | None:
    """The backbone's picture (stages collapsed), or ``None`` when graphviz cannot draw it."""
    from kerascut_core.errors import DrawError
    from kerascut_core.surgery.drawing import draw

    try:
        return draw(model, path, collapse=True)
    except DrawError as exc:
        if on_error is not None:
            on_error(str(exc))
        return None
