"""A backbone that tells its consumers how to use it (issue 13 items 1, 2, 5, 6).

- the published ``README.md`` (the model card) is listed in the manifest with its sha256 and
  regenerates byte for byte from the published manifest;
- a manifest of schema version 1 (``tests/fixtures/manifest_v1.json``, written by kerascut
  before version 2) still reads, and the card, ``show`` and the contract cope with it;
- ``kerascut show`` prints outputs, preprocessing, validation, aliases and lineage, escaped;
- ``load_backbone_with_contract`` gives the model and its contract, the preprocessing function
  resolved from its name.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import kerascut_core as kc
from kerascut_core.errors import SourceError
from kerascut_core.pipeline import publish_candidate
from kerascut_core.publishing import (
    BackboneContract,
    model_card,
    promote,
    read_manifest,
    stage_candidate,
    update_latest,
)
from kerascut_core.publishing.card import card_subject
from kerascut_core.publishing.layout import CARD, artifact_key, manifest_key
from kerascut_core.publishing.manifest import SCHEMA_VERSION, Manifest
from kerascut_core.publishing.staging import add_staged_file, staged_artifacts
from kerascut_core.stores import open_store

V1 = Path(__file__).resolve().parents[1] / "fixtures" / "manifest_v1.json"
VERSION = "0123456789abcdef"
BACKBONE = {"name": "tiny", "source": "keras.applications/MobileNetV2", "weights": "none",
            "input_shape": [32, 32, 3], "start": "block_1_expand_relu", "end": {"C3": "block_3_expand_relu"}}
CANDIDATE = {
    "files": {},
    "bytes": 10,
    "inputs": [{"name": "x", "shape": [None, 4], "dtype": "float32", "replaces": "input_layer"}],
    "outputs": [{"name": "C3", "shape": [None, 3], "dtype": "float32", "address": "block_3_expand_relu",
                 "channels": 3, "stride": [8, 8]}],
    "params": {"total_source": 100, "kept": 15},
    "preprocessing": {"mode": "tf", "function": "keras.applications.mobilenet_v2.preprocess_input",
                      "layers": [], "applies_to_inputs": True},
    "warnings": ["a warning | with a pipe and \x1b[2J an escape"],
    "source_sha256": None,
    "keras_backend": "tensorflow",
}
REPORT = {"passed": True, "max_abs_diff": 1.5e-7, "samples": 4, "atol": 1e-5, "rtol": 0.0,
          "device": {"kind": "cpu", "name": "CPU", "gpu_count": 0}}


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A local store with ``tiny`` published through the pipeline's publish step, latest and
    ``prod`` on it (the model is a tiny real Keras model; the manifest says what the test needs)."""
    import keras

    work = tmp_path_factory.mktemp("published")
    keras.backend.clear_session()
    x = keras.Input((4,), name="x")
    keras.Model(x, keras.layers.Dense(3, name="C3")(x), name="tiny").save(work / "model.keras")
    (work / "graph.svg").write_text("<svg/>")
    store = open_store(work / "store")
    staged = stage_candidate(store, "tiny", VERSION, {"model.keras": work / "model.keras", "graph.svg": work / "graph.svg"})
    result = publish_candidate(store, staged, BACKBONE, VERSION, "fp-1", CANDIDATE, REPORT, flow_run_id="flow-run-1")
    assert result.status == "published"
    update_latest(store, "tiny", VERSION)
    promote(store, "tiny", VERSION, alias="prod")
    return store


# --- the model card --------------------------------------------------------------------------


def test_the_card_is_an_artifact_and_regenerates_byte_for_byte(published):
    manifest = read_manifest(published, "tiny", VERSION)
    card = published.get_bytes(artifact_key("tiny", VERSION, CARD))
    entry = manifest.artifact(CARD)
    assert (entry.format, entry.bytes, entry.sha256) == ("md", len(card), hashlib.sha256(card).hexdigest())
    assert model_card(manifest).encode() == card  # from the published manifest alone
    assert model_card(card_subject(manifest)).encode() == card  # the card is made without its own entry
    assert sorted(a.path for a in manifest.artifacts) == [CARD, "graph.svg", "model.keras"]
    assert kc.list_versions(published, "tiny")  # a whole, listed version
    from kerascut_core.publishing import verify_version

    assert verify_version(published, "tiny", VERSION, from_bytes=True) == []


