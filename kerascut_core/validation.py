"""Validation: prove that a staged candidate computes what the source computed at the cut.

:func:`validate` checks the artifact that will be published, reloaded from its bytes, never the
in-memory model that produced it:

1. **device** - memory growth on GPUs, and ``require_gpu=True`` refused at once on a CPU-only
   machine, before any model is loaded (:mod:`kerascut_core.device`);
2. **one probe pass** - the source runs once through a probe model that returns the activations
   at the cut's start tensors and at its end tensors together;
3. **numbers** - the start activations go into the reloaded candidate and its outputs are
   compared with the end activations: max abs diff, max relative diff, NaN/Inf (always a
   failure). On the same device and dtype the difference is exactly 0, which is the default
   tolerance;
4. **weights** - every candidate variable is bitwise equal to the source variable with the same
   layer path and variable name; a candidate variable with no counterpart fails, and so does a
   variable the cut should keep but the candidate lacks;
5. **structure** - input and output shapes and dtypes equal the source tensors at the cut, and
   dtype policies are unchanged;
6. **formats** - ``keras`` always; ``saved_model`` reloaded with ``tf.saved_model.load`` and
   called through its ``serve`` endpoint on the same start activations;
7. **throughput** (GPU only) - items/s of source and candidate, and two runs that agree.

A candidate that runs and disagrees gives a report with ``passed=False`` and the reasons in
``failures``. Errors that stop validation from running at all (no GPU when one is required, a
candidate path that does not exist, sample data of the wrong shape) raise
:class:`~kerascut_core.errors.ValidationError`.

    >>> import kerascut_core as kc
    >>> source = kc.load_model("keras.applications/MobileNetV2", weights="none",
    ...                        input_shape=(96, 96, 3))                          # doctest: +SKIP
    >>> spec = {"start": "block_3_expand_relu", "end": "block_6_expand_relu"}
    >>> kc.cut(source, **spec).save("/tmp/candidate.keras")                      # doctest: +SKIP
    >>> report = kc.validate("/tmp/candidate.keras", source, spec)               # doctest: +SKIP
    >>> report.passed, report.max_abs_diff                                        # doctest: +SKIP
    (True, 0.0)
"""

from __future__ import annotations

import functools
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kerascut_core import device as _device
from kerascut_core.errors import KerascutError, ValidationError
from kerascut_core.report import (
    FormatCheck,
    OutputCheck,
    StructureCheck,
    TensorCheck,
    ThroughputRow,
    Timings,
    ValidationReport,
    WeightCheck,
)
from kerascut_core.surgery import _keras_api
from kerascut_core.surgery.names import flat_name, layer_name, leaf
from kerascut_core.surgery.spec import CutSpec

__all__ = ["FORMATS", "validate"]

#: Formats validation can check. ``keras`` is always checked.
FORMATS = ("keras", "saved_model")

# Integer inputs feeding these layers draw values below the layer's size; others draw 0 or 1.
_INTEGER_RANGE_ATTRS = {
    "Embedding": "input_dim",
    "CategoryEncoding": "num_tokens",
    "Discretization": None,
}
_DEFAULT_INTEGER_HIGH = 2
# Unknown (None) dimensions other than the batch are filled with this size for random inputs.
_DEFAULT_DIM = 64


