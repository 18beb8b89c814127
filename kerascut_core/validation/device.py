"""Devices for validation: discover GPUs, enable memory growth, refuse early, measure throughput.

Validation runs on whatever the running Keras backend sees: TensorFlow's
``tf.config.list_physical_devices("GPU")`` under ``KERAS_BACKEND=tensorflow``, ``jax.devices()``
under ``KERAS_BACKEND=jax`` (TensorFlow is then never imported), and, for an ONNX artifact,
onnxruntime's CUDA execution provider (:func:`accelerators`). On a GPU worker it first turns on
memory growth (before anything allocates: ``set_memory_growth`` for TensorFlow,
``XLA_PYTHON_CLIENT_PREALLOCATE=false`` for JAX), records the GPU's name and the CUDA/cuDNN
build, and measures throughput. ``require_gpu=True`` on a machine whose backend sees no GPU
fails here, before any model is loaded, and the error names the backend, why it sees no GPU
where that can be told. (Which orchestrator queue or pool holds the GPU workers is the
orchestrator's to say: the Prefect tasks add their work pool to the message.)

The pieces are small functions so that they can be tested on CPU: :func:`gpus_in` picks the
GPUs out of any backend's device list, :func:`check_gpu` takes the list it checks,
:func:`measure_throughput` times any callable, and :func:`runs_agree` compares two runs' outputs.

    >>> from kerascut_core.validation import device
    >>> class Dev:  # what jax.devices() returns on a GPU worker, reduced to what is read
    ...     platform, device_kind = "gpu", "NVIDIA H200"
    >>> [d.device_kind for d in device.gpus_in("jax", [Dev()])]
    ['NVIDIA H200']
    >>> device.gpus_in("onnxruntime", ["CUDAExecutionProvider", "CPUExecutionProvider"])
    ['CUDAExecutionProvider']
    >>> info = device.prepare(require_gpu=False)   # doctest: +SKIP
    >>> info.kind, info.backend                     # doctest: +SKIP
    ('cpu', 'tensorflow')
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

from kerascut_core.errors import DeviceError
from kerascut_core.validation.report import DeviceInfo, ThroughputRow

__all__ = [
    "BACKENDS",
    "accelerators",
    "backend_name",
    "build_info",
    "check_gpu",
    "device_info",
    "enable_memory_growth",
    "gpus_in",
    "list_gpus",
    "measure_throughput",
    "prepare",
    "runs_agree",
    "throughput_row",
]

#: The runtimes whose accelerators can be listed, and how a message names each.
BACKENDS = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch", "onnxruntime": "onnxruntime"}
_JAX_GPU_PLATFORMS = ("gpu", "cuda", "rocm")
_ORT_GPU_PROVIDERS = ("CUDAExecutionProvider", "ROCMExecutionProvider", "TensorrtExecutionProvider")
# (CUDA runtime, cuDNN) wheels a pip-installed jax[cudaXX] uses: their versions are the build's
_NVIDIA_WHEELS = (("nvidia-cuda-runtime-cu12", "nvidia-cudnn-cu12"), ("nvidia-cuda-runtime", "nvidia-cudnn-cu13"))


def backend_name() -> str:
    """The running Keras backend (``keras.config.backend()``)."""
    import keras

    return str(keras.config.backend())


def gpus_in(backend: str, devices: Sequence[Any]) -> list[Any]:
    """The GPUs among ``devices``, as the runtime ``backend`` lists them (a pure function).

    ``tensorflow``: physical devices (already GPUs only); ``jax``: devices whose ``platform`` is
    ``gpu``/``cuda``/``rocm``; ``onnxruntime``: the GPU execution providers among the names.
    """
    if backend == "jax":
        return [d for d in devices if str(getattr(d, "platform", "")).lower() in _JAX_GPU_PLATFORMS]
    if backend == "onnxruntime":
        return [p for p in devices if p in _ORT_GPU_PROVIDERS]
    return list(devices)


def accelerators(backend: str | None = None) -> list[Any]:
    """The GPUs the runtime ``backend`` sees (default: the running Keras backend).

    ``tensorflow``: ``tf.config.list_physical_devices("GPU")``; ``jax``: the GPU devices of
    ``jax.devices()``; ``torch``: ``cuda:N`` names; ``onnxruntime``: its GPU execution
    providers (``CUDAExecutionProvider``...), for a runtime module to pass to an
    ``InferenceSession``. Importing a backend other than the running one is left to the caller.
    """
    backend = backend or backend_name()
    if backend == "jax":
        import jax

        try:
            return gpus_in("jax", jax.devices())
        except RuntimeError:  # a platform forced by JAX_PLATFORMS that is not there
            return []
    if backend == "onnxruntime":
        onnxruntime = importlib.import_module("onnxruntime")  # extra kerascut[onnx]; no stubs
        return gpus_in("onnxruntime", onnxruntime.get_available_providers())
    if backend == "torch":
        torch = importlib.import_module("torch")  # documented, not a dependency (README)
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    import tensorflow as tf

    return list(tf.config.list_physical_devices("GPU"))


def list_gpus() -> list[Any]:
    """The GPUs the running Keras backend can see (:func:`accelerators` of it)."""
    return accelerators()


def build_info(backend: str | None = None) -> dict[str, Any]:
    """``is_cuda_build``, ``cuda_version`` and ``cudnn_version`` of the backend's build.

    TensorFlow: ``tf.sysconfig.get_build_info()``. JAX: whether a CUDA plugin
    (``jax[cuda12]``/``jax[cuda13]``) is installed, with the CUDA runtime and cuDNN versions of
    the NVIDIA wheels it uses (``None`` when JAX found CUDA elsewhere).
    """
    backend = backend or backend_name()
    if backend == "tensorflow":
        import tensorflow as tf

        build = dict(tf.sysconfig.get_build_info())
        return {
            "is_cuda_build": bool(build.get("is_cuda_build", False)),
            "cuda_version": _text(build.get("cuda_version")),
            "cudnn_version": _text(build.get("cudnn_version")),
        }
    if backend == "jax":
        from kerascut_core.surgery.backends import importable

        plugins = [m for m in ("jax_plugins.xla_cuda12", "jax_plugins.xla_cuda13") if importable(m)]
        versions: dict[str, Any] = {"cuda_version": None, "cudnn_version": None}
        for runtime, cudnn in _NVIDIA_WHEELS:
            if _dist_version(runtime):
                versions = {"cuda_version": _dist_version(runtime), "cudnn_version": _dist_version(cudnn)}
                break
        return {"is_cuda_build": bool(plugins), **versions}
    return {"is_cuda_build": False, "cuda_version": None, "cudnn_version": None}


def check_gpu(
    gpus: Sequence[Any], *, build_info: dict[str, Any] | None = None, backend: str = "tensorflow"
) -> None:
    """Raise :class:`DeviceError` when ``gpus`` is empty, naming the backend and why it sees none.

    The message says why no GPU is visible where it can tell: a TensorFlow build without CUDA
    (or a JAX without its CUDA plugin), or ``CUDA_VISIBLE_DEVICES`` hiding the devices.
    """
    if gpus:
        return
    reasons = []
    if build_info is not None and not build_info.get("is_cuda_build", False):
        reasons.append(
            "jax has no CUDA plugin (install jax[cuda12])" if backend == "jax"
            else "TensorFlow was built without CUDA, as tensorflow-cpu is" if backend == "tensorflow"
            else f"{BACKENDS.get(backend, backend)} was built without CUDA"
        )
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
    if hidden is not None and hidden.strip() in ("", "-1"):
        reasons.append(f"CUDA_VISIBLE_DEVICES={hidden!r} hides every GPU")
    if backend == "jax" and os.environ.get("JAX_PLATFORMS", "").strip().lower() == "cpu":
        reasons.append("JAX_PLATFORMS='cpu' hides every GPU")
    why = f": {'; '.join(reasons)}" if reasons else ""
    raise DeviceError(
        "Expected a GPU because require_gpu=True. "
        f"Received a machine where {BACKENDS.get(backend, backend)} sees no GPU{why}. "
        "Run validation on a GPU worker (a machine whose GPU this backend can see), "
        "or pass require_gpu=False to validate on CPU."
    )


def enable_memory_growth(gpus: Sequence[Any], *, backend: str = "tensorflow") -> bool:
    """Turn on memory growth for every GPU; False when the runtime was already initialized.

    TensorFlow only accepts this before the first allocation on a device, so validation calls it
    before loading any model. When another part of the process already initialized the GPUs,
    the setting cannot change any more; that is reported, not raised. JAX reads
    ``XLA_PYTHON_CLIENT_PREALLOCATE`` once, when its backends start; :func:`prepare` sets it to
    ``false`` before that (unless the worker set it), and this reports whether it is in force.
    """
    if not gpus:
        return False
    if backend == "jax":
        return os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE", "").strip().lower() == "false"
    if backend != "tensorflow":
        return False
    import tensorflow as tf

    enabled = True
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # "Physical devices cannot be modified after being initialized"
            enabled = enabled and bool(tf.config.experimental.get_memory_growth(gpu))
    return enabled


def device_info(
    gpus: Sequence[Any],
    *,
    memory_growth: bool = False,
    backend: str = "tensorflow",
    build: dict[str, Any] | None = None,
) -> DeviceInfo:
    """What the report records: CPU or the GPU's name, the backend and its CUDA/cuDNN build."""
    import keras

    build = build if build is not None else build_info(backend)
    name = _cpu_name()
    if gpus:
        name = _gpu_name(backend, gpus[0])
    tensorflow = sys.modules.get("tensorflow") if backend == "tensorflow" else None
    return DeviceInfo(
        kind="gpu" if gpus else "cpu",
        name=name,
        gpu_count=len(gpus),
        backend=backend,
        backend_version=_backend_version(backend),
        tensorflow_version=getattr(tensorflow, "__version__", None),
        keras_version=keras.__version__,
        cuda_version=build.get("cuda_version"),
        cudnn_version=build.get("cudnn_version"),
        is_cuda_build=bool(build.get("is_cuda_build", False)),
        memory_growth=memory_growth,
    )


