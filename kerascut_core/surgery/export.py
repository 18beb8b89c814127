"""Export: a cut model saved as a candidate's files, named as the store names its artifacts.

One function, :func:`save_candidate`, used by the pipeline (``kerascut.tasks.cut``) and by
``kerascut cut``: ``model.keras`` (written beside its target, reloaded with Keras's own loader
as a consumer would, and only then renamed into place: a candidate that does not reload is
never written, and a failed save never leaves half a file), ``graph.svg`` (the picture, stages
collapsed; skipped when graphviz's ``dot`` is missing) and, when asked for, the SavedModel
export under ``saved_model/``. Keras and TensorFlow are used through the model's own methods
(and Keras's loader for the reload); nothing is imported here until a model is saved.

    >>> files = save_candidate(model, "/tmp/kc", ["keras", "saved_model"])   # doctest: +SKIP
    >>> sorted(files)[:2]                                                     # doctest: +SKIP
    ['graph.svg', 'model.keras']
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kerascut_core.errors import CutError
from kerascut_core.publishing.layout import GRAPH, MODEL, SAVED_MODEL

__all__ = ["save_candidate"]


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
    base = Path(directory)
    files = {MODEL: _save_keras(model, base / keras_name, allow_unsafe, custom_objects)}
    if graph:
        picture = _draw(model, base / GRAPH, on_draw_error)
        if picture is not None:
            files[GRAPH] = picture
    if SAVED_MODEL in formats:
        exported = base / SAVED_MODEL
        model.export(str(exported), format="tf_saved_model", verbose=False)
        for path in sorted(p for p in exported.rglob("*") if p.is_file()):
            files[f"{SAVED_MODEL}/{path.relative_to(exported).as_posix()}"] = path
    return files


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
        text = " ".join(str(cause).split())
        if len(text) > 400:
            text = text[:400] + "..."
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