def validate(
    candidate: str | os.PathLike[str],
    source_model: Any,
    cut_spec: CutSpec | dict[str, Any] | None,
    *,
    samples: int = 8,
    batch_size: int = 8,
    atol: float = 0.0,
    rtol: float = 0.0,
    seed: int = 0,
    require_gpu: bool = False,
    data: str | os.PathLike[str] | None = None,
    formats: Sequence[str] = ("keras",),
    saved_model: str | os.PathLike[str] | None = None,
    source_options: dict[str, Any] | None = None,
    jit_compile: bool = False,
    allow_unsafe: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> ValidationReport:
    """Check a saved candidate against the source sub-graph it was cut from.

    Args:
        candidate: path or URI (``s3://``, ``file://``) of the candidate's ``model.keras``, or a
            directory holding one.
        source_model: the source as a Keras model, or a source URI for
            :func:`kerascut_core.sources.load_model` (options in ``source_options``).
        cut_spec: a :class:`~kerascut_core.surgery.spec.CutSpec` or a dict of the config's cut fields
            (``start``, ``end``, ``drop_first``, ``extra_inputs``).
        samples: how many inputs to run (rows of ``data`` when given).
        batch_size: the batch size of every forward pass.
        atol, rtol: tolerance, elementwise ``|candidate - source| <= atol + rtol * |source|``.
            ``0.0`` (exact) is right on the same device and dtype; loosen it only across devices.
        seed: seed of the random inputs: floats uniform in [-1, 1), integers below the size
            of the embedding they feed (0 or 1 otherwise); unknown dimensions other than the
            batch are 64. Pass ``data`` for realistic activations.
        require_gpu: refuse to run without a GPU (before any model is loaded).
        data: ``.npz`` / ``.npy`` sample inputs for the *source*, local or a URI. An ``.npz``
            names arrays after the source's inputs (or ``arr_0``, ``arr_1``... in order).
        formats: formats to check; ``keras`` is always checked, ``saved_model`` may be added.
        saved_model: the SavedModel artifact to check. By default a ``saved_model`` directory
            beside the candidate is used when there is one, otherwise the reloaded candidate
            is exported to a temporary directory.
        source_options: keyword arguments for ``load_model`` when ``source_model`` is a URI.
        jit_compile: use XLA for the GPU throughput measurement.
        allow_unsafe: allow ``Lambda`` layers when reloading the candidate (``safe_mode=False``).
        progress: called as ``progress(phase, done, total)`` after each batch, with ``phase``
            ``"source"`` (the probe pass) or ``"candidate"``, and rows done out of ``total``.

    Returns:
        A :class:`~kerascut_core.report.ValidationReport`; ``passed`` is the verdict.

    Raises:
        DeviceError: ``require_gpu=True`` and TensorFlow sees no GPU.
        ValidationError: validation cannot run (bad arguments, missing candidate, bad data).
        CutError: the cut spec does not fit the source.
    """
    started = time.perf_counter()
    spec = CutSpec.from_dict(cut_spec)
    formats = _check_arguments(samples, batch_size, atol, rtol, formats)
    run = _Run(atol=float(atol), rtol=float(rtol), batch_size=batch_size, progress=progress)

    with run.timed("device"):  # first: nothing is loaded before a missing GPU is refused
        info = _device.prepare(require_gpu=require_gpu)
    with run.timed("load"):
        candidate_path = _local_candidate(candidate)
        source, source_label = _load_source(source_model, source_options)
        plan = _plan(source, spec)
        probe, probe_index = _probe(source, plan)
    with run.timed("probe"):  # one pass of the source gives the start and the end activations
        source_inputs = (
            _load_data(data, source, samples) if data is not None
            else _random_inputs(source, samples, seed)
        )
        probed = _run_batched(_forward(probe), source_inputs, batch_size, run.reporter("source"))
        starts = [probed[probe_index[a]] for a in plan.inputs]
        ends = [probed[probe_index[a]] for a in plan.outputs.values()]
    with run.timed("reload"):
        model = _reload(candidate_path, allow_unsafe, run)
    with run.timed("candidate"):
        kept = _kept_layers(source, plan)
        matches = _match_layers(model, source, kept) if model is not None else []
        run.structure = _check_structure(
            model, source, plan,
            expected_inputs=[probe.outputs[probe_index[a]] for a in plan.inputs],
            expected_outputs=[probe.outputs[probe_index[a]] for a in plan.outputs.values()],
            matches=matches,
        )
        run.fail_all(run.structure.problems)
        if model is not None:
            _check_numbers(run, model, plan, starts, ends)
    with run.timed("weights"):
        if model is not None:
            run.weights = _check_weights(source, kept, matches)
            run.fail_all(_weight_failures(run.weights))
    with run.timed("formats"):
        run.formats.append(_keras_format(run, model, candidate))
        if "saved_model" in formats:
            check = _check_saved_model(
                model, os.fspath(candidate), candidate_path, saved_model, plan, starts, ends, run
            )
            run.formats.append(check)
    with run.timed("throughput"):  # GPU workers only
        if info.kind == "gpu" and model is not None:
            run.throughput = _throughput(probe, model, source_inputs, starts, jit_compile, run)

    run.timings.total = time.perf_counter() - started
    return run.report(
        candidate=str(candidate),
        source=source_label,
        cut_spec=spec.to_dict(),
        plan=_plan_summary(plan),
        inputs=list(plan.inputs),
        samples=len(source_inputs[0]) if source_inputs else 0,
        batch_size=batch_size,
        seed=seed,
        data=None if data is None else str(data),
        device=info,
    )


# ---------------------------------------------------------------------------------------------
# the run's state: the failures found so far and the pieces of the report


@dataclass
class _Run:
    """What one validation found so far: the failures, one line each, and the report's parts."""

    atol: float
    rtol: float
    batch_size: int
    failures: list[str] = field(default_factory=list)
    outputs: list[OutputCheck] = field(default_factory=list)
    structure: StructureCheck | None = None
    weights: WeightCheck | None = None
    formats: list[FormatCheck] = field(default_factory=list)
    throughput: list[ThroughputRow] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)
    progress: Callable[[str, int, int], None] | None = None

    def reporter(self, phase: str) -> Callable[[int, int], None] | None:
        """``(done, total) -> None`` for one phase's batches, or ``None`` when nobody listens."""
        if self.progress is None:
            return None
        return functools.partial(self.progress, phase)

    def fail(self, reason: str) -> None:
        self.failures.append(reason)

    def fail_all(self, reasons: Iterable[str]) -> None:
        self.failures.extend(reasons)

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the seconds spent in the block to ``timings.<phase>``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            setattr(self.timings, phase, getattr(self.timings, phase) + time.perf_counter() - started)

    def report(self, **fields: Any) -> ValidationReport:
        import kerascut_core

        failures = list(self.failures)
        if not self.outputs and not failures:
            failures.append("no output was compared")
        diffs = [o.max_abs_diff for o in self.outputs]
        rels = [o.max_rel_diff for o in self.outputs]
        return ValidationReport(
            passed=not failures,
            max_abs_diff=_max(diffs) if diffs else math.inf,
            max_rel_diff=_max(rels) if rels else math.inf,
            failures=failures,
            atol=self.atol,
            rtol=self.rtol,
            outputs=self.outputs,
            structure=self.structure,
            weights=self.weights,
            formats=self.formats,
            throughput=self.throughput,
            timings=self.timings,
            kerascut_version=kerascut_core.__version__,
            **fields,
        )


def _max(values: Iterable[float]) -> float:
    values = list(values)
    if any(math.isnan(v) for v in values):
        return math.nan
    return max(values)


