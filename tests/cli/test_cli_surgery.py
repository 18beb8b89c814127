"""``kerascut inspect`` and ``kerascut cut``: output, files written, errors and exit codes.

The contract checks run the working tree as users do (``python -m kerascut_core``); the rest
call ``cli.app.main`` in-process to keep the suite quick (TensorFlow imports once).
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest

from kerascut_core.cli.app import main
from kerascut_core.cli.cut_cmd import parse_ends
from tests.fixtures import models
from tests.fixtures.models import random_input, reference_activations
from tests.support.cli import kerascut as run_kerascut

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def _run(*args: str, process: bool = False):
    return run_kerascut(*args, env={"TF_CPP_MIN_LOG_LEVEL": "3"}, process=process)


def _last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1]


@pytest.fixture
def residual_file(tmp_path):
    path = tmp_path / "residual.keras"
    model = models.residual()
    model.save(path)
    return model, path


# ------------------------------------------------------------------ as users run it (slower)


@pytest.mark.zoo
def test_inspect_mobilenetv2_json_lists_cut_points():
    """The issue's done-when check."""
    out = _run("inspect", "keras.applications/MobileNetV2", "--weights", "none", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["model"] == "mobilenetv2_1.00_224"
    layers = data["layers"]
    assert set(layers[0]) == {"index", "name", "type", "output_shape", "params", "cut_point"}
    points = [row["name"] for row in layers if row["cut_point"]]
    assert "block_3_expand_relu" in points and "block_2_expand_relu" not in points
    assert sum(row["params"] for row in layers) == 3_538_984
    assert layers[1]["output_shape"] == [None, 112, 112, 32]


def test_cut_writes_a_model_that_reloads_exactly(residual_file, tmp_path):
    model, path = residual_file
    out_path = tmp_path / "backbone.keras"
    out = _run("cut", str(path), "--start", "block1_out", "--end", "block3_out", "-o", str(out_path))
    assert out.returncode == 0, out.stderr
    assert f"wrote {out_path}" in out.stdout
    assert "input  block1_out: (None, 8, 8, 4)" in out.stdout
    assert "output block3_out: (None, 8, 8, 4)" in out.stdout
    assert "kept 10 of 18 layers, 624 of 1,058 params" in out.stdout
    data = random_input(model)
    a, b = reference_activations(model, ["block1_out", "block3_out"], data)
    again = keras.saving.load_model(out_path)
    assert np.max(np.abs(np.asarray(again(a)) - b)) == 0.0


def test_crossing_cut_fails_with_one_line_and_exit_1(residual_file, tmp_path):
    _, path = residual_file
    out = _run("cut", str(path), "--start", "block2_conv1", "-o", str(tmp_path / "x.keras"))
    assert out.returncode == 1
    line = _last_line(out.stderr)
    assert line.startswith("error: Cannot cut model 'residual'")
    assert "'block1_out' (before)" in line
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "x.keras").exists()


def test_usage_errors_exit_2(residual_file, tmp_path):
    _, path = residual_file
    out = _run("cut", str(path), "--start", "a", "--drop-first", "2", "-o", str(tmp_path / "x.keras"))
    assert out.returncode == 2
    assert "not both" in _last_line(out.stderr)


# ------------------------------------------------------------------------------ in-process


def test_inspect_table(residual_file, capsys):
    _, path = residual_file
    assert main(["inspect", str(path)]) == 0
    text = capsys.readouterr().out
    header = text.splitlines()[0]
    for column in ("#", "name", "type", "output shape", "params", "cut point"):
        assert column in header
    row = next(line for line in text.splitlines() if " block1_add " in line)
    assert row.split()[2] == "Add" and row.rstrip().endswith("yes")
    row = next(line for line in text.splitlines() if " block2_conv1 " in line)
    assert not row.rstrip().endswith("yes")
    assert "residual: 19 tensors" in text


def test_inspect_for_chosen_ends(residual_file, capsys):
    _, path = residual_file
    assert main(["inspect", str(path), "--end", "block2_conv2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["layers"]
    assert [r["name"] for r in rows if r["cut_point"]] == [
        "x", "stem", "block1_add", "block1_out", "block2_conv1", "block2_bn"
    ]


def test_cut_extra_inputs_named_outputs_and_drop_first(residual_file, tmp_path, capsys):
    _, path = residual_file
    out_path = tmp_path / "fpn.keras"
    assert main([
        "cut", str(path), "--start", "block2_conv1", "--extra-inputs", "auto",
        "--end", "C3=block2_out", "--end", "C4=block3_out", "-o", str(out_path),
    ]) == 0
    text = capsys.readouterr().out
    assert "block1_out: (None, 8, 8, 4)  <- block1_out  (extra input)" in text
    assert "output C3:" in text and "output C4:" in text
    again = keras.saving.load_model(out_path)
    assert [t.name for t in again.inputs] == ["block2_conv1", "block1_out"]
    assert main(["cut", str(path), "--drop-first", "1", "--copy", "-o", str(tmp_path / "d.keras")]) == 0
    assert "input  stem:" in capsys.readouterr().out


def test_cut_errors(residual_file, tmp_path, capsys):
    _, path = residual_file
    assert main(["cut", str(path), "--start", "block1_ad", "-o", str(tmp_path / "x.keras")]) == 1
    assert "Did you mean 'block1_add'" in capsys.readouterr().err
    assert main(["cut", str(path), "-o", str(tmp_path / "x.h5")]) == 2
    assert main(["cut", str(path), "-o", str(tmp_path / "missing" / "x.keras")]) == 2
    assert main(["cut", str(path), "--end", "a=b", "--end", "c", "-o", str(tmp_path / "x.keras")]) == 2
    assert main(["inspect", str(tmp_path / "nope.keras")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["inspect", "keras.applications/MobileNetV2", "--input-shape", "9x9x"]) == 2


def test_parse_ends():
    assert parse_ends(()) is None
    assert parse_ends(("a",)) == "a"
    assert parse_ends(("a", "b")) == ["a", "b"]
    assert parse_ends(("P3=a", "P4=b")) == {"P3": "a", "P4": "b"}
