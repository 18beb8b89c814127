"""The validation report: what was checked, on which device, with which figures, and the verdict.

A :class:`ValidationReport` is a pydantic model. ``report.model_dump(mode="json")`` is what the
manifest stores under ``validation``; ``report.to_markdown()`` is what a Prefect artifact shows.
Pure Python: no TensorFlow import.

    >>> report = ValidationReport(passed=True, max_abs_diff=0.0, candidate="model.keras")
    >>> report.to_markdown().splitlines()[0]
    '## kerascut validation: PASSED'
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from kerascut_core.text import for_markdown, for_terminal

__all__ = [
    "DeviceInfo",
    "ExportWeightCheck",
    "FormatCheck",
    "OutputCheck",
    "StructureCheck",
    "TensorCheck",
    "ThroughputRow",
    "Timings",
    "ValidationReport",
    "WeightCheck",
]


def _json_number(value: float | None) -> float | str | None:
    # JSON has no NaN or Infinity: write them as the strings "nan" / "inf" / "-inf".
    if value is None or math.isfinite(value):
        return value
    return str(value)


#: A float that survives ``model_dump(mode="json")`` and ``json.dumps`` even when not finite.
Number = Annotated[float, PlainSerializer(_json_number, when_used="json")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OutputCheck(_Model):
    """The numbers of one candidate output against the source tensor at the same address."""

    name: str
    address: str
    shape: list[int | None]
    dtype: str
    max_abs_diff: Number
    max_rel_diff: Number
    nan_count: int = 0
    inf_count: int = 0
    passed: bool
    noise: Number | None = Field(
        default=None,
        description=(
            "onnx, litert: the max abs diff of a fresh export of the candidate, run in the same "
            "runtime on the same inputs (the runtime's own noise)"
        ),
    )
    atol: float | None = Field(default=None, description="onnx, litert: the tolerance used for this output")
    rtol: float | None = None
    tolerance_reason: str | None = Field(default=None, description="onnx, litert: why the tolerance is what it is")


class ExportWeightCheck(_Model):
    """The weights stored in an exported file against those of a fresh export of the candidate."""

    reference: str = Field(description="what the weights were compared with")
    compared: bool = Field(default=False, description="False when there was nothing to compare with (reason)")
    reason: str | None = None
    tensors: int = Field(default=0, description="weight tensors in the file")
    params: int = 0
    bitwise_equal: int = Field(default=0, description="tensors bitwise equal to the fresh export's")
    within_rounding: list[str] = Field(
        default_factory=list, description="tensors a few float32 ulps from the fresh export's (constant folding)"
    )
    differing: list[str] = Field(default_factory=list)
    extra: list[str] = Field(default_factory=list, description="tensors the fresh export does not have")
    missing: list[str] = Field(default_factory=list, description="tensors of the fresh export the file lacks")
    max_abs_diff: Number = 0.0
    passed: bool = False

    def summary(self) -> str:
        """One line: what the weights were compared with and what was found."""
        if not self.compared:
            return f"weights not compared ({self.reason or self.reference})"
        found = f"{self.bitwise_equal} of {self.tensors} tensors ({self.params:,} values) bitwise equal"
        for label, names in (("within rounding", self.within_rounding), ("DIFFER", self.differing),
                             ("extra", self.extra), ("MISSING", self.missing)):
            if names:
                found += f", {len(names)} {label}"
        return f"weights vs {self.reference}: {found}"


class TensorCheck(_Model):
    """The shape and dtype of one candidate input or output against the source tensor."""

    role: Literal["input", "output"]
    name: str
    address: str
    expected_shape: list[int | None] | None
    actual_shape: list[int | None] | None
    expected_dtype: str | None
    actual_dtype: str | None
    passed: bool


class StructureCheck(_Model):
    """Inputs, outputs and dtype policies of the candidate against the source at the cut."""

    tensors: list[TensorCheck] = Field(default_factory=list)
    expected_dtype_policy: str | None = None
    actual_dtype_policy: str | None = None
    problems: list[str] = Field(default_factory=list)
    passed: bool = False


class WeightCheck(_Model):
    """Bitwise weight fidelity: candidate variables against source variables, by layer path."""

    source_variables: int = 0
    source_params: int = 0
    variables_kept: int = 0
    params_kept: int = 0
    variables_dropped: int = 0
    params_dropped: int = 0
    mismatched: list[str] = Field(default_factory=list)
    unmatched: list[str] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)
    passed: bool = False


class FormatCheck(_Model):
    """One published format, reloaded and run on the same start activations."""

    format: str
    location: str
    origin: Literal["artifact", "exported"]
    max_abs_diff: Number | None = Field(
        default=None,
        description=(
            "against the reference: the reloaded .keras candidate run the same way (saved_model), "
            "the source's activations (onnx, litert)"
        ),
    )
    max_abs_diff_vs_source: Number | None = Field(
        default=None, description="against the source's activations (eager), for information"
    )
    runtime: str | None = Field(default=None, description="what ran it (onnxruntime and its provider, LiteRT)")
    atol: float | None = Field(
        default=None, description="the format's loosest output tolerance (onnx, litert; each output has its own)"
    )
    rtol: float | None = None
    tolerance_reason: str | None = Field(default=None, description="why the format's tolerance is what it is")
    outputs: list[OutputCheck] = Field(
        default_factory=list, description="each output by name against the source (onnx, litert)"
    )
    weights: ExportWeightCheck | None = Field(
        default=None, description="the file's weights against a fresh export of the candidate (onnx, litert)"
    )
    error: str | None = None
    passed: bool = False


class DeviceInfo(_Model):
    """The device validation ran on and the software it ran with."""

    kind: Literal["cpu", "gpu"]
    name: str
    gpu_count: int = 0
    backend: str | None = Field(default=None, description="the Keras backend validation ran on")
    backend_version: str | None = None
    tensorflow_version: str | None = None
    keras_version: str | None = None
    cuda_version: str | None = None
    cudnn_version: str | None = None
    is_cuda_build: bool = False
    memory_growth: bool = False


class ThroughputRow(_Model):
    """Items per second of one model at one batch size (measured on GPU only)."""

    model: Literal["source", "candidate"] | str
    batch_size: int
    jit_compile: bool
    items_per_s: float
    runs_agree: bool


class Timings(_Model):
    """Seconds spent in each phase; ``total`` is the whole :func:`validate` call."""

    device: float = Field(default=0.0, description="GPU checks and memory growth")
    load: float = Field(default=0.0, description="fetching the candidate, the source, plan and probe model")
    probe: float = Field(default=0.0, description="making the inputs and the probe pass over the source")
    reload: float = Field(default=0.0, description="keras.saving.load_model of the candidate's bytes")
    candidate: float = Field(default=0.0, description="structure checks, candidate pass, comparison")
    weights: float = 0.0
    formats: float = 0.0
    throughput: float = 0.0
    total: float = 0.0


class ValidationReport(_Model):
    """The verdict on one candidate, with every figure behind it.

    ``passed`` is true only when every output matched within tolerance and is finite, every
    weight is bitwise equal to the source's, the structure matches and every format agreed.
    ``failures`` lists the reasons, one line each. A check that did not run (the candidate
    did not reload) is ``None`` (``structure``, ``weights``) and reads "not run", never as a
    difference.
    """

    passed: bool
    max_abs_diff: Number
    max_rel_diff: Number = 0.0
    failures: list[str] = Field(default_factory=list)
    candidate: str
    source: str | None = None
    cut_spec: dict[str, Any] = Field(default_factory=dict)
    plan: dict[str, Any] = Field(
        default_factory=dict, description="the resolved cut (CutPlan.to_dict()) the candidate was checked against"
    )
    inputs: list[str] = Field(default_factory=list, description="addresses fed to the candidate")
    samples: int = 0
    batch_size: int = 0
    atol: float = 0.0
    rtol: float = 0.0
    seed: int = 0
    data: str | None = Field(default=None, description="user sample data; None means seeded random inputs")
    sample_dim: int | None = Field(
        default=None,
        description=(
            "the size given to the random inputs' unknown dimensions other than the batch "
            "(found by symbolic shape inference, or --sample-dim); None when there were none, or data"
        ),
    )
    outputs: list[OutputCheck] = Field(default_factory=list)
    weights: WeightCheck | None = None
    structure: StructureCheck | None = None
    formats: list[FormatCheck] = Field(default_factory=list)
    device: DeviceInfo | None = None
    throughput: list[ThroughputRow] = Field(default_factory=list)
    timings: Timings = Field(default_factory=Timings)
    kerascut_version: str | None = None
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def to_markdown(self) -> str:
        """A short markdown summary with the outputs table (for a Prefect artifact)."""
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [f"## kerascut validation: {verdict}", ""]
        lines.append(f"- candidate: {_code(self.candidate)}")
        if self.source:
            lines.append(f"- source: {_code(self.source)}")
        origin = _code(self.data) if self.data else f"seeded random inputs (seed {self.seed})"
        lines.append(
            f"- {self.samples} samples, batch size {self.batch_size}, from {origin}; "
            f"tolerance atol={self.atol:g}, rtol={self.rtol:g}"
            + (f"; unknown input dimensions sized {self.sample_dim}" if self.sample_dim else "")
        )
        if self.device is not None:
            d = self.device
            cuda = f", CUDA {d.cuda_version}, cuDNN {d.cudnn_version}" if d.kind == "gpu" else ""
            runtime = f"TensorFlow {d.tensorflow_version}"
            if d.backend not in (None, "tensorflow"):
                runtime = f"Keras backend {d.backend} {d.backend_version or '?'}"
            lines.append(f"- device: {d.kind.upper()} {for_markdown(d.name, 200)} ({runtime}{cuda})")
        lines += ["", "| output | shape | max abs diff | result |", "| --- | --- | --- | --- |"]
        for row in self.outputs:
            shape = "(" + ", ".join("None" if s is None else str(s) for s in row.shape) + ")"
            mark = "pass" if row.passed else "FAIL"
            if row.nan_count or row.inf_count:
                mark += f" ({row.nan_count} NaN, {row.inf_count} Inf)"
            lines.append(f"| {for_markdown(row.name, 200)} | {shape} | {_num(row.max_abs_diff)} | {mark} |")
        if not self.outputs:
            lines.append("| (none compared) | | | not run |")
        lines.append("")
        if self.weights is None:
            lines.append("- weights: not run")
        else:
            w = self.weights
            lines.append(
                f"- weights: {w.variables_kept} variables ({w.params_kept:,} params) kept and "
                f"bitwise {'equal' if w.passed else 'NOT equal'}; {w.variables_dropped} variables "
                f"({w.params_dropped:,} params) dropped"
            )
        if self.structure is None:
            lines.append("- structure: not run")
        else:
            lines.append(f"- structure: {'matches' if self.structure.passed else 'DIFFERS'}")
        for fmt in self.formats:
            lines.append(
                f"- format `{fmt.format}` ({fmt.origin}): "
                + ("pass" if fmt.passed else "FAIL")
                + (f", max abs diff {_num(fmt.max_abs_diff)}" if fmt.max_abs_diff is not None else "")
                + (f" (atol={fmt.atol:g}, rtol={fmt.rtol:g})" if fmt.atol is not None and fmt.rtol is not None else "")
                + (f", {fmt.runtime}" if fmt.runtime else "")
            )
            for row in fmt.outputs:
                if row.noise is not None:
                    lines.append(
                        f"  - output {for_markdown(row.name, 200)}: max abs diff {_num(row.max_abs_diff)}, "
                        f"noise {_num(row.noise)}, atol={_num(row.atol)}"
                        + (f" ({for_markdown(row.tolerance_reason, 300)})" if row.tolerance_reason else "")
                    )
            if fmt.weights is not None:
                lines.append(f"  - {for_markdown(fmt.weights.summary(), 400)}")
        for speed in self.throughput:
            lines.append(
                f"- throughput {speed.model}: {speed.items_per_s:,.1f} items/s at batch {speed.batch_size}"
                f"{' (XLA)' if speed.jit_compile else ''}; two runs "
                + ("agree" if speed.runs_agree else "DIFFER")
            )
        lines.append(f"- took {self.timings.total:.2f}s")
        if self.failures:
            lines += ["", "### Failures", ""]
            lines += [f"- {reason}" for reason in self.failures]
        return "\n".join(lines) + "\n"


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.3g}"


def _code(value: object) -> str:
    """A path or URI as an inert Markdown code span (no backtick to end it, no table break)."""
    return "`" + for_terminal(value, 400).replace("`", "'").replace("|", "\\|") + "`"