def _one_line(exc: BaseException | str) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, BaseException) and not isinstance(exc, KerascutError):
        text = f"{type(exc).__name__}: {text}"
    return text[:400]


# ---------------------------------------------------------------------------------------------
# arguments, candidate, source, plan, probe


def _check_arguments(
    samples: int, batch_size: int, atol: float, rtol: float, formats: Sequence[str]
) -> tuple[str, ...]:
    for label, value in (("samples", samples), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValidationError(f"Expected `{label}` to be a positive integer. Received {label}={value!r}.")
    for label, value in (("atol", atol), ("rtol", rtol)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or math.isnan(value):
            raise ValidationError(f"Expected `{label}` to be a number >= 0. Received {label}={value!r}.")
    if isinstance(formats, str):
        formats = (formats,)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValidationError(
            f"Expected `formats` to contain only {list(FORMATS)}. Received {list(formats)!r}; "
            f"remove {unknown!r}."
        )
    return tuple(dict.fromkeys(["keras", *formats]))


def _is_remote(text: str) -> bool:
    """A URI to download (``s3://...``), as opposed to a path or a ``file://`` URI."""
    return "://" in text and not text.startswith("file://")


def _fetch(uri: str) -> Path:
    """Download a URI to the local cache with the storage layer's ``fetch`` (imported lazily)."""
    from kerascut_core.sources import fetch

    return Path(fetch(uri))


def _local_candidate(candidate: str | os.PathLike[str]) -> Path:
    """The candidate's ``.keras`` file on local disk (downloaded when it is a remote URI)."""
    text = os.fspath(candidate)
    if text.startswith("file://"):
        text = text[len("file://") :]
    if _is_remote(text):
        return _fetch(text)
    path = Path(text)
    if path.is_dir() and (path / "model.keras").is_file():
        path = path / "model.keras"
    if not path.is_file():
        raise ValidationError(
            f"Expected `candidate` to be a saved .keras file (a path or an s3:// URI). "
            f"Received {text!r}, which does not exist. Save the cut with `model.save(...)` or "
            "stage it, then pass its path."
        )
    return path


def _load_source(source_model: Any, options: dict[str, Any] | None) -> tuple[Any, str]:
    if isinstance(source_model, (str, os.PathLike)):
        from kerascut_core.sources import load_model

        uri = os.fspath(source_model)
        return load_model(uri, **(options or {})), uri
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
    )


def _plan_summary(plan: Any) -> dict[str, Any]:
    to_dict = getattr(plan, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    return {"inputs": list(plan.inputs), "outputs": dict(plan.outputs)}


def _probe(source: Any, plan: Any) -> tuple[Any, dict[str, int]]:
    """A model that returns the start and end activations of the cut in one pass of the source.

    Returns the probe and the position of each address among its outputs.
    """
    from kerascut_core.surgery import cut

    addresses = list(dict.fromkeys([*plan.inputs, *plan.outputs.values()]))
    probe = cut(source, end=addresses)
    return probe, {a: i for i, a in enumerate(addresses)}


def _reload(path: Path, allow_unsafe: bool, run: _Run) -> Any:
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
        return keras.saving.load_model(path, compile=False, safe_mode=not allow_unsafe)
    except Exception as exc:
        run.fail(f"the candidate could not be reloaded from {path.name}: {_one_line(exc)}")
        return None


# ---------------------------------------------------------------------------------------------
# inputs


def _input_specs(model: Any) -> list[tuple[str, tuple[int | None, ...], str]]:
    return [
        (getattr(t, "name", f"input_{i}"), tuple(t.shape), str(t.dtype))
        for i, t in enumerate(model.inputs)
    ]


def _integer_highs(model: Any) -> list[int]:
    """For each model input, an exclusive upper bound that keeps integer values valid."""
    from kerascut_core.surgery import graph_view

    view = graph_view(model)
    highs = []
    for tensor in view.inputs:
        bounds = []
        for op_index in view.consumers[tensor]:
            op = view.ops[op_index]
            attr = _INTEGER_RANGE_ATTRS.get(op.type)
            if attr and isinstance(getattr(op.operation, attr, None), int):
                bounds.append(int(getattr(op.operation, attr)))
        highs.append(min(bounds) if bounds else _DEFAULT_INTEGER_HIGH)
    return highs


def _random_inputs(model: Any, samples: int, seed: int) -> list[Any]:
    """Seeded inputs that respect each source input's shape and dtype.

    Floats are uniform in [-1, 1); integers are uniform below the size of the embedding or
    encoding layer they feed (0 or 1 otherwise); booleans are fair coins.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    highs = _integer_highs(model)
    arrays = []
    for (_, shape, dtype), high in zip(_input_specs(model), highs, strict=True):
        dims = (samples, *(_DEFAULT_DIM if d is None else d for d in shape[1:]))
        kind = np.dtype(dtype).kind
        if kind == "b":
            arrays.append(rng.integers(0, 2, size=dims).astype(bool))
        elif kind in "iu":
            arrays.append(rng.integers(0, high, size=dims).astype(dtype))
        else:
            arrays.append(rng.uniform(-1.0, 1.0, size=dims).astype(dtype))
    return arrays


#: Default of ``KERASCUT_MAX_DATA_BYTES``: the most bytes of sample data one validation reads.
_DEFAULT_MAX_DATA_BYTES = 2 * 1024**3
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")


def _load_data(data: str | os.PathLike[str], model: Any, samples: int) -> list[Any]:
    """User sample inputs from ``.npy`` (one input) or ``.npz`` (one array for each input).

    Only what ``samples`` needs is read: every array's header first (shape, dtype, order, no
    data), then only its first ``samples`` rows, straight from the file or the compressed
    ``.npz`` member. A 1 MB ``.npz`` that inflates to 1 GiB costs two rows for ``samples=2``.

    Refused with a one-line :class:`ValidationError` naming the file and the fix:

    * object arrays (they need pickle, which is never allowed) and files that are not numpy's
      ``.npy`` / ``.npz`` (a pickle, a zip of something else);
    * arrays whose needed rows, all inputs together, exceed ``KERASCUT_MAX_DATA_BYTES``
      (default 2 GiB; Fortran-ordered arrays count whole, their rows are not contiguous);
    * arrays of the wrong shape, dtype or number of rows for the source's inputs.
    """
    import zipfile

    text = os.fspath(data)
    shown = _short_text(text)
    local = _data_path(text)
    specs = _input_specs(model)
    names = [name for name, _, _ in specs]
    if not local.is_file():
        raise ValidationError(f"Expected `data` to be an existing .npz or .npy file. Received {shown}.")
    limit = _max_data_bytes()
    unreadable = (OSError, EOFError, ValueError, zipfile.BadZipFile, NotImplementedError, RuntimeError)
    try:
        with open(local, "rb") as handle:
            magic = handle.read(6)
            if magic == _NPY_MAGIC:
                handle.seek(0)
                if len(specs) != 1:
                    raise ValidationError(
                        f"Expected `data` to be an .npz with one array for each of the source's inputs "
                        f"{names}. Received one .npy array; save the inputs with np.savez(path, **arrays)."
                    )
                header = _npy_header(handle, local.name, shown)
                _check_headers([header], specs, samples, limit, shown)
                return [_read_rows(handle, header, samples, specs[0][2], shown)]
            if magic[:4] not in _ZIP_MAGICS:
                raise ValidationError(
                    f"Expected `data` to be a .npz or .npy file written by numpy. Received {shown}, "
                    "which is neither (pickles are refused); save numeric arrays with np.savez or np.save."
                )
            handle.seek(0)
            with zipfile.ZipFile(handle) as archive:
                members = _npz_members(archive, names, shown)
                streams = [archive.open(member) for member in members]
                try:
                    headers = [_npy_header(s, m, shown) for s, m in zip(streams, members, strict=True)]
                    _check_headers(headers, specs, samples, limit, shown)
                    return [
                        _read_rows(stream, header, samples, dtype, shown)
                        for stream, header, (_, _, dtype) in zip(streams, headers, specs, strict=True)
                    ]
                finally:
                    for stream in streams:
                        stream.close()
    except unreadable as exc:
        raise ValidationError(
            f"Expected `data` to be a .npz or .npy file written by numpy. Received {shown}: {_one_line(exc)}"
        ) from None


def _short_text(text: str) -> str:
    from kerascut_core._names import short_repr

    return short_repr(text, 200)


def _data_path(text: str) -> Path:
    """The local file of ``data``: downloaded when remote; ``file://`` with a host refused."""
    if _is_remote(text):
        return _fetch(text)
    if text.startswith("file://"):
        from kerascut_core.uris import file_uri_path

        return file_uri_path(text, error=ValidationError)
    return Path(text).expanduser()


def _max_data_bytes() -> int:
    raw = os.environ.get("KERASCUT_MAX_DATA_BYTES", "").strip()
    if not raw:
        return _DEFAULT_MAX_DATA_BYTES
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise ValidationError(
            f"Expected KERASCUT_MAX_DATA_BYTES to be a positive number of bytes such as "
            f"{_DEFAULT_MAX_DATA_BYTES}. Received {_short_text(raw)}; fix or unset it."
        )
    return value


def _npz_members(archive: Any, names: list[str], shown: str) -> list[str]:
    """The ``.npz`` members holding the source's inputs, in input order (as ``np.load`` names them)."""
    members = {n[: -len(".npy")] if n.endswith(".npy") else n: n for n in archive.namelist()}
    keys = list(members)
    if all(n in members for n in names):
        chosen = names
    elif len(keys) == len(names) and all(f"arr_{i}" in members for i in range(len(names))):
        chosen = [f"arr_{i}" for i in range(len(names))]
    elif len(names) == 1 and len(keys) == 1:
        chosen = keys
    else:
        from kerascut_core._names import format_options

        raise ValidationError(
            f"Expected `data` to hold arrays named after the source's inputs {names}. "
            f"Received arrays [{format_options(keys)}] in {shown}; rename them, or save them in input "
            "order as arr_0, arr_1, ..."
        )
    for key in chosen:
        if not members[key].endswith(".npy"):
            raise ValidationError(
                f"Expected `data` to be an .npz written by np.savez. Received {shown} whose member "
                f"{_short_text(members[key])} is not a .npy array; save the inputs with np.savez(path, **arrays)."
            )
    return [members[key] for key in chosen]


@dataclass(frozen=True)
class _NpyHeader:
    label: str
    shape: tuple[int, ...]
    fortran: bool
    dtype: Any


def _npy_header(stream: Any, label: str, shown: str) -> _NpyHeader:
    """Shape, order and dtype of one ``.npy`` stream, read without its data."""
    import numpy as np

    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        raise ValidationError(
            f"Expected `data` arrays in .npy format 1.0 or 2.0 (numeric arrays). Received format "
            f"{version[0]}.{version[1]} for {_short_text(label)} in {shown}; save numeric arrays with np.savez."
        )
    if dtype.hasobject:
        raise ValidationError(
            f"Expected `data` to hold numeric arrays. Received an object array {_short_text(label)} "
            f"in {shown}: object arrays need pickle, and pickles are refused; save numeric arrays, "
            "e.g. np.savez(path, image=x.astype('float32'))."
        )
    return _NpyHeader(label, tuple(int(d) for d in shape), bool(fortran), dtype)


def _check_headers(
    headers: list[_NpyHeader], specs: list[tuple[str, tuple[int | None, ...], str]], samples: int,
    limit: int, shown: str,
) -> None:
    """Rows, shapes and dtypes against the source's inputs, and the bytes to read against ``limit``."""
    import numpy as np

    rows = {h.shape[0] if h.shape else 0 for h in headers}
    if len(rows) != 1 or 0 in rows:
        raise ValidationError(
            f"Expected every array in `data` to have the same, non-zero number of rows. Received {sorted(rows)}."
        )
    needed = 0
    for header, (name, shape, dtype) in zip(headers, specs, strict=True):
        if len(header.shape) != len(shape) or any(
            d is not None and d != a for d, a in zip(shape[1:], header.shape[1:], strict=True)
        ):
            raise ValidationError(
                f"Expected `data` for input {name!r} to have shape {_shape_text((None, *shape[1:]))}. "
                f"Received shape {_shape_text(header.shape)}."
            )
        if not np.can_cast(header.dtype, np.dtype(dtype), casting="same_kind"):
            raise ValidationError(
                f"Expected `data` for input {name!r} to have dtype {dtype}. Received {header.dtype}."
            )
        needed += _bytes_to_read(header, samples)
    if needed > limit:
        raise ValidationError(
            f"Expected `data` to need at most {limit:,} bytes (KERASCUT_MAX_DATA_BYTES) for "
            f"{samples} sample(s). Received arrays in {shown} that need {needed:,} bytes; use fewer "
            "samples or smaller arrays (Fortran-ordered arrays are read whole: save them with "
            "np.ascontiguousarray), or raise KERASCUT_MAX_DATA_BYTES."
        )


def _bytes_to_read(header: _NpyHeader, samples: int) -> int:
    row = math.prod(header.shape[1:]) * header.dtype.itemsize
    whole = header.fortran and len(header.shape) > 1
    return header.shape[0] * row if whole else min(samples, header.shape[0]) * row


def _read_rows(stream: Any, header: _NpyHeader, samples: int, dtype: str, shown: str) -> Any:
    """The first ``samples`` rows of the array whose header was just read from ``stream``."""
    import numpy as np

    size = _bytes_to_read(header, samples)
    buffer = bytearray(size)
    view, done = memoryview(buffer), 0
    while done < size:
        got = stream.readinto(view[done:])
        if not got:
            raise ValidationError(
                f"Expected `data` array {_short_text(header.label)} in {shown} to hold "
                f"{_shape_text(header.shape)} values. Received a file that ends early (truncated); "
                "save it again."
            )
        done += got
    rows = min(samples, header.shape[0])
    if header.fortran and len(header.shape) > 1:
        whole = np.frombuffer(buffer, dtype=header.dtype).reshape(header.shape[::-1]).transpose()
        array = np.ascontiguousarray(whole[:rows])
    else:
        array = np.frombuffer(buffer, dtype=header.dtype).reshape((rows, *header.shape[1:]))
    return array.astype(dtype, copy=False)


def _shape_text(shape: Iterable[int | None]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


# ---------------------------------------------------------------------------------------------
# running models


def _forward(
    model: Any,
    names: Sequence[str] | None = None,
    *,
    graph: bool = False,
    jit_compile: bool = False,
) -> Callable[[list[Any]], list[Any]]:
    """``f(list of input arrays) -> list of output arrays`` for one batch, in inference mode.

    Outputs come in the order of ``names`` when the model returns a dict (candidates cut with a
    dict ``end``), else in the model's own order. ``graph=True`` traces the call with
    ``tf.function`` (as a SavedModel runs), with XLA when ``jit_compile``; the default runs
    eagerly, layer by layer.
    """
    import keras

    struct = _keras_api.inputs_struct(model)
    position = {id(t): i for i, t in enumerate(model.inputs)}  # arrays come in this order

    def call(arrays: list[Any]) -> Any:
        inputs: Any = list(arrays)
        if isinstance(struct, dict):
            inputs = {key: arrays[position[id(t)]] for key, t in struct.items()}
        elif len(arrays) == 1 and not isinstance(struct, list):
            inputs = arrays[0]
        return model(inputs, training=False)

    if graph or jit_compile:
        import tensorflow as tf

        call = tf.function(call, reduce_retracing=True, jit_compile=jit_compile)

    def forward(arrays: list[Any]) -> list[Any]:
        return [keras.ops.convert_to_numpy(x) for x in _flatten_outputs(call(list(arrays)), names)]

    return forward


def _flatten_outputs(result: Any, names: Sequence[str] | None) -> list[Any]:
    if isinstance(result, dict):
        if names is not None and set(result) == set(names):
            return [result[n] for n in names]
        return list(result.values())
    if isinstance(result, (list, tuple)):
        return list(result)
    return [result]


def _run_batched(
    forward: Callable[[list[Any]], list[Any]],
    arrays: list[Any],
    batch_size: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[Any]:
    """Run ``forward`` over the rows of ``arrays`` in batches and concatenate each output."""
    import numpy as np

    n = len(arrays[0])
    parts: list[list[Any]] = []
    for lo in range(0, n, batch_size):
        parts.append(forward([a[lo : lo + batch_size] for a in arrays]))
        if progress is not None:
            progress(min(lo + batch_size, n), n)
    return [np.concatenate([p[i] for p in parts], axis=0) for i in range(len(parts[0]))]


# ---------------------------------------------------------------------------------------------
# numbers


def _check_numbers(run: _Run, model: Any, plan: Any, starts: list[Any], ends: list[Any]) -> None:
    """Feed the start activations to the candidate and compare its outputs with the ends."""
    try:
        produced = _run_batched(
            _forward(model, names=list(plan.outputs)), starts, run.batch_size, run.reporter("candidate")
        )
    except Exception as exc:  # a candidate that cannot run is a verdict, not a crash
        run.fail(f"the candidate could not run on the source's start activations: {_one_line(exc)}")
        return
    run.outputs = _compare_outputs(plan, produced, ends, run.atol, run.rtol, run)


def _keras_format(run: _Run, model: Any, candidate: Any) -> FormatCheck:
    """The ``.keras`` row of the formats: the numbers above, from the artifact's bytes."""
    return FormatCheck(
        format="keras",
        location=str(candidate),
        origin="artifact",
        max_abs_diff=_max(o.max_abs_diff for o in run.outputs) if run.outputs else None,
        passed=model is not None and bool(run.outputs) and all(o.passed for o in run.outputs),
    )


def _compare(actual: Any, expected: Any, atol: float, rtol: float) -> tuple[float, float, int, int, bool]:
    """Max abs diff, max relative diff, NaN count, Inf count and the verdict for one output."""
    import numpy as np

    actual64 = np.asarray(actual).astype(np.float64)
    expected64 = np.asarray(expected).astype(np.float64)
    nan = int(np.isnan(actual64).sum() + np.isnan(expected64).sum())
    inf = int(np.isinf(actual64).sum() + np.isinf(expected64).sum())
    if actual64.size == 0:
        return 0.0, 0.0, nan, inf, nan == 0 and inf == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.abs(actual64 - expected64)
        scale = np.abs(expected64)
        rel = np.where(diff == 0, 0.0, diff / scale)
    max_abs = float(np.nan if np.isnan(diff).any() else diff.max())
    max_rel = float(np.nan if np.isnan(rel).any() else rel.max())
    within = bool(np.all(diff <= atol + rtol * scale))
    return max_abs, max_rel, nan, inf, within and nan == 0 and inf == 0


def _compare_outputs(
    plan: Any, produced: list[Any], ends: list[Any], atol: float, rtol: float, run: _Run
) -> list[OutputCheck]:
    rows = []
    if len(produced) != len(ends):
        run.fail(f"Expected the candidate to return {len(ends)} outputs. Received {len(produced)}.")
    for (name, address), actual, expected in zip(plan.outputs.items(), produced, ends, strict=False):
        shape = [None, *expected.shape[1:]]
        if actual.shape != expected.shape:
            run.fail(
                f"output {name!r}: expected shape {_shape_text(shape)}, received "
                f"{_shape_text([None, *actual.shape[1:]])}"
            )
            rows.append(
                OutputCheck(
                    name=name, address=address, shape=shape, dtype=str(actual.dtype),
                    max_abs_diff=math.inf, max_rel_diff=math.inf, passed=False,
                )
            )
            continue
        max_abs, max_rel, nan, inf, ok = _compare(actual, expected, atol, rtol)
        if nan or inf:
            run.fail(f"output {name!r}: {nan} NaN and {inf} Inf values (never allowed)")
        elif not ok:
            run.fail(
                f"output {name!r}: max abs diff {max_abs:.3g} (max rel diff {max_rel:.3g}) "
                f"exceeds atol={atol:g}, rtol={rtol:g}"
            )
        rows.append(
            OutputCheck(
                name=name, address=address, shape=shape, dtype=str(actual.dtype),
                max_abs_diff=max_abs, max_rel_diff=max_rel, nan_count=nan, inf_count=inf, passed=ok,
            )
        )
    return rows


# ---------------------------------------------------------------------------------------------
# structure


def _check_structure(
    model: Any,
    source: Any,
    plan: Any,
    *,
    expected_inputs: list[Any],
    expected_outputs: list[Any],
    matches: list[tuple[str, Any, Any]],
) -> StructureCheck:
    """Shapes and dtypes of the candidate's inputs and outputs against the probe's tensors at
    the same addresses, the model's dtype policy, and each matched layer's dtype policy."""
    check = StructureCheck()
    if model is None:
        check.problems.append("structure not checked: the candidate did not load")
        return check
    actual_outputs = _model_outputs(model, list(plan.outputs))
    pairs = [
        ("input", address, address, exp, act)
        for address, exp, act in _zip_longest(plan.inputs, expected_inputs, list(model.inputs))
    ]
    for item, exp, act in _zip_longest(list(plan.outputs.items()), expected_outputs, actual_outputs):
        name, address = item if item is not None else (None, None)
        pairs.append(("output", name, address, exp, act))
    for role, name, address, expected, actual in pairs:
        row = TensorCheck(
            role=role,
            name=str(name if name is not None else "(extra)"),
            address=str(address if address is not None else "(none)"),
            expected_shape=None if expected is None else list(expected.shape),
            actual_shape=None if actual is None else list(actual.shape),
            expected_dtype=None if expected is None else str(expected.dtype),
            actual_dtype=None if actual is None else str(actual.dtype),
            passed=False,
        )
        row.passed = (
            expected is not None
            and actual is not None
            and row.expected_shape == row.actual_shape
            and row.expected_dtype == row.actual_dtype
        )
        if not row.passed:
            check.problems.append(
                f"{role} {row.name!r}: expected {_shape_text(row.expected_shape or [])} "
                f"{row.expected_dtype}, received {_shape_text(row.actual_shape or [])} {row.actual_dtype}"
                if expected is not None and actual is not None
                else f"{role} {row.name!r}: "
                + ("missing from the candidate" if actual is None else "not in the cut spec")
            )
        check.tensors.append(row)
    check.expected_dtype_policy = _policy(source)
    check.actual_dtype_policy = _policy(model)
    if check.expected_dtype_policy != check.actual_dtype_policy:
        check.problems.append(
            f"dtype policy: expected {check.expected_dtype_policy!r}, received {check.actual_dtype_policy!r}"
        )
    for address, layer, match in matches:
        if match is not None and _policy(layer) != _policy(match):
            check.problems.append(
                f"layer {address!r}: dtype policy {_policy(layer)!r}, source has {_policy(match)!r}"
            )
    check.passed = not check.problems
    return check


def _zip_longest(*seqs: Sequence[Any]) -> list[tuple[Any, ...]]:
    size = max(len(s) for s in seqs)
    return [tuple(s[i] if i < len(s) else None for s in seqs) for i in range(size)]


def _model_outputs(model: Any, names: Sequence[str]) -> list[Any]:
    """The candidate's output KerasTensors, in ``names`` order when it returns a dict."""
    struct = _keras_api.outputs_struct(model)
    if isinstance(struct, dict):
        if set(struct) == set(names):
            return [struct[n] for n in names]
        return list(struct.values())
    return list(model.outputs)


def _policy(obj: Any) -> str | None:
    policy = getattr(obj, "dtype_policy", None)
    return None if policy is None else str(getattr(policy, "name", policy))


# ---------------------------------------------------------------------------------------------
# weights


def _layers(model: Any, within: str = "") -> list[tuple[str, Any]]:
    """Every non-model layer with its path; nested models are walked (``outer/inner``)."""
    import keras

    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model) and hasattr(layer, "layers"):
            found += _layers(layer, flat_name(layer.name, within=within))
        else:
            found.append((flat_name(layer.name, within=within), layer))
    return found


def _match_layers(model: Any, source: Any, kept: set[int] | None) -> list[tuple[str, Any, Any]]:
    """``(path, candidate layer, source layer or None)`` for every layer of the candidate.

    A candidate layer matches the source layer, in order of preference, with:

    1. the same path;
    2. the same path written with ``_`` for ``/`` (a cut that inlines nested models renames a
       layer whose name an earlier kept layer already has after its address);
    3. the same bare name (``block_6_expand`` is ``mobilenetv2/block_6_expand`` inlined); when
       several source layers have it, the first one not matched yet, layers the cut keeps
       first, in the source's order.

    Each source layer matches at most one candidate layer.
    """
    layers = _layers(source)
    by_path = {address: layer for address, layer in layers}
    by_flat = {layer_name(address): layer for address, layer in layers}
    by_leaf: dict[str, list[Any]] = {}
    for address, layer in layers:
        by_leaf.setdefault(leaf(address), []).append(layer)
    if kept is not None:
        for options in by_leaf.values():
            options.sort(key=lambda layer: id(layer) not in kept)  # stable: source order kept
    used: set[int] = set()
    found = []
    for address, layer in _layers(model):
        match = by_path.get(address)
        if match is None:
            match = by_flat.get(address)
        if match is None or id(match) in used:
            match = next((o for o in by_leaf.get(leaf(address), []) if id(o) not in used), None)
        if match is not None:
            used.add(id(match))
        found.append((address, layer, match))
    return found


_AUTO_NAMED = re.compile(r"^variable(_\d+)?$")


def _variables(layer: Any) -> list[tuple[str, Any]]:
    """(key, variable) for a layer; the key is the variable name, ``name#k`` when repeated.

    A weight created without a name is called ``variable_<n>`` with a process-wide counter
    (ConvNeXt's layer scales), so the same weight has another name after a reload: such names
    become ``variable``, told apart by their order in the layer.
    """
    seen: dict[str, int] = {}
    out = []
    for var in layer.weights:
        name = "variable" if _AUTO_NAMED.match(var.name) else var.name
        k = seen.get(name, 0)
        seen[name] = k + 1
        out.append((name if k == 0 else f"{name}#{k}", var))
    return out


def _kept_layers(source: Any, plan: Any) -> set[int] | None:
    """``id`` of each source layer the cut must keep: the ops between its inputs and outputs."""
    try:
        from kerascut_core.surgery import graph_view

        view = graph_view(source)
        stop = {view.resolve(a) for a in plan.inputs}
        stack = [view.resolve(a) for a in plan.outputs.values()]
    except Exception:  # the plan speaks addresses the view should know; if not, skip the check
        return None
    seen: set[int] = set()
    kept: set[int] = set()
    while stack:
        tensor = stack.pop()
        if tensor in seen or tensor in stop:
            continue
        seen.add(tensor)
        op = view.producer(tensor)
        kept.add(id(op.operation))
        stack.extend(op.inputs)
    return kept


def _check_weights(
    source: Any, kept_layers: set[int] | None, matches: list[tuple[str, Any, Any]]
) -> WeightCheck:
    """Bitwise equality of every candidate variable with its source counterpart.

    Variables are matched by layer (see :func:`_match_layers`) and variable name. A candidate
    variable with no counterpart, or whose counterpart lies outside the cut, fails; so does a
    variable of a layer the cut keeps that the candidate lacks.
    """
    import numpy as np

    source_vars: dict[int, tuple[str, Any]] = {}
    for address, layer in _layers(source):
        for key, var in _variables(layer):
            source_vars.setdefault(id(var), (f"{address}/{key}", var))
    expected: dict[int, str] = {}
    if kept_layers is not None:
        for address, layer in _layers(source):
            if id(layer) in kept_layers:
                for key, var in _variables(layer):
                    expected.setdefault(id(var), f"{address}/{key}")

    check = WeightCheck(
        source_variables=len(source_vars),
        source_params=sum(_size(v) for _, v in source_vars.values()),
    )
    matched: set[int] = set()
    for address, layer, counterpart in matches:
        counterpart_vars = dict(_variables(counterpart)) if counterpart is not None else {}
        for key, var in _variables(layer):
            label = f"{address}/{key}"
            source_var = counterpart_vars.get(key)
            if source_var is None:
                check.unmatched.append(label)
                continue
            matched.add(id(source_var))
            a = np.asarray(var.numpy())
            b = np.asarray(source_var.numpy())
            if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
                check.mismatched.append(label)
            if kept_layers is not None and id(source_var) not in expected:
                check.unmatched.append(f"{label} (outside the cut)")
    check.missing = [label for vid, label in expected.items() if vid not in matched]
    check.variables_kept = len(matched)
    check.params_kept = sum(_size(source_vars[v][1]) for v in matched if v in source_vars)
    check.variables_dropped = check.source_variables - check.variables_kept
    check.params_dropped = check.source_params - check.params_kept
    check.passed = not (check.mismatched or check.unmatched or check.missing)
    return check


def _size(var: Any) -> int:
    return int(math.prod(var.shape))


def _weight_failures(check: WeightCheck) -> list[str]:
    out = []
    for label, names, what in (
        ("not bitwise equal to the source", check.mismatched, "variable"),
        ("with no counterpart in the source's cut", check.unmatched, "variable"),
        ("kept by the cut but missing from the candidate", check.missing, "source variable"),
    ):
        if names:
            shown = ", ".join(repr(n) for n in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            out.append(f"{len(names)} {what}(s) {label}: {shown}")
    return out


# ---------------------------------------------------------------------------------------------
# formats


def _check_saved_model(
    model: Any,
    candidate: str,
    candidate_path: Path,
    saved_model: str | os.PathLike[str] | None,
    plan: Any,
    starts: list[Any],
    ends: list[Any],
    run: _Run,
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
            return [x.numpy() for x in _flatten_outputs(result, names)]

        produced = _run_batched(serve, starts, run.batch_size)
        reference = _run_batched(_forward(model, names=names, graph=True), starts, run.batch_size)
        if len(produced) != len(reference):
            raise ValidationError(
                f"Expected {len(reference)} outputs from the serving endpoint. Received {len(produced)}"
            )
        worst, worst_source, ok = 0.0, 0.0, True
        for actual, expected, end in zip(produced, reference, ends, strict=True):
            if actual.shape != expected.shape:
                raise ValidationError(
                    f"Expected an output of shape {_shape_text(expected.shape)}. "
                    f"Received {_shape_text(actual.shape)}"
                )
            max_abs, _, _, _, within = _compare(actual, expected, run.atol, run.rtol)
            worst = _max([worst, max_abs])
            worst_source = _max([worst_source, _compare(actual, end, 0.0, 0.0)[0]])
            ok = ok and within
        check.max_abs_diff = worst
        check.max_abs_diff_vs_source = worst_source
        check.passed = ok
    except Exception as exc:
        check.error = _one_line(exc)
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
        if _is_remote(text):
            path, tmp = _fetch_tree(text)
            return path, "artifact", tmp
        return Path(text.removeprefix("file://")), "artifact", None
    if _is_remote(candidate):
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
    tmp = tempfile.TemporaryDirectory(prefix="kerascut-saved-model-")
    target = Path(tmp.name) / "saved_model"
    model.export(str(target), format="tf_saved_model", verbose=False)
    return target, "exported", tmp


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


# ---------------------------------------------------------------------------------------------
# throughput (GPU)


def _throughput(
    probe: Any,
    model: Any,
    source_inputs: list[Any],
    starts: list[Any],
    jit_compile: bool,
    run: _Run,
) -> list[ThroughputRow]:
    """Items/s of the source (through the probe) and the candidate, plus two-run agreement.

    Both run as ``tf.function`` graphs (with XLA when ``jit_compile``), as a serving
    deployment would; the first two calls on the same batch must agree.
    """
    rows = []
    for label, net, arrays in (("source", probe, source_inputs), ("candidate", model, starts)):
        batch = [a[: run.batch_size] for a in arrays]
        forward = _forward(net, graph=True, jit_compile=jit_compile)
        row = _device.throughput_row(
            label, forward, batch, batch_size=len(batch[0]), jit_compile=jit_compile,
            atol=run.atol, rtol=run.rtol,
        )
        if not row.runs_agree:
            run.fail(
                f"{label}: two runs on the same batch disagree on this GPU (non-deterministic "
                "kernels); set TF_DETERMINISTIC_OPS=1 on the worker"
            )
        rows.append(row)
    return rows
