"""A backbone with versions built for diffing: tiny Keras models and hand-written manifests.

``v-base`` is a two-output conv net (``C4`` at stride 4, ``C5`` at stride 8); every other
version changes one thing against it (see :data:`VARIANTS`). Models are built once per test
module by :func:`model_files`; :func:`publish_world` commits the versions into a store.
"""

from __future__ import annotations

import copy
import zipfile
from pathlib import Path
from typing import Any

from kerascut_core.publishing import commit_version, stage_candidate, update_latest
from kerascut_core.publishing.manifest import Manifest

__all__ = ["BASE", "NAME", "VARIANTS", "manifest", "model_files", "publish", "publish_world"]

NAME = "det"

BASE: dict[str, Any] = {
    "source": {"uri": "keras.applications/Tiny", "fingerprint": "fp-1", "weights": "none"},
    "cut": {"end": {"C4": "c1", "C5": "c2"}},
    "inputs": [{"name": "image", "shape": [None, 32, 32, 3], "dtype": "float32", "replaces": "image"}],
    "outputs": [
        {"name": "C4", "shape": [None, 8, 8, 4], "dtype": "float32", "address": "c1", "channels": 4, "stride": [4, 4]},
        {"name": "C5", "shape": [None, 4, 4, 6], "dtype": "float32", "address": "c2", "channels": 6, "stride": [8, 8]},
    ],
    "params": {"total_source": 500, "kept": 338},
    "validation": {"passed": True, "max_abs_diff": 0.0},
    "software": {"kerascut": "0.1.0", "keras": "3.10.0", "tensorflow": "2.19.0", "python": "3.11.7",
                 "keras_backend": "tensorflow"},
    "preprocessing": {"mode": "tf", "function": "keras.applications.mobilenet_v2.preprocess_input",
                      "layers": [{"address": "rescaling", "type": "Rescaling", "kept": True}]},
}


def _output(fields: dict[str, Any], index: int, **changes: Any) -> dict[str, Any]:
    fields["outputs"][index].update(changes)
    return fields


def _variant(change: Any) -> dict[str, Any]:
    fields = copy.deepcopy(BASE)
    change(fields)
    return fields


#: version -> (the model file it carries, the manifest fields)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "v-base": ("base", copy.deepcopy(BASE)),
    "v-rebuild": ("rebuild", _variant(lambda f: f["source"].update(fingerprint="fp-2"))),
    "v-weights": ("weights", _variant(lambda f: f["software"].update(keras="3.11.0"))),
    "v-output-removed": ("base", _variant(lambda f: f["outputs"].pop())),
    "v-channels": ("base", _variant(lambda f: _output(f, 0, channels=8, shape=[None, 8, 8, 8]))),
    "v-stride": ("base", _variant(lambda f: (
        f["inputs"][0].update(shape=[None, 16, 16, 3], replaces="stem"),
        _output(f, 0, stride=[2, 2]), _output(f, 1, stride=[4, 4])))),
    "v-dtype": ("base", _variant(lambda f: _output(f, 1, dtype="float16"))),
    "v-preprocessing": ("base", _variant(lambda f: f["preprocessing"].update(
        mode="caffe", function="keras.applications.resnet.preprocess_input",
        layers=[{"address": "rescaling", "type": "Rescaling", "kept": False}]))),
    "v-input-added": ("base", _variant(lambda f: f["inputs"].append(
        {"name": "mask", "shape": [None, 32, 32, 1], "dtype": "float32", "replaces": "mask"}))),
    "v-renamed": ("base", _variant(lambda f: _output(f, 0, name="P4"))),
}


def manifest(version: str, fields: dict[str, Any] | None = None) -> Manifest:
    data = copy.deepcopy(fields if fields is not None else VARIANTS.get(version, ("", BASE))[1])
    return Manifest(name=NAME, version=version, **data)


def _build(seed: int, path: Path) -> Path:
    import keras

    keras.utils.set_random_seed(seed)
    image = keras.Input((32, 32, 3), name="image")
    c1 = keras.layers.Conv2D(4, 3, strides=4, padding="same", name="c1")(image)
    c2 = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="c2")(c1)
    keras.Model(image, [c1, c2], name="tiny").save(path)
    keras.backend.clear_session()
    return path


def model_files(directory: Path) -> dict[str, Path]:
    """``base``, ``rebuild`` (the same weights, other bytes) and ``weights`` (other weights)."""
    files = {"base": _build(0, directory / "base.keras"), "rebuild": _build(0, directory / "rebuild.keras"),
             "weights": _build(1, directory / "weights.keras")}
    with zipfile.ZipFile(files["rebuild"], "a") as archive:  # other bytes for certain, same model
        archive.comment = b"rebuilt"
    return files


def publish(store: Any, version: str, model: Path, fields: dict[str, Any] | None = None) -> None:
    uri = stage_candidate(store, NAME, version, {"model.keras": model})
    commit_version(store, NAME, version, uri, manifest(version, fields))


def publish_world(store: Any, files: dict[str, Path], versions: list[str] | None = None) -> None:
    """Commit the versions (default: all of :data:`VARIANTS`); latest names ``v-base``."""
    for version in versions or list(VARIANTS):
        publish(store, version, files[VARIANTS[version][0]])
    update_latest(store, NAME, "v-base")