def test_what_the_card_says(published):
    card = published.get_bytes(artifact_key("tiny", VERSION, CARD)).decode()
    front, body = card.split("\n---\n", 1)
    assert front.splitlines() == [
        "---",
        'base_model: "keras.applications/MobileNetV2"',
        "library_name: keras",
        "pipeline_tag: image-feature-extraction",
        "tags:",
        '- "kerascut"',
        '- "backbone"',
        '- "image-feature-extraction"',
        '- "keras-applications"',
        '- "mobilenetv2"',
    ]
    assert "| `C3` | `block_3_expand_relu` | (None, 3) | float32 | 3 | 8 |" in body
    assert "| `x` | (None, 4) | float32 | `input_layer` |" in body
    assert "Apply `keras.applications.mobilenet_v2.preprocess_input` to raw images before the backbone." in body
    assert "> **Warning:** a warning \\| with a pipe and \\\\x1b\\[2J an escape" in body  # escaped, inert
    assert "| yes | CPU (cpu) | 1.5e-07 | 4 | 1e-05 | 0 |" in body
    assert "![tiny](graph.svg)" in body
    assert f'kc.load_backbone_with_contract(f"{{STORE}}/tiny@{VERSION}")' in body
    assert "- Prefect flow run: `flow-run-1`" in body and "backend tensorflow" in body
    assert "\x1b" not in card


def test_a_retried_publish_stages_the_same_card_once(tmp_path):
    store = open_store(tmp_path / "store")
    (tmp_path / "m.keras").write_bytes(b"model")
    staged = stage_candidate(store, "tiny", VERSION, {"model.keras": tmp_path / "m.keras"})
    for _ in range(2):
        add_staged_file(store, staged, "tiny", VERSION, CARD, b"# card\n")
    assert [a.path for a in staged_artifacts(store, staged, "tiny", VERSION)] == ["model.keras", CARD]


# --- a version 1 manifest --------------------------------------------------------------------


def test_a_version_1_manifest_still_reads(tmp_path):
    manifest = Manifest.model_validate_json(V1.read_text())
    assert (manifest.schema_version, SCHEMA_VERSION) == (1, 2)
    assert manifest.preprocessing is None and manifest.lineage is None and manifest.warnings == []
    assert (manifest.outputs[0].channels, manifest.outputs[0].stride, manifest.inputs[0].replaces) == (None, None, None)
    assert manifest.software.keras_backend is None and manifest.source.sha256 is None

    store = open_store(tmp_path / "store")
    store.put_bytes(manifest_key(manifest.name, manifest.version), V1.read_bytes())
    assert read_manifest(store, manifest.name, manifest.version) == manifest  # through the store, too

    card = model_card(manifest)
    assert "Not recorded (a manifest of schema version 1)" in card and "| `block_13_expand_relu` | ? | (None, 6, 6, 576)" in card
    contract = BackboneContract(manifest, f"{store.root_uri}/{manifest.name}@{manifest.version}")
    assert contract.preprocess_function is None and contract.channels == {"block_13_expand_relu": None}
    with pytest.raises(SourceError, match="schema version 1"):
        contract.preprocess([[0.0]])


def test_show_a_version_1_manifest():
    from kerascut_core.cli.show_cmd import show_lines

    lines = show_lines(Manifest.model_validate_json(V1.read_text()), latest="3f9a0c1d2e4b5a69")
    assert lines[0] == "mnv2-stride16@3f9a0c1d2e4b5a69  (latest)"
    assert "  not recorded (manifest schema version 1)" in lines


# --- kerascut show ---------------------------------------------------------------------------


