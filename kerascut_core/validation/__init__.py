"""Validation: prove that a staged candidate computes what the source computed at the cut.

:func:`validate` checks the artifact that will be published, reloaded from its bytes, never the
in-memory model that produced it:

1. **device** - memory growth on GPUs, and ``require_gpu=True`` refused at once on a CPU-only
   machine, before any model is loaded (:mod:`kerascut_core.validation.device`);
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
candidate path that does not exist, sample data of the wrong shape, inputs the source does not
accept, named by layer) raise :class:`~kerascut_core.errors.ValidationError`. A check that could
not run (the candidate did not reload) is reported as "not run", never as a difference.

The modules, one concept each: ``run`` (:func:`validate`, the phases in order), ``state`` (what
one run found so far), ``locations`` (paths and URIs, fetched when remote), ``inputs`` (seeded
random inputs), ``sizes`` (sizes for unknown input dimensions by symbolic shape inference, and
which layer refuses a size), ``sample_data`` (user ``.npy`` / ``.npz`` inputs, read bounded), ``forward``
(the probe pass, batched forwards), ``comparisons`` (per-output diffs, NaN/Inf), ``weights``
(bitwise weight fidelity by layer path), ``structure`` (shapes, dtypes, dtype policies),
``formats`` (``.keras`` reload, SavedModel export and reload), ``device`` (GPU checks, memory
growth, throughput, run agreement), ``report`` (:class:`ValidationReport`, pure Python) and
``messages`` (one-line reasons). Importing this package is cheap: TensorFlow and Keras are
imported when a function that needs them is first called.

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

from typing import TYPE_CHECKING

from kerascut_core._lazy import lazy_exports

if TYPE_CHECKING:
    from kerascut_core.validation.formats import FORMATS
    from kerascut_core.validation.report import (
        DeviceInfo,
        FormatCheck,
        OutputCheck,
        StructureCheck,
        TensorCheck,
        ThroughputRow,
        Timings,
        ValidationReport,
        WeightCheck,
    )
    from kerascut_core.validation.run import validate

# public name -> module that defines it (imported on first access). No module is named like a
# name it exports, so importing a module never shadows a function of the same name.
_LAZY: dict[str, str] = {
    "DeviceInfo": "kerascut_core.validation.report",
    "FORMATS": "kerascut_core.validation.formats",
    "FormatCheck": "kerascut_core.validation.report",
    "OutputCheck": "kerascut_core.validation.report",
    "StructureCheck": "kerascut_core.validation.report",
    "TensorCheck": "kerascut_core.validation.report",
    "ThroughputRow": "kerascut_core.validation.report",
    "Timings": "kerascut_core.validation.report",
    "ValidationReport": "kerascut_core.validation.report",
    "WeightCheck": "kerascut_core.validation.report",
    "validate": "kerascut_core.validation.run",
}

__all__ = [
    "FORMATS",
    "DeviceInfo",
    "FormatCheck",
    "OutputCheck",
    "StructureCheck",
    "TensorCheck",
    "ThroughputRow",
    "Timings",
    "ValidationReport",
    "WeightCheck",
    "validate",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
