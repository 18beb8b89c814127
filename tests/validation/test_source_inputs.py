"""Cuts that use some of the source's inputs: the image tower of an image + metadata model, one
branch of a two-input LSTM.

The reference side of validation feeds the source exactly the inputs the cut uses
(``plan.source_inputs``), random or from ``data``, and compares only what the cut computes;
``plan_cut``, ``kerascut cut`` and ``kerascut config check`` say which inputs those are. Through
the API, the CLI (in this process) and the pipeline's steps of a config run.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

import kerascut_core as kc
from tests.support import realworld_models as rw
from tests.support.cli import kerascut

TOWER = {"start": "conv1", "end": "gap"}


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("source-inputs")
    image, lstm = rw.image_metadata(), rw.two_branch_lstm()
    image.save(tmp / "image_metadata.keras")
    lstm.save(tmp / "two_branch_lstm.keras")
    return {"dir": tmp, "image": image, "lstm": lstm}


@pytest.mark.parametrize(
    ("which", "spec", "used"),
    [
        ("image", TOWER, ["image"]),
        ("image", {"end": "gap"}, ["image"]),
        ("image", {"end": "meta_dense"}, ["meta"]),
        ("image", {"start": "conv1", "end": "head", "extra_inputs": "auto"}, ["image", "meta"]),
        ("lstm", {"end": "lstm_a"}, ["words"]),
        ("lstm", {"start": "proj_a", "end": "lstm_a"}, ["words"]),
        ("lstm", {"end": "lstm_b"}, ["chars"]),
        ("lstm", {"end": "head"}, ["words", "chars"]),
    ],
)
def test_plan_cut_reports_the_source_inputs_a_cut_uses(sources, which, spec, used):
    from kerascut_core.surgery import plan_cut

    plan = plan_cut(sources[which], **spec)
    assert plan.source_inputs == used and plan.to_dict()["source_inputs"] == used
    text = plan.source_inputs_text(2)
    assert text.endswith(": " + ", ".join(used)) and (f"uses {len(used)} of the source's 2" in text) == (len(used) < 2)
    assert plan.source_inputs_text(1) == ""  # a one-input source: nothing to say


@pytest.mark.parametrize(
    ("which", "spec"),
    [
        ("image", TOWER),
        ("image", {"end": "gap"}),
        ("image", {"end": {"tower": "gap", "meta": "meta_dense"}}),  # several inputs, several ends
        ("image", {"start": "conv1", "end": "head", "extra_inputs": "auto"}),  # plus an extra input
        ("lstm", {"end": "lstm_a"}),
        ("lstm", {"start": "proj_a", "end": "lstm_a"}),
        ("lstm", {"end": "lstm_b"}),
    ],
)
def test_a_cut_of_some_inputs_validates_exactly(sources, tmp_path, which, spec):
    source = sources[which]
    kc.cut(source, **spec).save(tmp_path / "cut.keras")
    report = kc.validate(tmp_path / "cut.keras", source, spec, samples=4, batch_size=2)
    assert report.passed, report.failures
    assert report.max_abs_diff == 0.0 and report.weights.passed and report.structure.passed
    assert report.plan["source_inputs"] == kc.plan_cut(source, **spec).source_inputs
    if which == "lstm":
        assert report.sample_dim == 64  # the unknown time steps of the inputs used


def test_a_changed_weight_in_the_tower_still_fails(sources, tmp_path):
    """Feeding the source only what the cut uses compares the cut's outputs, nothing less."""
    import keras

    kc.cut(sources["image"], **TOWER).save(tmp_path / "cut.keras")
    model = keras.saving.load_model(tmp_path / "cut.keras")
    kernel, bias = model.get_layer("conv2").get_weights()
    kernel.flat[0] += 1e-3
    model.get_layer("conv2").set_weights([kernel, bias])
    model.save(tmp_path / "bad.keras")
    report = kc.validate(tmp_path / "bad.keras", sources["image"], TOWER, samples=4)
    assert not report.passed and report.max_abs_diff > 0
    assert any("not bitwise equal" in f for f in report.failures)