def test_show(published, capsys):
    from kerascut_core.cli.app import main

    assert main(["show", f"{published.root_uri}/tiny@prod"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"tiny@{VERSION}  (latest, prod)"
    assert "  source  keras.applications/MobileNetV2  (weights none)" in lines
    assert "  cut     block_1_expand_relu -> {'C3': 'block_3_expand_relu'}" in lines
    table = lines[lines.index("outputs") + 1 : lines.index("outputs") + 3]
    assert table[0].split() == ["NAME", "ADDRESS", "SHAPE", "DTYPE", "CHANNELS", "STRIDE"]
    assert table[1].split() == ["C3", "block_3_expand_relu", "(None,", "3)", "float32", "3", "8"]
    assert "  mode    tf: pixels scaled from [0, 255] to [-1, 1]" in lines
    assert "  apply   keras.applications.mobilenet_v2.preprocess_input to raw images" in lines
    assert "  a warning | with a pipe and \\x1b[2J an escape" in lines  # store text escaped
    assert "  passed  max abs diff 1.5e-07  samples 4  atol 1e-05  rtol 0  on CPU (cpu)" in lines
    assert f"  latest -> {VERSION}" in lines and f"  prod -> {VERSION}" in lines
    assert "  flow run     flow-run-1" in lines and "\x1b" not in out

    assert main(["show", f"{published.root_uri}/tiny", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["ref"] == f"{published.root_uri}/tiny@{VERSION}"
    assert (payload["aliases"], payload["pointed_by"]) == ({"prod": VERSION}, ["latest", "prod"])
    assert payload["manifest"]["outputs"][0]["stride"] == [8, 8]
    assert payload["manifest"]["lineage"] == {"flow_run_id": "flow-run-1"}


def test_show_unknown_backbone_is_one_line(published, capsys):
    from kerascut_core.cli.app import main

    assert main(["show", f"{published.root_uri}/tinny"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "'tiny'" in err


# --- the consumer gets the contract with the model ---------------------------------------------


def test_load_backbone_with_contract(published, tmp_path):
    import numpy as np

    model, contract = kc.load_backbone_with_contract(f"{published.root_uri}/tiny@prod", cache_dir=tmp_path)
    assert model.name == "tiny" and model.output_shape == (None, 3)
    assert contract.ref == f"{published.root_uri}/tiny@{VERSION}" and contract.version == VERSION
    assert (contract.channels, contract.strides) == ({"C3": 3}, {"C3": [8, 8]})
    assert contract.outputs["C3"].address == "block_3_expand_relu"
    assert contract.warnings == [CANDIDATE["warnings"][0]]
    import keras

    assert contract.preprocess_function is keras.applications.mobilenet_v2.preprocess_input
    assert np.allclose(contract.preprocess(np.array([[0.0, 127.5, 255.0, 255.0]])), [[-1.0, 0.0, 1.0, 1.0]])
    loaded = kc.load_backbone_with_contract(f"{published.root_uri}/tiny", cache_dir=tmp_path)
    assert loaded.contract.manifest == contract.manifest and loaded.model is not model


@pytest.mark.parametrize(
    ("preprocessing", "reason"),
    [
        ({"mode": "tf", "function": "keras.applications.mobilenet_v2.preprocess_input", "applies_to_inputs": False}, "tensors from inside"),
        ({"mode": "in_graph", "layers": [{"address": "rescaling", "type": "Rescaling", "kept": False}]}, "dropped"),
        ({"mode": "unknown"}, "unknown"),
    ],
)
def test_no_preprocessing_function_when_the_contract_gives_none(preprocessing, reason):
    manifest = Manifest.model_validate({**json.loads(V1.read_text()), "preprocessing": preprocessing})
    contract = BackboneContract(manifest, "./store/mnv2-stride16@3f9a0c1d2e4b5a69")
    assert contract.preprocess_function is None
    with pytest.raises(SourceError, match=reason):
        contract.preprocess([[0.0]])


def test_in_graph_kept_and_scale_offset():
    import numpy as np

    base = json.loads(V1.read_text())
    kept = BackboneContract(Manifest.model_validate({**base, "preprocessing": {
        "mode": "in_graph", "layers": [{"address": "rescaling", "type": "Rescaling", "kept": True}]}}), "r")
    assert kept.preprocess([[255.0]]) == [[255.0]]  # the backbone preprocesses
    hub = BackboneContract(Manifest.model_validate({**base, "preprocessing": {"mode": "scale_offset", "scale": 0.5, "offset": -1.0}}), "r")
    assert np.allclose(hub.preprocess([[4.0]]), [[1.0]])
