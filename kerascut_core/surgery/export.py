"""Export: a cut model saved as a candidate's files, named as the store names its artifacts.

One function, :func:`save_candidate`, used by the pipeline (``kerascut.tasks.cut``) and by
``kerascut cut``: ``model.keras`` (written beside its target and renamed into place, so a
failed save never leaves half a file), ``graph.svg`` (the picture, stages collapsed; skipped
when graphviz's ``dot`` is missing) and, when asked for, the SavedModel export under
``saved_model/``. Keras and TensorFlow are used through the model's own methods; nothing is
imported here until a picture is drawn.

    >>> files = save_candidate(model, "/tmp/kc", ["keras", "saved_model"])   # doctest: +SKIP
    >>> sorted(files)[:2]                                                     # doctest: +SKIP
    ['graph.svg', 'model.keras']
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

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
) -> dict[str, Path]:
    """Save ``model`` into ``directory``; return ``{artifact path: file}``.

    The artifact paths are those of the store: ``model.keras`` (saved as ``keras_name``),
    ``graph.svg`` when ``graph`` and graphviz can draw it (otherwise ``on_draw_error`` gets the
    one-line reason and the picture is left out), and ``saved_model/...`` when ``formats``
    holds ``"saved_model"``. ``directory`` must exist.
    """
    base = Path(directory)
    files = {MODEL: _save_keras(model, base / keras_name)}
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


def _save_keras(model: Any, output: Path) -> Path:
    """Write next to the target, then rename: a failed save never leaves half a file behind."""
    partial = output.with_name(f".{output.stem}.partial.keras")
    try:
        model.save(partial)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return output


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
