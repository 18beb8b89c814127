"""``kerascut validate``: exit 0 on a passing candidate, 1 on a failing one, JSON on request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import kerascut_core as kc
from tests.fixtures.models import BUILDERS
from tests.support.cli import kerascut as run_kerascut

PYRAMID = ["--start", "stem", "--end", "P2=block2_out", "--end", "P3=block3_out"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("cli")
    source = BUILDERS["residual"]()
    source.save(tmp / "source.keras")
    kc.cut(source, start="stem", end={"P2": "block2_out", "P3": "block3_out"}).save(tmp / "good.keras")
    kc.cut(source, start="stem", end={"P2": "block3_out", "P3": "block2_out"}).save(tmp / "bad.keras")
    return {"source": tmp / "source.keras", "good": tmp / "good.keras", "bad": tmp / "bad.keras"}


def _cli(*args: str, process: bool = False):
    return run_kerascut("validate", *args, process=process)


def test_passing_candidate_exits_0_with_the_table(files):
    out = _cli(str(files["good"]), "--source", str(files["source"]), *PYRAMID,
               "--format", "saved_model", "--samples", "4", "--batch-size", "2")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("## kerascut validation: PASSED")
    assert "| P2 | (None, 8, 8, 4) | 0 | pass |" in out.stdout
    assert "format `saved_model` (exported): pass" in out.stdout


def test_failing_candidate_exits_1_and_json_is_the_report(files):
    out = _cli(str(files["bad"]), "--source", str(files["source"]), *PYRAMID, "--json")
    assert out.returncode == 1, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["passed"] is False
    assert [o["name"] for o in report["outputs"]] == ["P2", "P3"]
    assert report["cut_spec"]["end"] == {"P2": "block2_out", "P3": "block3_out"}
    assert any("output 'P2'" in f for f in report["failures"])


def test_require_gpu_on_cpu_is_one_line_exit_1(files):
    out = _cli(str(files["good"]), "--source", str(files["source"]), *PYRAMID, "--require-gpu")
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "GPU worker" in errors[0] and "Traceback" not in out.stderr
    assert out.stdout == ""


def test_missing_candidate_is_a_one_line_error(files, tmp_path):
    out = _cli(str(tmp_path / "nope.keras"), "--source", str(files["source"]), "--start", "stem")
    assert out.returncode == 1
    assert "error: Expected `candidate` to be a saved .keras file" in out.stderr


def test_start_and_drop_first_together_is_a_usage_error(files):
    out = _cli(str(files["good"]), "--source", str(files["source"]), "--start", "stem",
               "--drop-first", "2")
    assert out.returncode == 2
    assert "Expected --start or --drop-first, not both." in out.stderr


@pytest.mark.zoo
def test_keras_applications_source_through_the_model_options(tmp_path):
    source = kc.load_model("keras.applications/MobileNetV2", weights="none", input_shape=(64, 64, 3))
    kc.cut(source, start="block_2_add", end="block_5_add").save(tmp_path / "model.keras")
    out = _cli(str(tmp_path / "model.keras"), "--source", "keras.applications/MobileNetV2",
               "--weights", "none", "--input-shape", "64,64,3",
               "--start", "block_2_add", "--end", "block_5_add", "--samples", "2", "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["passed"] is True and report["max_abs_diff"] == 0.0
    assert report["source"] == "keras.applications/MobileNetV2"
