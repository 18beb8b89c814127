"""Formats: the ``.keras`` candidate reloaded from its bytes, and its SavedModel export.

``keras`` is always checked: the candidate is loaded with Keras's own loader, as consumers
load it (:func:`reload_keras`), and its row holds the numbers of the comparison.
``saved_model`` is reloaded with ``tf.saved_model.load`` and called through its ``serve``
endpoint on the same start activations (:func:`check_saved_model`); the artifact beside the
candidate is used when there is one, otherwise the candidate is exported to a temporary
directory. The ONNX and LiteRT exports run in their own runtimes (:mod:`.formats_runtime`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kerascut_core.artifacts import FORMAT_NAMES
from kerascut_core.errors import ValidationError
from kerascut_core.sources.load_errors import innermost
from kerascut_core.validation.comparisons import compare, max_diff
from kerascut_core.validation.forward import flatten_outputs, forward_fn, run_batched
from kerascut_core.validation.locations import is_remote
from kerascut_core.validation.messages import one_line, shape_text
from kerascut_core.validation.report import FormatCheck

if TYPE_CHECKING:
    from kerascut_core.validation.state import Run

__all__ = ["FORMATS", "RUNTIME_SUFFIXES", "check_saved_model", "keras_format", "reload_keras"]

#: Formats validation can check. ``keras`` is always checked.
FORMATS = FORMAT_NAMES
#: the file suffix of each format that runs in its own runtime (a candidate may be one directly)
RUNTIME_SUFFIXES = {".onnx": "onnx", ".tflite": "litert"}


def reload_keras(
    path: Path, allow_unsafe: bool, run: Run, custom_objects: Mapping[str, Any] | None = None
) -> Any:
    """The candidate loaded from its bytes with Keras's own loader, as consumers will load it.

    None (and a failure) when the bytes do not load: a truncated or corrupted file fails the
    validation rather than stopping it.
    """
    import zipfile

    import keras

    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        run.fail(
            f"the candidate could not be reloaded from {path.name}: its {path.stat().st_size} bytes "
            "are not a .keras archive (truncated or corrupted); stage it again"
        )
        return None
    try:
        return keras.saving.load_model(
            path, compile=False, safe_mode=not allow_unsafe,
            custom_objects=dict(custom_objects) if custom_objects else None,
        )
    except Exception as exc:
        from kerascut_core.sources.load_errors import describe_load_error, missing_class

        # A missing custom class is named with the import that fixes it; anything else is
        # Keras's innermost cause (the outer errors only repeat the whole config).
        reason = describe_load_error(path.name, exc) if missing_class(exc) else one_line(innermost(exc))
        run.fail(f"the candidate could not be reloaded from {path.name}: {reason}")
        return None


def keras_format(run: Run, model: Any, candidate: Any) -> FormatCheck:
    """The ``.keras`` row of the formats: the comparison's numbers, from the artifact's bytes."""
    return FormatCheck(
        format="keras",
        location=str(candidate),
        origin="artifact",
        max_abs_diff=max_diff(o.max_abs_diff for o in run.outputs) if run.outputs else None,
        passed=model is not None and bool(run.outputs) and all(o.passed for o in run.outputs),
    )


def check_saved_model(
    model: Any,
    candidate: str,
    candidate_path: Path,
    saved_model: str | os.PathLike[str] | None,
    plan: Any,
    starts: list[Any],
    ends: list[Any],
    run: Run,
) -> FormatCheck:
    """Reload a SavedModel with ``tf.saved_model.load`` and call its ``serve`` endpoint.

    A SavedModel runs as a TensorFlow graph, whose optimizer may fuse operations (Swish,
    Conv+BiasAdd) and round differently from eager Keras by an ulp or so. Its outputs are
    therefore compared, with the validation tolerance, to the reloaded ``.keras`` candidate
    traced the same way (``tf.function``); that candidate was itself compared with the source
    in eager mode. The difference to the source's activations is reported beside it.
    """
    import tensorflow as tf

    check = FormatCheck(format="saved_model", location="(not found)", origin="exported")
    tmp = None
    try:
        location, origin, tmp = _saved_model_location(model, candidate, candidate_path, saved_model)
        check.location = str(location or "(not exported)")
        check.origin = origin  # type: ignore[assignment]
        if model is None or location is None:
            raise ValidationError("the .keras candidate did not load, so there is no reference")
        loaded = tf.saved_model.load(str(location))
        endpoint = getattr(loaded, "serve", None) or loaded.signatures["serving_default"]
        names = list(plan.outputs)

        def serve(arrays: list[Any]) -> list[Any]:
            result = endpoint(arrays[0] if len(arrays) == 1 else list(arrays))
            return [x.numpy() for x in flatten_outputs(result, names)]

        produced = run_batched(serve, starts, run.batch_size)
        reference = run_batched(forward_fn(model, names=names, graph=True), starts, run.batch_size)
        if len(produced) != len(reference):
            raise ValidationError(
                f"Expected {len(reference)} outputs from the serving endpoint. Received {len(produced)}"
            )
        worst, worst_source, ok = 0.0, 0.0, True
        for actual, expected, end in zip(produced, reference, ends, strict=True):
            if actual.shape != expected.shape:
                raise ValidationError(
                    f"Expected an output of shape {shape_text(expected.shape)}. "
                    f"Received {shape_text(actual.shape)}"
                )
            max_abs, _, _, _, within = compare(actual, expected, run.atol, run.rtol)
            worst = max_diff([worst, max_abs])
            worst_source = max_diff([worst_source, compare(actual, end, 0.0, 0.0)[0]])
            ok = ok and within
        check.max_abs_diff = worst
        check.max_abs_diff_vs_source = worst_source
        check.passed = ok
    except Exception as exc:
        check.error = one_line(exc)
        check.passed = False
    finally:
        if tmp is not None:
            tmp.cleanup()
    if not check.passed:
        reason = check.error or (
            f"its serving endpoint differs from the .keras candidate by up to {check.max_abs_diff:.3g}"
        )
        run.fail(f"saved_model at {check.location}: {reason}")
    return check


def _saved_model_location(
    model: Any, candidate: str, candidate_path: Path, saved_model: str | os.PathLike[str] | None
) -> tuple[Path | None, str, Any]:
    """Where the SavedModel to check is: given, beside the candidate, or freshly exported.

    "Beside the candidate" is a ``saved_model`` directory (or ``s3://`` prefix) next to the
    ``model.keras``, as :func:`kerascut_core.publish.stage_candidate` stages it. Returns the
    directory, its origin (``artifact`` or ``exported``) and a temporary directory to clean up
    afterwards, if any.
    """
    if saved_model is not None:
        text = os.fspath(saved_model)
        if is_remote(text):
            path, tmp = _fetch_tree(text)
            return path, "artifact", tmp
        return Path(text.removeprefix("file://")), "artifact", None
    if is_remote(candidate):
        prefix = candidate.rstrip("/").rsplit("/", 1)[0] + "/saved_model"
        path, tmp = _fetch_tree(prefix)
        if (path / "saved_model.pb").is_file():
            return path, "artifact", tmp
        tmp.cleanup()
    else:
        beside = candidate_path.parent / "saved_model"
        if (beside / "saved_model.pb").is_file():
            return beside, "artifact", None
    if model is None:
        return None, "exported", None
    from kerascut_core.surgery.export import export_saved_model

    tmp = tempfile.TemporaryDirectory(prefix="kerascut-saved-model-")
    try:
        return export_saved_model(model, Path(tmp.name) / "saved_model"), "exported", tmp
    except BaseException:
        tmp.cleanup()
        raise


def _fetch_tree(uri: str) -> tuple[Path, tempfile.TemporaryDirectory]:
    """Download every object under a store prefix (a SavedModel directory) to a temp dir."""
    from kerascut_core.stores import open_store

    store = open_store(uri)
    tmp = tempfile.TemporaryDirectory(prefix="kerascut-saved-model-")
    target = Path(tmp.name)
    for key in store.list(""):
        dest = target / key
        dest.parent.mkdir(parents=True, exist_ok=True)
        store.get_file(key, dest)
    return target, tmp