def prepare(*, require_gpu: bool = False) -> DeviceInfo:
    """Check and set up the device before any model is loaded; return what the report records."""
    backend = backend_name()
    if backend == "jax" and not _jax_started():
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # memory growth, JAX's way
    gpus = accelerators(backend)
    build = build_info(backend)
    if require_gpu:
        check_gpu(gpus, build_info=build, backend=backend)
    growth = enable_memory_growth(gpus, backend=backend)
    return device_info(gpus, memory_growth=growth, backend=backend, build=build)


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


def _gpu_name(backend: str, gpu: Any) -> str:
    if backend == "tensorflow":
        import tensorflow as tf

        details = tf.config.experimental.get_device_details(gpu) or {}
        return str(details.get("device_name") or gpu.name)
    return str(getattr(gpu, "device_kind", None) or gpu)


def _backend_version(backend: str) -> str | None:
    module = sys.modules.get(backend)
    return str(getattr(module, "__version__", None) or _dist_version(backend) or "") or None


def _jax_started() -> bool:
    """Whether JAX's backends already started (then XLA_PYTHON_CLIENT_PREALLOCATE is read)."""
    bridge = getattr(getattr(sys.modules.get("jax"), "_src", None), "xla_bridge", None)
    started = getattr(bridge, "backends_are_initialized", None)
    return bool(started()) if callable(started) else False


def _dist_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