def test_sample_data_needs_only_the_inputs_the_cut_uses(sources, tmp_path):
    source = sources["image"]
    kc.cut(source, **TOWER).save(tmp_path / "cut.keras")
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (3, 16, 16, 3)).astype("float32")
    meta = rng.uniform(-1, 1, (3, 5)).astype("float32")
    files = {
        "only the image, by name": {"image": image},
        "both, by name": {"image": image, "meta": meta},
        "both, in input order": {"arr_0": image, "arr_1": meta},
    }
    for label, arrays in files.items():
        np.savez(tmp_path / "data.npz", **arrays)
        report = kc.validate(tmp_path / "cut.keras", source, TOWER, data=tmp_path / "data.npz", samples=3)
        assert report.passed and report.samples == 3, (label, report.failures)
    np.save(tmp_path / "image.npy", image)  # one .npy for the one input the cut uses
    assert kc.validate(tmp_path / "cut.keras", source, TOWER, data=tmp_path / "image.npy", samples=3).passed


def test_the_cli_cuts_validates_and_checks_a_tower(sources, tmp_path):
    folder = sources["dir"]
    out = kerascut("cut", folder / "image_metadata.keras", "--start", "conv1", "--end", "gap",
                   "-o", tmp_path / "tower.keras")
    assert out.returncode == 0, out.stderr
    assert "uses 1 of the source's 2 inputs: image" in out.stdout
    out = kerascut("validate", tmp_path / "tower.keras", "--source", folder / "image_metadata.keras",
                   "--start", "conv1", "--end", "gap", "--samples", "4", "--json", "-q")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["passed"] and report["max_abs_diff"] == 0.0 and report["plan"]["source_inputs"] == ["image"]

    config = tmp_path / "kerascut.yaml"
    config.write_text(json.dumps({"store": str(tmp_path / "store"), "backbones": [
        {"name": "tower", "source": str(folder / "image_metadata.keras"), **TOWER},
        {"name": "branch", "source": str(folder / "two_branch_lstm.keras"), "end": "lstm_b"},
    ]}))
    out = kerascut("config", "check", config)
    assert out.returncode == 0, out.stderr
    assert "ok  tower: inputs conv1 -> outputs gap; uses 1 of the source's 2 inputs: image" in out.stdout
    assert "ok  branch: inputs chars -> outputs lstm_b; uses 1 of the source's 2 inputs: chars" in out.stdout


def test_a_config_run_publishes_a_tower(sources, tmp_path):
    """The pipeline's steps of ``kerascut run``: cut, stage, validate, publish (no Prefect)."""
    from kerascut_core import open_store
    from kerascut_core.config import BackboneConfig
    from kerascut_core.pipeline.assemble import publish_candidate
    from kerascut_core.pipeline.candidate import cut_candidate
    from kerascut_core.pipeline.reports import validate_staged
    from kerascut_core.publishing import read_manifest, stage_candidate

    source = str(sources["dir"] / "image_metadata.keras")
    backbone = BackboneConfig(name="tower", source=source, **TOWER)
    candidate = cut_candidate(backbone, {"source": source, "options": {}}, tmp_path / "work")
    store = open_store(tmp_path / "store")
    uri = stage_candidate(store, "tower", "v1", candidate.files)
    report = validate_staged(uri, backbone, {"samples": 4, "batch_size": 2})
    assert report.passed and report.max_abs_diff == 0.0, report.failures
    publish_candidate(store, uri, backbone, "v1", "fp", candidate, report.model_dump(mode="json"))
    manifest = read_manifest(store, "tower", "v1")
    assert manifest.validation.passed and manifest.validation.model_dump()["plan"]["source_inputs"] == ["image"]
