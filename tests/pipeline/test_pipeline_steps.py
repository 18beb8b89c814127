"""The pipeline's steps in the core (issue 11): the tasks are one call each into these.

- the version the pipeline publishes is ``kc.backbone_version`` (formats included), through the
  core freshness check and through the real Prefect task;
- freshness needs no TensorFlow, and reads ``latest.json`` as it is;
- the manifest is assembled from the config, the candidate and the report;
- ``save_candidate`` writes the artifacts under the names the store gives them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

import kerascut_core as kc
from kerascut_core.config import BackboneConfig
from kerascut_core.errors import PublishRefusedError
from kerascut_core.pipeline import Candidate, Freshness, build_manifest, check_freshness
from kerascut_core.publishing import layout
from kerascut_core.stores import open_store

TINY = {"name": "tiny", "source": "keras.applications/MobileNetV2", "weights": "none",
        "input_shape": [32, 32, 3], "end": "block_3_expand_relu"}
FORMATS = [["keras"], ["keras", "saved_model"]]


def _expected(config: dict) -> str:
    backbone = BackboneConfig.model_validate(config)
    return kc.backbone_version(backbone, kc.fingerprint(backbone.source, **backbone.source_options()))


@pytest.mark.parametrize("formats", FORMATS, ids="+".join)
def test_the_freshness_check_gives_the_version_kc_computes(formats, tmp_path):
    config = {**TINY, "formats": formats}
    check = check_freshness(config, str(tmp_path / "store"))
    assert isinstance(check, Freshness)
    assert check.version == _expected(config)
    assert (check.published, check.latest, check.up_to_date) == (False, None, False)
    assert check.manifest_uri == open_store(tmp_path / "store").uri(layout.manifest_key("tiny", check.version))


def test_formats_give_another_version(tmp_path):
    keras_only, with_saved_model = (check_freshness({**TINY, "formats": f}, str(tmp_path)).version for f in FORMATS)
    assert keras_only != with_saved_model


@pytest.mark.parametrize("formats", FORMATS, ids="+".join)
def test_the_freshness_task_gives_the_version_kc_computes(formats, tmp_path, prefect_harness):
    from prefect import flow

    from kerascut.tasks.freshness import check_backbone_freshness as task

    config = {**TINY, "formats": formats}

    @flow
    def check() -> Freshness:
        return task(BackboneConfig.model_validate(config).model_dump(mode="json"), str(tmp_path / "store"))

    result = check()
    assert isinstance(result, Freshness)
    assert result.version == _expected(config)


def test_published_latest_and_force(tmp_path):
    store = open_store(tmp_path / "store")
    version = check_freshness(TINY, store).version
    store.put_bytes(layout.manifest_key("tiny", version), b"{}")
    store.put_json(layout.latest_key("tiny"), {"version": "older"})
    check = check_freshness(TINY, store)
    assert (check.published, check.latest, check.up_to_date) == (True, "older", True)
    assert check_freshness(TINY, store, force=True).up_to_date is False


@pytest.mark.parametrize("pointer", [[], {"version": 5}, {"no": "version"}])
def test_a_pointer_without_a_version_names_none(pointer, tmp_path):
    store = open_store(tmp_path / "store")
    store.put_json(layout.latest_key("tiny"), pointer)
    assert check_freshness(TINY, store).latest is None


def test_freshness_imports_no_tensorflow(tmp_path):
    code = (
        "import sys\n"
        "from kerascut_core.publishing import check_freshness\n"
        f"check_freshness({TINY!r}, {str(tmp_path)!r})\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


CANDIDATE = {
    "files": {"model.keras": "/tmp/kc/model.keras"},
    "bytes": 10,
    "inputs": [{"name": "x", "shape": [None, 32, 32, 3], "dtype": "float32"}],
    "outputs": [{"name": "block_3_expand_relu", "shape": [None, 8, 8, 144], "dtype": "float32"}],
    "params": {"total_source": 100, "kept": 60},
}


def test_build_manifest():
    report = {"passed": True, "max_abs_diff": 0.0, "atol": 0.0}
    manifest = build_manifest(TINY, "v1", "fp", Candidate.model_validate(CANDIDATE), report)
    assert (manifest.name, manifest.version, manifest.source.fingerprint, manifest.source.weights) == ("tiny", "v1", "fp", "none")
    assert manifest.cut.end == "block_3_expand_relu" and manifest.artifacts == []
    assert [t.model_dump(exclude_none=True) for t in manifest.outputs] == CANDIDATE["outputs"]
    assert manifest.params.kept == 60 and manifest.validation.model_dump() == report
    assert build_manifest(TINY, "v1", "fp", CANDIDATE, report).inputs == manifest.inputs  # a dict works too


def test_build_manifest_names_an_invalid_field():
    with pytest.raises(PublishRefusedError, match=r"'validation\.passed'"):
        build_manifest(TINY, "v1", "fp", CANDIDATE, {"max_abs_diff": 0.0})


@pytest.fixture(scope="module")
def tiny_model():
    import keras

    inputs = keras.Input((4,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(3, name="dense")(inputs), name="tiny")
    yield model
    keras.backend.clear_session()


def test_save_candidate_keras_only_without_graph(tiny_model, tmp_path):
    from kerascut_core.surgery import save_candidate

    files = save_candidate(tiny_model, tmp_path, ["keras"], keras_name="out.keras", graph=False)
    assert files == {"model.keras": tmp_path / "out.keras"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.keras"]  # no partial file left


def test_save_candidate_without_graphviz_says_why(tiny_model, tmp_path, monkeypatch):
    from kerascut_core.surgery import save_candidate

    monkeypatch.setattr(shutil, "which", lambda name: None)
    reasons: list[str] = []
    files = save_candidate(tiny_model, tmp_path, ["keras"], on_draw_error=reasons.append)
    assert list(files) == ["model.keras"] and len(reasons) == 1 and "dot" in reasons[0]


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz `dot` not installed")
def test_save_candidate_with_saved_model(tiny_model, tmp_path):
    from kerascut_core.surgery import save_candidate

    files = save_candidate(tiny_model, tmp_path, ["keras", "saved_model"])
    assert list(files)[:2] == ["model.keras", "graph.svg"]
    assert "saved_model/saved_model.pb" in files
    assert all(path.is_file() and path.is_relative_to(tmp_path) for path in files.values())
