"""The ``onnx`` and ``litert`` formats, proven to their runtime's own noise.

An artifact (the ``model.onnx`` / ``model.tflite`` beside the candidate, or a file given as the
candidate) is held to a *fresh export* of the validated Keras candidate, made here with the same
exporter (:mod:`kerascut_core.surgery.export`):

- **weights**: the file's weights against the fresh export's (:mod:`.file_weights`): the
  exporters are deterministic, so any changed weight is found, however little it moves the
  outputs;
- **outputs**: both files run in the same runtime on the source's start activations; the fresh
  export's difference from the source is the runtime's noise, and each output of the file may
  differ from the source by :data:`~.runtimes.NOISE_MARGIN` times that noise at most
  (:func:`~.runtimes.output_tolerance`), never by more than float32 rounding explains
  (:data:`~.runtimes.CEILINGS`).

Without an artifact the candidate is exported to a temporary file, which is then its own fresh
export. When no export can be made on this Keras backend (JAX), the artifact's weights are not
compared and its outputs are held to the ceiling; the report says so.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kerascut_core.errors import CutError, ValidationError
from kerascut_core.extras import MissingExtraError
from kerascut_core.validation.comparisons import max_diff
from kerascut_core.validation.locations import is_remote
from kerascut_core.validation.messages import one_line
from kerascut_core.validation.report import ExportWeightCheck, FormatCheck
from kerascut_core.validation.runtimes import (
    Basis,
    noise_failures,
    output_row,
    run_runtime,
    worst_output,
)

if TYPE_CHECKING:
    from kerascut_core.validation.state import Run

__all__ = ["check_runtime_format", "open_runtime"]


def open_runtime(fmt: str, path: Path, gpu: bool) -> Any:
    """The :class:`~kerascut_core.validation.runtimes.Runtime` of ``fmt`` on ``path``."""
    if fmt == "onnx":
        from kerascut_core.validation.runtimes_onnx import open_onnx

        return open_onnx(path, gpu=gpu)
    from kerascut_core.validation.runtimes_litert import open_litert

    return open_litert(path)


def check_runtime_format(
    fmt: str,
    model: Any,
    candidate: str,
    candidate_path: Path,
    plan: Any,
    starts: list[Any],
    ends: list[Any],
    run: Run,
    *,
    gpu: bool = False,
    path: Path | None = None,
    reference: Any = None,
) -> FormatCheck:
    """Check the ``fmt`` file (``onnx`` or ``litert``) in its runtime against the source's end
    activations, to the noise of a fresh export; record failures in ``run``.

    ``model`` is the reloaded ``.keras`` candidate (``None`` for a file candidate, or one that
    did not reload); ``reference`` the Keras model to export fresh when there is no ``model``
    (the source's cut). ``path`` is the file to check (a candidate given as ``.onnx`` /
    ``.tflite``); by default the artifact beside the candidate, else ``model`` exported to a
    temporary file.
    """
    from kerascut_core.artifacts import FORMAT_FILES

    check = FormatCheck(format=fmt, location="(not found)", origin="artifact")
    names = list(plan.outputs)
    with tempfile.TemporaryDirectory(prefix=f"kerascut-{fmt}-") as tmp:
        try:
            # Locating (fetching, or exporting) happens inside the check: a failed export, or
            # one the Keras backend refuses (JAX), is a failed check with its one-line reason.
            located = path or _runtime_artifact(FORMAT_FILES[fmt], candidate, candidate_path)
            if located is None:
                check.origin, check.location = "exported", "(not exported)"
                if model is None:
                    raise ValidationError("the .keras candidate did not load, so there is nothing to export")
                located = _export_runtime(fmt, model, Path(tmp) / FORMAT_FILES[fmt], names)
            check.location = str(located)
            runtime = open_runtime(fmt, located, gpu)
            check.runtime = runtime.description
            produced = run_runtime(runtime, _input_names(model, plan), names, starts, run.batch_size)
            basis: Basis = "self"
            fresh: list[Any] | None = produced
            why_no_fresh = ""
            if check.origin == "exported":
                check.weights = ExportWeightCheck(
                    reference="itself", reason="the file checked is itself a fresh export of the candidate",
                    passed=True,
                )
            else:
                keras_model = model if model is not None else reference
                what = "the validated .keras candidate" if model is not None else "the source's cut"
                basis, fresh, why_no_fresh, check.weights = _fresh_reference(
                    fmt, keras_model, what, located, Path(tmp) / f"fresh-{FORMAT_FILES[fmt]}", plan, starts, run, gpu
                )
            check.outputs = [
                output_row(fmt, name, address, actual, expected, None if fresh is None else fresh[i],
                           basis=basis, why_no_fresh=why_no_fresh, atol=run.atol, rtol=run.rtol)
                for i, (name, address, actual, expected) in enumerate(
                    zip(names, plan.outputs.values(), produced, ends, strict=True))
            ]
            # a file that is its own fresh export is held to the ceiling by its rows already
            problems = noise_failures(fmt, check.outputs, fresh, ends) if basis == "fresh" and fresh else []
            _summarise(check, basis)
            if check.weights is not None and not check.weights.passed:
                problems.insert(0, _weights_failure(check.weights))
            if not all(o.passed for o in check.outputs):
                problems.append(worst_output(check.outputs))
            check.passed = not problems
        except MissingExtraError:
            raise  # the extra is missing (tf2onnx for an export): one line, not a failed check
        except Exception as exc:
            check.error = one_line(exc)
            check.passed = False
            problems = [check.error]
    for problem in problems:
        run.fail(f"{fmt} at {check.location}: {problem}")
    return check


def _fresh_reference(
    fmt: str, keras_model: Any, what: str, located: Path, target: Path, plan: Any, starts: list[Any], run: Run,
    gpu: bool,
) -> tuple[Basis, list[Any] | None, str, ExportWeightCheck]:
    """The basis of the tolerance, the fresh export's outputs, why there is none, and the
    weights of ``located`` against the fresh export's."""
    from kerascut_core.validation.file_weights import compare_weights, read_weights

    reference = f"a fresh export of {what}"
    try:
        if keras_model is None:
            raise ValidationError("the .keras candidate did not load, so there is nothing to export")
        fresh_path = _export_runtime(fmt, keras_model, target, list(plan.outputs))
    except (CutError, ValidationError) as exc:  # this backend cannot export (JAX): the ceiling
        reason = one_line(exc)
        return "ceiling", None, reason, ExportWeightCheck(reference=reference, reason=reason, passed=True)
    fresh_runtime = open_runtime(fmt, fresh_path, gpu)
    fresh = run_runtime(fresh_runtime, [t.name for t in keras_model.inputs], list(plan.outputs), starts, run.batch_size)
    weights = compare_weights(read_weights(fmt, located), read_weights(fmt, fresh_path), reference=reference)
    return "fresh", fresh, "", weights


