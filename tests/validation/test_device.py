"""Device handling: GPU refusal, memory growth, device info, throughput and run agreement.

The GPU path runs only on GPU workers; its pieces are plain functions tested here on CPU with
stand-ins (a list of fake GPUs, a fake clock, numpy forwards). The tests that look at the
machine itself check what it has: they pass on a CPU machine and on a GPU worker alike.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from kerascut_core.errors import DeviceError, ValidationError
from kerascut_core.validation import device
from tests.support.backend import BACKEND

pytestmark = pytest.mark.jax  # also in CI's JAX slice: the running backend's own devices

HAS_GPU = bool(device.list_gpus())


class FakeJaxDevice:
    """What ``jax.devices()`` lists, reduced to what kerascut reads."""

    def __init__(self, platform: str, kind: str) -> None:
        self.platform, self.device_kind = platform, kind


def test_check_gpu_refuses_an_empty_list_in_the_library_s_own_words(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with pytest.raises(DeviceError) as info:
        device.check_gpu([], build_info={"is_cuda_build": False})
    message = str(info.value)
    assert message.startswith("Expected a GPU because require_gpu=True. Received a machine")
    assert "GPU worker" in message and "work pool" not in message and "kerascut-gpu" not in message
    assert "built without CUDA" in message and "require_gpu=False" in message
    assert "\n" not in message
    assert isinstance(info.value, ValidationError)


def test_check_gpu_says_when_cuda_visible_devices_hides_them(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    with pytest.raises(DeviceError, match="CUDA_VISIBLE_DEVICES='-1' hides every GPU"):
        device.check_gpu([], build_info={"is_cuda_build": True})


def test_check_gpu_accepts_a_gpu():
    device.check_gpu(["/physical_device:GPU:0"])  # anything non-empty


def test_prepare_reports_this_machine():
    info = device.prepare(require_gpu=False)
    assert info.backend == BACKEND and info.backend_version and info.keras_version and info.name
    assert bool(info.tensorflow_version) is (BACKEND == "tensorflow")  # JAX never imports TF
    if HAS_GPU:
        assert info.kind == "gpu" and info.gpu_count == len(device.list_gpus()) and info.is_cuda_build
        assert device.prepare(require_gpu=True).kind == "gpu"
    else:
        assert info.kind == "cpu" and info.gpu_count == 0 and info.memory_growth is False
        assert info.cuda_version is None or info.is_cuda_build  # a CUDA build on a GPU-less host
        with pytest.raises(DeviceError):
            device.prepare(require_gpu=True)


def test_enable_memory_growth_without_gpus_is_a_no_op():
    assert device.enable_memory_growth([]) is False


@pytest.mark.skipif(HAS_GPU, reason="a GPU worker does not refuse require_gpu")
def test_require_gpu_fails_fast_in_a_fresh_process():
    # a fresh interpreter: the refusal costs one TensorFlow import, never a model load
    code = (
        "import sys, time; t = time.perf_counter()\n"
        "from kerascut_core import validate, DeviceError\n"
        "try:\n"
        "    validate('missing.keras', 'keras.applications/ResNet50', {}, require_gpu=True)\n"
        "except DeviceError as e:\n"
        "    print('refused', round(time.perf_counter() - t, 1), 'kerascut_core.sources.load' in sys.modules, 'kerascut_core.surgery.graph' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.startswith("refused"), out.stderr[-2000:]
    assert out.stdout.split()[2:] == ["False", "False"]  # no loader, no surgery was imported


def test_measure_throughput_takes_the_median_with_a_fake_clock():
    ticks = iter([0.0, 0.5, 1.0, 1.25, 2.0, 3.0])  # durations 0.5, 0.25, 1.0
    calls = []
    rate = device.measure_throughput(
        calls.append, "batch", batch_size=10, repeats=3, warmup=2, clock=lambda: next(ticks)
    )
    assert rate == pytest.approx(10 / 0.5)
    assert len(calls) == 5  # two warm-up calls, three timed
    with pytest.raises(ValueError, match="repeats >= 1"):
        device.measure_throughput(calls.append, "batch", batch_size=1, repeats=0)


def test_runs_agree_is_bitwise_unless_given_a_tolerance():
    a = [np.array([1.0, 2.0], "float32")]
    b = [np.nextafter(a[0], np.float32(3))]
    assert device.runs_agree(a, [a[0].copy()])
    assert not device.runs_agree(a, b)
    assert device.runs_agree(a, b, atol=1e-6)
    assert not device.runs_agree(a, [a[0].astype("float64")])
    assert not device.runs_agree(a, a + a)
    nan = [np.array([np.nan], "float32")]
    assert not device.runs_agree(nan, nan)


def test_throughput_row_runs_twice_and_times():
    weights = np.arange(12, dtype="float32").reshape(4, 3)

    def forward(batch):
        return [batch[0] @ weights]

    row = device.throughput_row("candidate", forward, [np.ones((8, 4), "float32")],
                                batch_size=8, jit_compile=False, repeats=2)
    assert row.model == "candidate" and row.batch_size == 8 and row.items_per_s > 0
    assert row.runs_agree is True

    flips = iter(range(100))

    def unstable(batch):
        return [batch[0] * next(flips)]

    assert device.throughput_row("source", unstable, [np.ones((2, 2))], batch_size=2,
                                 jit_compile=True, repeats=1).runs_agree is False


def test_validation_measures_throughput_on_gpu_only(tmp_path, monkeypatch):
    """On CPU no throughput rows; with a GPU reported, the rows come from the same models."""
    import kerascut_core as kc
    from kerascut_core.validation.report import DeviceInfo
    from tests.fixtures.models import BUILDERS

    source = BUILDERS["residual"]()
    spec = {"start": "block1_out", "end": "block3_out"}
    kc.cut(source, **spec).save(tmp_path / "model.keras")
    rows = kc.validate(tmp_path / "model.keras", source, spec).throughput
    assert [r.model for r in rows] == (["source", "candidate"] if HAS_GPU else [])

    # pretend to be a GPU worker: the same code path then measures (here on the CPU)
    monkeypatch.setattr(device, "prepare",
                        lambda require_gpu: DeviceInfo(kind="gpu", name="fake", gpu_count=1))
    report = kc.validate(tmp_path / "model.keras", source, spec, batch_size=4)
    assert report.passed, report.failures
    assert [r.model for r in report.throughput] == ["source", "candidate"]
    assert all(r.items_per_s > 0 and r.runs_agree and r.batch_size == 4 for r in report.throughput)
    assert "items/s at batch 4" in report.to_markdown()


def test_gpus_in_reads_each_runtimes_own_device_list():
    jax_devices = [FakeJaxDevice("cpu", "cpu"), FakeJaxDevice("gpu", "NVIDIA H200"), FakeJaxDevice("cuda", "H100")]
    assert [d.device_kind for d in device.gpus_in("jax", jax_devices)] == ["NVIDIA H200", "H100"]
    assert device.gpus_in("jax", [FakeJaxDevice("cpu", "cpu")]) == []
    providers = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert device.gpus_in("onnxruntime", providers) == providers[:2]
    assert device.gpus_in("onnxruntime", ["CPUExecutionProvider"]) == []
    assert device.gpus_in("tensorflow", ["/physical_device:GPU:0"]) == ["/physical_device:GPU:0"]


def test_check_gpu_names_the_backend_that_sees_no_gpu(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    with pytest.raises(DeviceError) as info:
        device.check_gpu([], build_info={"is_cuda_build": False}, backend="jax")
    message = str(info.value)
    assert "Received a machine where JAX sees no GPU: jax has no CUDA plugin (install jax[cuda12])" in message
    assert "JAX_PLATFORMS='cpu' hides every GPU" in message and "GPU worker" in message
    with pytest.raises(DeviceError, match="where onnxruntime sees no GPU"):
        device.check_gpu([], backend="onnxruntime")
    device.check_gpu(device.gpus_in("jax", [FakeJaxDevice("gpu", "H200")]), backend="jax")


def test_device_info_of_a_fake_jax_gpu(monkeypatch):
    monkeypatch.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    gpus = device.gpus_in("jax", [FakeJaxDevice("gpu", "NVIDIA H200")])
    build = {"is_cuda_build": True, "cuda_version": "12.8.90", "cudnn_version": "9.10.2.21"}
    growth = device.enable_memory_growth(gpus, backend="jax")
    info = device.device_info(gpus, memory_growth=growth, backend="jax", build=build)
    assert (info.kind, info.name, info.gpu_count, info.backend) == ("gpu", "NVIDIA H200", 1, "jax")
    assert info.memory_growth is True and info.cuda_version == "12.8.90" and info.is_cuda_build
    monkeypatch.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", "true")
    assert device.enable_memory_growth(gpus, backend="jax") is False
    assert device.enable_memory_growth([], backend="jax") is False


def test_the_report_names_the_backend_it_ran_on():
    from kerascut_core.validation.report import DeviceInfo, ValidationReport

    def line(info):
        report = ValidationReport(passed=True, max_abs_diff=0.0, candidate="c.keras", device=info)
        return next(x for x in report.to_markdown().splitlines() if x.startswith("- device:"))

    jax_gpu = DeviceInfo(kind="gpu", name="NVIDIA H200", gpu_count=1, backend="jax", backend_version="0.10.2",
                         cuda_version="12.8", cudnn_version="9.10")
    assert line(jax_gpu) == "- device: GPU NVIDIA H200 (Keras backend jax 0.10.2, CUDA 12.8, cuDNN 9.10)"
    tf_cpu = DeviceInfo(kind="cpu", name="x86_64", backend="tensorflow", tensorflow_version="2.21.0")
    assert line(tf_cpu) == "- device: CPU x86\\_64 (TensorFlow 2.21.0)"  # Markdown-escaped
    assert line(DeviceInfo(kind="cpu", name="x86_64", tensorflow_version="2.21.0")) == "- device: CPU x86\\_64 (TensorFlow 2.21.0)"  # Markdown-escaped


def test_build_info_of_the_running_backend():
    build = device.build_info()
    assert set(build) == {"is_cuda_build", "cuda_version", "cudnn_version"}
    assert device.build_info("onnxruntime")["is_cuda_build"] is False


def test_jax_gpu_listing_needs_no_tensorflow():
    code = (
        "import sys; sys.modules['tensorflow'] = None\n"
        "from kerascut_core.validation import device\n"
        "print(device.backend_name(), device.accelerators('jax'), device.prepare().backend)\n"
    )
    pytest.importorskip("jax")
    env = {**__import__("os").environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.stdout.split() == ["jax", "[]", "jax"], out.stderr[-2000:]
