"""The manifest model, its exported JSON schema, and content-addressed versions."""

from __future__ import annotations

import json
import re

import pytest
from pydantic import ValidationError

from kerascut_core import CutSpec, compute_version
from kerascut_core.publishing.manifest import SCHEMA_PATH, Manifest, schema, software_versions
from kerascut_core.publishing.versioning import major_minor

BASE = {
    "name": "mnv2",
    "version": "0123456789abcdef",
    "source": {"uri": "s3://b/m.keras", "fingerprint": "s3://b/m.keras?versionId=1", "weights": None, "allow_unsafe": True},
    "cut": {"start": None, "end": {"P3": "a", "P4": "b"}, "drop_first": 2, "extra_inputs": "auto"},
    "inputs": [{"name": "x", "shape": [None, 64, 64, 3], "dtype": "float32"}],
    "outputs": [{"name": "P3", "shape": [None, 8, 8, 32], "dtype": "float32"}],
    "params": {"total_source": 10, "kept": 7},
    "artifacts": [{"path": "model.keras", "format": "keras", "bytes": 12, "sha256": "a" * 64}],
    "validation": {"passed": True, "max_abs_diff": 1e-7, "device": "CPU", "per_output": {"P3": 1e-7}},
}


def test_round_trip_keeps_every_field():
    manifest = Manifest(**BASE)
    again = Manifest.model_validate_json(manifest.to_json())
    assert again == manifest
    data = json.loads(manifest.to_json())
    assert data["schema_version"] == 2
    assert data["validation"]["per_output"] == {"P3": 1e-7}  # the validation report is kept whole
    assert set(data["software"]) == {"kerascut", "keras", "tensorflow", "python", "keras_backend"}
    # the version 2 fields: optional, so a version 1 manifest (tests/publishing/test_model_card.py) still reads
    assert (data["preprocessing"], data["warnings"], data["lineage"]) == (None, [], None)
    assert data["outputs"][0] == {**BASE["outputs"][0], "address": None, "channels": None, "stride": None}
    assert manifest.primary.path == "model.keras"


@pytest.mark.parametrize(
    "patch",
    [
        {"unknown": 1},
        {"artifacts": [{"path": "m", "format": "keras", "bytes": 1, "sha256": "xyz"}]},
        {"params": {"total_source": -1, "kept": 0}},
        {"validation": {"max_abs_diff": 0.0}},
        {"cut": {"extra_inputs": "maybe"}},
        {"source": {**BASE["source"], "sha256": "not-a-digest"}},
        {"preprocessing": {"mode": "bgr"}},
        {"outputs": [{"name": "P3", "shape": [None, 8], "dtype": "float32", "stride": "32"}]},
    ],
)
def test_rejects_bad_manifests(patch):
    with pytest.raises(ValidationError):
        Manifest(**{**BASE, **patch})


def test_exported_schema_is_up_to_date():
    """Regenerate with `python -m kerascut_core.publishing.manifest` after changing the model."""
    assert json.loads(SCHEMA_PATH.read_text()) == json.loads(json.dumps(schema(), sort_keys=True))


def test_software_versions_do_not_import_tensorflow():
    import subprocess
    import sys

    code = "import sys; from kerascut_core.publishing.manifest import software_versions as s; s(); print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert software_versions().keras.startswith("3.")


def test_version_is_a_stable_content_address():
    spec = {"end": "block_13_expand_relu"}
    v = compute_version("fp", spec, [224, 224, 3], "3.15.1", "0.1.0")
    assert re.fullmatch(r"[0-9a-f]{16}", v)
    assert compute_version("fp", CutSpec(end="block_13_expand_relu"), (224, 224, 3), "3.15.0", "0.1.9") == v  # patch releases
    assert compute_version("fp2", spec, [224, 224, 3], "3.15.1", "0.1.0") != v
    assert compute_version("fp", {"end": "block_12_expand_relu"}, [224, 224, 3], "3.15.1", "0.1.0") != v
    assert compute_version("fp", spec, [192, 192, 3], "3.15.1", "0.1.0") != v
    assert compute_version("fp", spec, [224, 224, 3], "3.16.0", "0.1.0") != v
    assert compute_version("fp", spec, [224, 224, 3], "3.15.1", "0.2.0") != v
    assert major_minor("3.15.1+cuda") == "3.15"