def _summarise(check: FormatCheck, basis: Basis) -> None:
    """The format's figures from its outputs': the worst difference, the loosest tolerance."""
    rows = check.outputs
    check.max_abs_diff = max_diff(o.max_abs_diff for o in rows) if rows else None
    check.max_abs_diff_vs_source = check.max_abs_diff
    check.atol = max((o.atol or 0.0 for o in rows), default=None)
    check.rtol = max((o.rtol or 0.0 for o in rows), default=None)
    check.tolerance_reason = {
        "fresh": "each output: the noise of a fresh export of the candidate in the same runtime (see outputs)",
        "self": rows[0].tolerance_reason if rows else None,
        "ceiling": rows[0].tolerance_reason if rows else None,
    }[basis]


def _weights_failure(weights: ExportWeightCheck) -> str:
    shown = [*(repr(n) for n in weights.differing), *(f"{n!r} (no counterpart)" for n in weights.extra),
             *(f"{n!r} (missing)" for n in weights.missing)]
    listed = ", ".join(shown[:3]) + (f" and {len(shown) - 3} more" if len(shown) > 3 else "")
    return (
        f"{len(shown)} weight tensor(s) differ from {weights.reference} (max abs diff "
        f"{weights.max_abs_diff:.3g}): {listed}; the file was changed after export or exported from "
        "other weights, so export it again from the candidate"
    )


def _input_names(model: Any, plan: Any) -> list[str]:
    """The candidate's input names, in the order of the start activations."""
    if model is not None:
        return [t.name for t in model.inputs]
    return list(plan.inputs)


def _runtime_artifact(filename: str, candidate: str, candidate_path: Path) -> Path | None:
    """The ``filename`` artifact beside the candidate (fetched when remote), else ``None``."""
    from kerascut_core.errors import ObjectNotFoundError, SourceError, StoreError

    if is_remote(candidate):
        from kerascut_core.validation.locations import fetch_local

        try:
            return fetch_local(candidate.rstrip("/").rsplit("/", 1)[0] + "/" + filename)
        except (ObjectNotFoundError, SourceError, StoreError, FileNotFoundError):
            return None  # none staged beside it: export the reloaded candidate
    beside = candidate_path.parent / filename
    return beside if beside.is_file() else None


def _export_runtime(fmt: str, model: Any, target: Path, names: list[str]) -> Path:
    """``model`` exported to ``fmt`` at ``target``, its outputs named ``names`` (the plan's, as
    the cut named them); the exporter refuses a backend that cannot (JAX)."""
    from kerascut_core.surgery.export import export_litert, export_onnx

    return (export_onnx if fmt == "onnx" else export_litert)(model, target, names)
