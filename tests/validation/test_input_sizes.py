"""Automatic input sizes below 64, when the model's own limits require them.

A BERT-like encoder (plain Keras layers) with a learned position embedding of 32 positions
accepts any length by shape inference and fails only when it runs beyond 32: validation finds
32 by itself (16 for a table of 20), through the API, the CLI and the pipeline's steps; a size
given is never changed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import kerascut_core as kc
from kerascut_core.errors import ValidationError
from tests.support import realworld_models as rw
from tests.support.cli import kerascut

SPEC = {"start": "embed_norm", "end": "ffn_norm"}


@pytest.fixture(scope="module")
def bert(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("bert")
    model = rw.tiny_bert()
    model.save(tmp / "bert.keras")
    kc.cut(model, **SPEC).save(tmp / "cut.keras")
    return {"model": model, "source": tmp / "bert.keras", "cut": tmp / "cut.keras"}


def test_a_short_position_table_is_found_below_64(bert):
    report = kc.validate(bert["cut"], bert["model"], SPEC, samples=4, batch_size=2)
    assert report.passed and report.max_abs_diff == 0.0, report.failures
    assert report.sample_dim == 32 and "unknown input dimensions sized 32" in report.to_markdown()


def test_a_table_of_20_positions_gets_16(tmp_path):
    model = rw.tiny_bert(max_sequence_length=20)
    kc.cut(model, **SPEC).save(tmp_path / "cut.keras")
    report = kc.validate(tmp_path / "cut.keras", model, SPEC, samples=2)
    assert report.passed and report.sample_dim == 16, report.failures


def test_a_size_given_is_never_changed(bert):
    with pytest.raises(ValidationError) as caught:
        kc.validate(bert["cut"], bert["model"], SPEC, samples=2, sample_dim=64)
    message = str(caught.value)
    assert "(None, 64)" in message and "Embedding" in message and "--sample-dim N" in message
    assert kc.validate(bert["cut"], bert["model"], SPEC, samples=2, sample_dim=8).sample_dim == 8


def test_sizes_that_fit_by_shape_inference_are_unchanged():
    """A crop that needs more than 10,000 steps still gets 16384, found upwards."""
    source = rw.long_crop()
    from kerascut_core.validation.sizes import fitting_dim

    assert fitting_dim(source) == 16384


def test_smaller_dim_tries_halves_and_gives_up_with_none(bert):
    from kerascut_core.validation.sizes import smaller_dim

    tried: list[int] = []

    def runs(size: int) -> None:
        tried.append(size)
        if size > 8:
            raise RuntimeError("too long")

    assert smaller_dim(bert["model"], 64, runs) == 8 and tried == [32, 16, 8]
    assert smaller_dim(bert["model"], 64, lambda size: 1 / 0) is None


def test_the_cli_and_a_run_find_it_too(bert, tmp_path):
    out = kerascut("validate", bert["cut"], "--source", bert["source"], "--start", "embed_norm",
                   "--end", "ffn_norm", "--samples", "2", "--json", "-q")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["passed"] and report["sample_dim"] == 32

    from kerascut_core import open_store
    from kerascut_core.config import BackboneConfig
    from kerascut_core.pipeline.candidate import cut_candidate
    from kerascut_core.pipeline.reports import validate_staged
    from kerascut_core.publishing import stage_candidate

    source = str(bert["source"])
    backbone = BackboneConfig(name="bert", source=source, **SPEC)
    candidate = cut_candidate(backbone, {"source": source, "options": {}}, tmp_path / "work")
    uri = stage_candidate(open_store(tmp_path / "store"), "bert", "v1", candidate.files)
    staged = validate_staged(uri, backbone, {"samples": 2, "batch_size": 2})
    assert staged.passed and staged.sample_dim == 32, staged.failures
