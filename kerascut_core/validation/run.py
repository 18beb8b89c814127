"""The public :func:`validate`: the phases of one validation, in order, and the report.

Each phase is a private step here or one call into the module of its concept: the device
(:mod:`.device`), the inputs (:mod:`.inputs`, :mod:`.sample_data`), the probe pass
(:mod:`.forward`), the numbers (:mod:`.comparisons`), :mod:`.structure`, :mod:`.weights`,
:mod:`.formats` and, on a GPU, throughput. What the phases find is collected in a
:class:`~kerascut_core.validation.state.Run`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from kerascut_core.config.settings import ValidationSettings
from kerascut_core.errors import ValidationError
from kerascut_core.surgery.spec import CutSpec
from kerascut_core.validation import device as _device
from kerascut_core.validation.comparisons import check_numbers
from kerascut_core.validation.formats import (
    FORMATS,
    RUNTIME_SUFFIXES,
    check_saved_model,
    keras_format,
    reload_keras,
)
from kerascut_core.validation.formats_runtime import check_runtime_format
from kerascut_core.validation.forward import forward_fn, probe_model
from kerascut_core.validation.locations import local_candidate
from kerascut_core.validation.options import resolve_settings
from kerascut_core.validation.probe_pass import probe_pass
from kerascut_core.validation.report import ThroughputRow, ValidationReport
from kerascut_core.validation.state import Run
from kerascut_core.validation.structure import check_structure
from kerascut_core.validation.weights import (
    check_weights,
    kept_layer_ids,
    match_layers,
    weight_failures,
)

__all__ = ["validate"]


def validate(
    candidate: str | os.PathLike[str],
    source_model: Any,
    cut_spec: CutSpec | dict[str, Any] | None,
    settings: ValidationSettings | Mapping[str, Any] | None = None,
    *,
    formats: Sequence[str] = ("keras",),
    saved_model: str | os.PathLike[str] | None = None,
    source_options: dict[str, Any] | None = None,
    jit_compile: bool = False,
    allow_unsafe: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    custom_objects: Mapping[str, Any] | None = None,
    imports: Iterable[str] | None = None,
    **overrides: Any,
) -> ValidationReport:
    """Check a saved candidate against the source sub-graph it was cut from.

    Args:
        candidate: path or URI (``s3://``, ``file://``) of the candidate's ``model.keras``, or a
            directory holding one; or an exported ``.onnx`` / ``.tflite`` candidate, run in its
            runtime (onnxruntime, LiteRT) and compared by output name with the source (its
            structure and weights are not checked: they are the ``.keras`` candidate's).
        source_model: the source as a Keras model, or a source URI for
            :func:`kerascut_core.sources.load_model` (options in ``source_options``).
        cut_spec: a :class:`~kerascut_core.surgery.spec.CutSpec` or a dict of the config's cut fields
            (``start``, ``end``, ``drop_first``, ``extra_inputs``).
        settings: a :class:`~kerascut_core.config.ValidationSettings` (the config's), or a dict
            of its fields; the fields below may also be given as keywords, which win.
        samples: how many inputs to run (rows of ``data`` when given).
        batch_size: the batch size of every forward pass.
        atol, rtol: tolerance, elementwise ``|candidate - source| <= atol + rtol * |source|``.
            ``0.0`` (exact) is right on the same device and dtype; loosen it only across devices.
        seed: seed of the random inputs: floats uniform in [-1, 1), integers below the size
            of the embedding they feed (0 or 1 otherwise). Pass ``data`` for realistic
            activations.
        require_gpu: refuse to run without a GPU (before any model is loaded).
        data: ``.npz`` / ``.npy`` sample inputs for the *source*, local or a URI. An ``.npz``
            names arrays after the source's inputs (or ``arr_0``, ``arr_1``... in order).
        formats: formats to check; ``keras`` is always checked, ``saved_model``, ``onnx`` (extra
            ``kerascut[onnx]``) and ``litert`` (extra ``kerascut[litert]``) may be added. ``onnx``
            and ``litert`` run the ``model.onnx`` / ``model.tflite`` beside the candidate (else
            an export of it) in their runtimes; its weights are compared with a fresh export of
            the candidate and each output is held to that export's noise
            (:mod:`kerascut_core.validation.formats_runtime`; ``atol``/``rtol`` when looser).
        saved_model: the SavedModel artifact to check. By default a ``saved_model`` directory
            beside the candidate is used when there is one, otherwise the reloaded candidate
            is exported to a temporary directory.
        source_options: keyword arguments for ``load_model`` when ``source_model`` is a URI.
        jit_compile: use XLA for the GPU throughput measurement.
        allow_unsafe: allow ``Lambda`` layers when reloading the candidate (``safe_mode=False``).
        progress: called as ``progress(phase, done, total)`` after each batch, with ``phase``
            ``"source"`` (the probe pass) or ``"candidate"``, and rows done out of ``total``.
        sample_dim: the size of the random inputs' unknown dimensions other than the batch.
            By default a size every layer accepts is found by symbolic shape inference
            (:func:`~kerascut_core.validation.sizes.fitting_dim`: 64, 128, ... up to 65536), or
            below 64 when the source only runs there (:mod:`~kerascut_core.validation.probe_pass`).
        custom_objects: ``{"Name": class}`` for custom classes the source and the candidate use
            that are not registered with ``register_keras_serializable``.
        imports: modules to import before any model is loaded (those that register the custom
            layers), as :func:`kerascut_core.sources.import_modules` imports them.

    Returns:
        A :class:`~kerascut_core.validation.report.ValidationReport`; ``passed`` is the verdict.

    Raises:
        DeviceError: ``require_gpu=True`` and TensorFlow sees no GPU.
        MissingExtraError: ``onnx`` or ``litert`` (or such a candidate) without its extra.
        ValidationError: validation cannot run (bad arguments, missing candidate, bad data, or
            inputs of no size the source accepts: the layer and the fixes are named).
        SourceError: a module of ``imports`` does not import, or the source does not load.
        CutError: the cut spec does not fit the source.
    """
    from kerascut_core.sources.imports import import_modules

    started = time.perf_counter()
    options = resolve_settings(settings, overrides)
    samples, batch_size, seed, data = options.samples, options.batch_size, options.seed, options.data
    atol, rtol, require_gpu, sample_dim = options.atol, options.rtol, options.require_gpu, options.sample_dim
    spec = CutSpec.from_dict(cut_spec)
    formats = _check_arguments(samples, batch_size, atol, rtol, formats)
    _check_backend(formats)
    direct = _runtime_candidate(candidate, formats)  # "onnx" / "litert" for such a file, else None
    if sample_dim is not None and (isinstance(sample_dim, bool) or not isinstance(sample_dim, int) or sample_dim < 1):
        raise ValidationError(f"Expected `sample_dim` to be a positive integer. Received sample_dim={sample_dim!r}.")
    run = Run(atol=float(atol), rtol=float(rtol), batch_size=batch_size, progress=progress)

    with run.timed("device"):  # first: nothing is loaded before a missing GPU is refused
        info = _device.prepare(require_gpu=require_gpu)
    with run.timed("load"):
        import_modules(imports)  # before any model is loaded: they register custom layers
        candidate_path = local_candidate(candidate)
        source, source_label = _load_source(source_model, source_options, custom_objects)
        plan = _plan(source, spec)
        probe, probe_index = probe_model(source, plan)
    with run.timed("probe"):  # one pass of the source gives the start and the end activations
        source_inputs, probed, dim = probe_pass(
            source, probe, plan, data=data, samples=samples, seed=seed, sample_dim=sample_dim,
            batch_size=batch_size, progress=run.reporter("source"),
        )
        starts = [probed[probe_index[a]] for a in plan.inputs]
        ends = [probed[probe_index[a]] for a in plan.outputs.values()]
    with run.timed("reload"):
        model = None if direct else reload_keras(candidate_path, allow_unsafe, run, custom_objects)
    with run.timed("candidate"):
        # a candidate that did not reload (or an .onnx / .tflite one) is not compared: "not run"
        kept = kept_layer_ids(source, plan) if model is not None else None
        matches = match_layers(model, source, kept) if model is not None else []
        if model is not None:
            run.structure = check_structure(
                model, source, plan,
                expected_inputs=[probe.outputs[probe_index[a]] for a in plan.inputs],
                expected_outputs=[probe.outputs[probe_index[a]] for a in plan.outputs.values()],
                matches=matches,
            )
            run.fail_all(run.structure.problems)
            check_numbers(run, model, plan, starts, ends)
    with run.timed("weights"):
        if model is not None:
            run.weights = check_weights(source, kept, matches)
            run.fail_all(weight_failures(run.weights))
    with run.timed("formats"):
        if direct:  # the file is the candidate: its runtime's outputs are the comparison
            check = check_runtime_format(
                direct, None, os.fspath(candidate), candidate_path, plan, starts, ends, run,
                gpu=info.kind == "gpu", path=candidate_path, reference=_cut_again(source, plan),
            )
            run.outputs = list(check.outputs)
            run.formats.append(check)
        else:  # the .keras candidate, then each export asked for (the only formats then)
            run.formats.append(keras_format(run, model, candidate))
            for fmt in [f for f in ("onnx", "litert") if f in formats]:
                run.formats.append(check_runtime_format(
                    fmt, model, os.fspath(candidate), candidate_path, plan, starts, ends, run,
                    gpu=info.kind == "gpu",
                ))
            if "saved_model" in formats:
                run.formats.append(check_saved_model(
                    model, os.fspath(candidate), candidate_path, saved_model, plan, starts, ends, run
                ))
    with run.timed("throughput"):  # GPU workers only
        if info.kind == "gpu" and model is not None:
            run.throughput = _throughput(probe, model, source_inputs, starts, jit_compile, run)

    run.timings.total = time.perf_counter() - started
    return run.report(
        candidate=str(candidate),
        source=source_label,
        cut_spec=plan.spec.to_dict(),  # tensors and pyramids resolved to addresses
        plan=_plan_summary(plan),
        inputs=list(plan.inputs),
        samples=len(source_inputs[0]) if source_inputs else 0,
        batch_size=batch_size,
        seed=seed,
        data=None if data is None else str(data),
        sample_dim=dim,
        device=info,
    )


def _check_arguments(
    samples: int, batch_size: int, atol: float, rtol: float, formats: Sequence[str]
) -> tuple[str, ...]:
    for label, value in (("samples", samples), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValidationError(f"Expected `{label}` to be a positive integer. Received {label}={value!r}.")
    for label, number in (("atol", atol), ("rtol", rtol)):
        if not isinstance(number, (int, float)) or isinstance(number, bool) or number < 0 or math.isnan(number):
            raise ValidationError(f"Expected `{label}` to be a number >= 0. Received {label}={number!r}.")
    if isinstance(formats, str):
        formats = (formats,)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValidationError(
            f"Expected `formats` to contain only {list(FORMATS)}. Received {list(formats)!r}; "
            f"remove {unknown!r}."
        )
    from kerascut_core.validation.runtimes import require_runtime

    for fmt in formats:
        require_runtime(fmt)  # before anything loads: a missing extra is one line
    return tuple(dict.fromkeys(["keras", *formats]))


def _runtime_candidate(candidate: str | os.PathLike[str], formats: tuple[str, ...]) -> str | None:
    """``onnx`` / ``litert`` when ``candidate`` is such a file (its runtime checked at once),
    else ``None`` (a ``.keras`` candidate)."""
    from pathlib import PurePosixPath

    from kerascut_core.validation.runtimes import require_runtime

    direct = RUNTIME_SUFFIXES.get(PurePosixPath(os.fspath(candidate)).suffix.lower())
    if direct is None:
        return None
    others = [f for f in formats if f not in ("keras", direct)]
    if others:
        raise ValidationError(
            f"Expected no other `formats` for a {direct} candidate (it is checked in its runtime). "
            f"Received formats={list(formats)!r}; validate the .keras candidate to check {others!r}."
        )
    require_runtime(direct)
    return direct


def _check_backend(formats: Sequence[str]) -> None:
    """Refuse, in one line, ``saved_model`` where this Keras backend cannot check it exactly,
    even as an artifact (JAX: :func:`~kerascut_core.surgery.backends.export_supported` says why).

    ``onnx`` and ``litert`` run in their own runtimes, so their artifacts are checked on any
    backend; only exporting the candidate to them is refused (JAX), by the exporters
    themselves, and that refusal is a failed check of the format with its one-line reason, as
    any failed export is.
    """
    if "saved_model" not in formats:
        return
    from kerascut_core.surgery.backends import export_supported

    reason = export_supported("saved_model", _device.backend_name(), action="check")
    if reason is not None:
        raise ValidationError(reason)


def _load_source(
    source_model: Any, options: dict[str, Any] | None, custom_objects: Mapping[str, Any] | None
) -> tuple[Any, str]:
    if isinstance(source_model, (str, os.PathLike)):
        from kerascut_core.sources import load_model

        uri = os.fspath(source_model)
        kwargs = dict(options or {})
        if custom_objects:
            kwargs.setdefault("custom_objects", custom_objects)
        return load_model(uri, **kwargs), uri
    if not hasattr(source_model, "layers") or not hasattr(source_model, "inputs"):
        raise ValidationError(
            "Expected `source_model` to be a Keras model or a source URI. "
            f"Received {type(source_model).__name__}."
        )
    return source_model, f"<in-memory model {source_model.name!r}>"


def _plan(source: Any, spec: CutSpec) -> Any:
    from kerascut_core.surgery import plan_cut

    return plan_cut(
        source,
        start=spec.start,
        end=spec.end,
        drop_first=spec.drop_first,
        extra_inputs=spec.extra_inputs,
        levels=spec.levels,
    )


def _cut_again(source: Any, plan: Any) -> Any:
    """The source's cut, made again from the plan: what a file candidate is held to."""
    import warnings

    from kerascut_core.errors import CutWarning
    from kerascut_core.surgery import cut

    spec = plan.spec
    with warnings.catch_warnings():  # the cut was made and warned about before
        warnings.simplefilter("ignore", CutWarning)
        return cut(source, start=spec.start, end=spec.end, drop_first=spec.drop_first,
                   extra_inputs=spec.extra_inputs)


def _plan_summary(plan: Any) -> dict[str, Any]:
    to_dict = getattr(plan, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    return {"inputs": list(plan.inputs), "outputs": dict(plan.outputs)}


def _throughput(
    probe: Any,
    model: Any,
    source_inputs: list[Any],
    starts: list[Any],
    jit_compile: bool,
    run: Run,
) -> list[ThroughputRow]:
    """Items/s of the source (through the probe) and the candidate, plus two-run agreement.

    Both run as ``tf.function`` graphs (with XLA when ``jit_compile``), or ``jax.jit`` under
    JAX, as a serving deployment would; the first two calls on the same batch must agree.
    """
    rows = []
    for label, net, arrays in (("source", probe, source_inputs), ("candidate", model, starts)):
        batch = [a[: run.batch_size] for a in arrays]
        forward = forward_fn(net, graph=True, jit_compile=jit_compile)
        row = _device.throughput_row(
            label, forward, batch, batch_size=len(batch[0]), jit_compile=jit_compile,
            atol=run.atol, rtol=run.rtol,
        )
        if not row.runs_agree:
            fix = "XLA_FLAGS=--xla_gpu_deterministic_ops=true" if _device.backend_name() == "jax" else "TF_DETERMINISTIC_OPS=1"
            run.fail(
                f"{label}: two runs on the same batch disagree on this GPU (non-deterministic "
                f"kernels); set {fix} on the worker"
            )
        rows.append(row)
    return rows
