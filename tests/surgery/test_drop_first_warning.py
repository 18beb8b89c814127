"""``drop_first`` says what it really dropped: with ``extra_inputs="auto"`` on parallel branches
(31 convolutions on one stem) ``drop_first=2`` drops 32 layers and makes 30 inputs, and says so.

The warning (count, new inputs) is ``CutPlan.warnings``, a ``CutWarning`` from ``cut``, a
``warning:`` line of ``kerascut cut`` and ``config check``, and a manifest warning of a run.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest

import kerascut_core as kc
from kerascut_core.errors import CutWarning
from tests.support import realworld_models as rw
from tests.support.cli import kerascut

SPEC = {"drop_first": 2, "extra_inputs": "auto"}


@pytest.fixture(scope="module")
def parallel(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("parallel")
    model = rw.parallel_convs()
    model.save(tmp / "parallel.keras")
    return {"model": model, "path": tmp / "parallel.keras"}


def test_the_plan_counts_what_drop_first_dropped_and_warns(parallel):
    plan = kc.plan_cut(parallel["model"], **SPEC)
    assert plan.dropped_before == 32 and len(plan.extra_inputs) == 30 and plan.inputs[0] == "branch_0"
    (warning,) = plan.warnings
    assert "dropped 32 layers before the start, not 2" in warning
    assert "30 tensors they need became new inputs: branch_1, branch_2" in warning and "and 25 more" in warning
    assert plan.to_dict()["warnings"] == [warning] and plan.to_dict()["dropped_before"] == 32


def test_cut_raises_it_as_a_cut_warning(parallel):
    with pytest.warns(CutWarning, match=r"dropped 32 layers before the start, not 2") as caught:
        model = kc.cut(parallel["model"], **SPEC)
    assert len(caught) == 1 and len(model.inputs) == 31


@pytest.mark.parametrize("spec", [{"drop_first": 1}, {"drop_first": 1, "extra_inputs": "auto"}, {"start": "concat"}])
def test_a_drop_first_that_drops_what_it_says_is_quiet(parallel, spec):
    with warnings.catch_warnings():
        warnings.simplefilter("error", CutWarning)
        model = kc.cut(parallel["model"], **spec)
    assert model.cut_plan.warnings == []


def test_a_chain_dropped_by_drop_first_counts_n():
    import keras

    x = keras.Input((4,), name="x")
    h = x
    for i in range(4):
        h = keras.layers.Dense(4, name=f"d{i}")(h)
    plan = kc.plan_cut(keras.Model(x, h), drop_first=3, extra_inputs="auto")
    assert plan.dropped_before == 3 and plan.warnings == []


def test_the_cut_validates_exactly(parallel, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CutWarning)
        kc.cut(parallel["model"], **SPEC).save(tmp_path / "cut.keras")
    report = kc.validate(tmp_path / "cut.keras", parallel["model"], SPEC, samples=2)
    assert report.passed and report.max_abs_diff == 0.0, report.failures
    assert report.plan["warnings"] and len(report.inputs) == 31


def test_kerascut_cut_and_config_check_print_it(parallel, tmp_path):
    out = kerascut("cut", parallel["path"], "--drop-first", "2", "--extra-inputs", "auto", "-o", tmp_path / "c.keras")
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith("warning:")]
    assert len(lines) == 1 and "dropped 32 layers before the start, not 2" in lines[0]
    assert "CutWarning" not in out.stderr  # printed once, as a warning: line
    assert out.stdout.count("(extra input)") == 30 and "input  branch_1: (None, 8, 8, 2)  <- branch_1  (extra input)" in out.stdout

    config = tmp_path / "kerascut.yaml"
    config.write_text(json.dumps({"store": str(tmp_path / "store"), "backbones": [
        {"name": "p", "source": str(parallel["path"]), **SPEC}]}))
    out = kerascut("config", "check", config)
    assert out.returncode == 0, out.stderr
    assert "warning:" in out.stderr and "dropped 32 layers before the start, not 2" in out.stderr


def test_a_run_records_it_in_the_candidate(parallel, tmp_path):
    from kerascut_core.config import BackboneConfig
    from kerascut_core.pipeline.candidate import cut_candidate

    source = str(parallel["path"])
    backbone = BackboneConfig(name="p", source=source, **SPEC)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CutWarning)
        candidate = cut_candidate(backbone, {"source": source, "options": {}}, tmp_path / "work")
    assert any("dropped 32 layers before the start, not 2" in w for w in candidate.warnings)
