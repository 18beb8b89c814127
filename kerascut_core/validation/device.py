"""Devices for validation: discover GPUs, enable memory growth, refuse early, measure throughput.

Validation runs on whatever TensorFlow sees. On a GPU worker it first turns on memory growth
(before anything allocates), records the GPU's name and the CUDA/cuDNN build, and measures
throughput. ``require_gpu=True`` on a CPU-only machine fails here, before any model is loaded,
and the error names the work pool and the deployment that run validation on a GPU.

The pieces are small functions so that they can be tested on CPU: :func:`check_gpu` takes the
list of GPUs it checks, :func:`measure_throughput` times any callable, and :func:`runs_agree`
compares two runs' outputs.

    >>> from kerascut_core.validation import device
    >>> info = device.prepare(require_gpu=False)   # doctest: +SKIP
    >>> info.kind, info.name                        # doctest: +SKIP
    ('cpu', 'x86_64')
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any

from kerascut_core.errors import DeviceError
from kerascut_core.pipeline_names import GPU_POOL
from kerascut_core.pipeline_names import VALIDATE_DEPLOYMENT as GPU_DEPLOYMENT
from kerascut_core.validation.report import DeviceInfo, ThroughputRow

__all__ = [
    "GPU_DEPLOYMENT",
    "GPU_POOL",
    "check_gpu",
    "device_info",
    "enable_memory_growth",
    "list_gpus",
    "measure_throughput",
    "prepare",
    "runs_agree",
    "throughput_row",
]

# GPU_POOL and GPU_DEPLOYMENT (the Prefect work pool whose workers have a GPU, and the
# deployment that validates there) are re-exported from kerascut_core.pipeline_names.


def list_gpus() -> list[Any]:
    """The GPUs TensorFlow can see (``tf.config.list_physical_devices("GPU")``)."""
    import tensorflow as tf

    return list(tf.config.list_physical_devices("GPU"))


def check_gpu(gpus: Sequence[Any], *, build_info: dict[str, Any] | None = None) -> None:
    """Raise :class:`DeviceError` when ``gpus`` is empty, naming the pool that has GPUs.

    The message says why no GPU is visible where it can tell: a TensorFlow build without CUDA,
    or ``CUDA_VISIBLE_DEVICES`` hiding the devices.
    """
    if gpus:
        return
    reasons = []
    if build_info is not None and not build_info.get("is_cuda_build", False):
        reasons.append("TensorFlow was built without CUDA, as tensorflow-cpu is")
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    if hidden is not None and hidden.strip() in ("", "-1"):
        reasons.append(f"CUDA_VISIBLE_DEVICES={hidden!r} hides every GPU")
    why = f": {'; '.join(reasons)}" if reasons else ""
    raise DeviceError(
        "Expected a GPU because require_gpu=True. "
        f"Received a machine where TensorFlow sees no GPU{why}. "
        f"Run validation on a worker of the '{GPU_POOL}' work pool "
        f"(deployment '{GPU_DEPLOYMENT}'), or pass require_gpu=False to validate on CPU."
    )


def enable_memory_growth(gpus: Sequence[Any]) -> bool:
    """Turn on memory growth for every GPU; False when the runtime was already initialized.

    TensorFlow only accepts this before the first allocation on a device, so validation calls it
    before loading any model. When another part of the process already initialized the GPUs,
    the setting cannot change any more; that is reported, not raised.
    """
    if not gpus:
        return False
    import tensorflow as tf

    enabled = True
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # "Physical devices cannot be modified after being initialized"
            enabled = enabled and bool(tf.config.experimental.get_memory_growth(gpu))
    return enabled


def device_info(gpus: Sequence[Any], *, memory_growth: bool = False) -> DeviceInfo:
    """What the report records: CPU or the GPU's name, plus TF/Keras/CUDA/cuDNN versions."""
    import keras
    import tensorflow as tf

    build = dict(tf.sysconfig.get_build_info())
    name = _cpu_name()
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0]) or {}
        name = str(details.get("device_name") or gpus[0].name)
    return DeviceInfo(
        kind="gpu" if gpus else "cpu",
        name=name,
        gpu_count=len(gpus),
        tensorflow_version=tf.__version__,
        keras_version=keras.__version__,
        cuda_version=_text(build.get("cuda_version")),
        cudnn_version=_text(build.get("cudnn_version")),
        is_cuda_build=bool(build.get("is_cuda_build", False)),
        memory_growth=memory_growth,
    )


def prepare(*, require_gpu: bool = False) -> DeviceInfo:
    """Check and set up the device before any model is loaded; return what the report records."""
    import tensorflow as tf

    gpus = list_gpus()
    if require_gpu:
        check_gpu(gpus, build_info=dict(tf.sysconfig.get_build_info()))
    growth = enable_memory_growth(gpus)
    return device_info(gpus, memory_growth=growth)


def measure_throughput(
    forward: Callable[[Any], Any],
    batch: Any,
    *,
    batch_size: int,
    repeats: int = 5,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Items per second of ``forward(batch)``, the median of ``repeats`` timed calls.

    ``forward`` must block until its result is ready (e.g. return a numpy array), otherwise an
    asynchronous GPU call would be timed at launch. ``warmup`` calls come first so that tracing
    and autotuning are not timed.
    """
    if repeats < 1:
        raise ValueError(f"Expected repeats >= 1. Received repeats={repeats}.")
    for _ in range(warmup):
        forward(batch)
    durations = []
    for _ in range(repeats):
        started = clock()
        forward(batch)
        durations.append(max(clock() - started, 1e-9))
    durations.sort()
    return batch_size / durations[len(durations) // 2]


def runs_agree(
    first: Sequence[Any], second: Sequence[Any], *, atol: float = 0.0, rtol: float = 0.0
) -> bool:
    """True when two runs returned the same arrays: bitwise by default, else within tolerance.

    NaN never agrees with anything, not even another NaN.
    """
    import numpy as np

    if len(first) != len(second):
        return False
    for a, b in zip(first, second, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if np.isnan(a).any() if a.dtype.kind == "f" else False:
            return False
        if atol == 0 and rtol == 0:
            if a.tobytes() != b.tobytes():
                return False
        elif not np.allclose(a, b, atol=atol, rtol=rtol, equal_nan=False):
            return False
    return True


def throughput_row(
    label: str,
    forward: Callable[[Any], Sequence[Any]],
    batch: Any,
    *,
    batch_size: int,
    jit_compile: bool,
    repeats: int = 5,
    atol: float = 0.0,
    rtol: float = 0.0,
) -> ThroughputRow:
    """Throughput of one model plus a determinism check: two runs on the same batch agree."""
    first = forward(batch)
    second = forward(batch)
    items_per_s = measure_throughput(forward, batch, batch_size=batch_size, repeats=repeats, warmup=0)
    return ThroughputRow(
        model=label,
        batch_size=batch_size,
        jit_compile=jit_compile,
        items_per_s=items_per_s,
        runs_agree=runs_agree(first, second, atol=atol, rtol=rtol),
    )


def _cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else the machine type."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
