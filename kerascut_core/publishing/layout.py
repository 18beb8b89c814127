"""The store layout: every object name kerascut writes, and the keys built from them.

One module owns every key (issue 11): the rest of kerascut, the tasks and flows included,
builds keys here and never spells ``manifest.json`` or ``.staging`` itself. The layout is fixed;
consumers rely on it::

    <store>/.kerascut-store.json                      the root marker (the first publish writes it)
    <store>/<name>/<version>/model.keras              (+ saved_model/..., graph.svg when configured)
    <store>/<name>/<version>/manifest.json            written last: its presence commits the version
    <store>/<name>/latest.json                        {"version": ..., ...}: the one mutable object
    <store>/.staging/<name>/<version>/<run_id>/...    candidates, then staged.json (written last)
    <store>/.staging/<name>/<version>/<run_id>/report.json   the validation report of that candidate
    <store>/.staging/<name>/<version>/claim.json      the commit lease of that version

Pure Python: names are checked (:func:`kerascut_core.uris.check_name`), nothing is read.

    >>> manifest_key("mnv2", "3f9a0c1d2e4b5a69")
    'mnv2/3f9a0c1d2e4b5a69/manifest.json'
    >>> run_prefix("mnv2", "3f9a0c1d2e4b5a69", "run-1")
    '.staging/mnv2/3f9a0c1d2e4b5a69/run-1'
    >>> run_of(".staging/mnv2/3f9a0c1d2e4b5a69/run-1/model.keras")
    '.staging/mnv2/3f9a0c1d2e4b5a69/run-1'
    >>> artifact_format("saved_model/variables/variables.index"), artifact_format("model.keras")
    ('saved_model', 'keras')
"""

from __future__ import annotations

from pathlib import Path

from kerascut_core.uris import check_name

__all__ = [
    "CLAIM",
    "GRAPH",
    "LATEST",
    "MANIFEST",
    "MARKER",
    "MODEL",
    "REPORT",
    "SAVED_MODEL",
    "STAGED_INDEX",
    "STAGING",
    "artifact_format",
    "artifact_key",
    "claim_key",
    "latest_key",
    "manifest_key",
    "manifest_ref",
    "run_of",
    "run_prefix",
    "staging_dir",
    "version_dir",
]

#: the root marker: its presence makes a directory or prefix a kerascut store
MARKER = ".kerascut-store.json"
#: the staging area: candidates and claims, never listed as published
STAGING = ".staging"
#: the manifest of a version, written last (its presence commits the version)
MANIFEST = "manifest.json"
#: the pointer of a backbone: the version consumers get by default
LATEST = "latest.json"
#: the commit lease of a version, under its staging directory
CLAIM = "claim.json"
#: the index of a staged candidate (paths, sizes, sha256), written last
STAGED_INDEX = "staged.json"
#: the validation report, beside the candidate it validated
REPORT = "report.json"
#: the Keras artifact every version has
MODEL = "model.keras"
#: the picture of the backbone (stages collapsed), published when graphviz is there
GRAPH = "graph.svg"
#: the directory of the SavedModel export (``saved_model/...``), when configured
SAVED_MODEL = "saved_model"


def version_dir(name: str, version: str) -> str:
    """``<name>/<version>``: the directory of a published version."""
    return f"{check_name(name)}/{check_name(version, 'version')}"


def manifest_key(name: str, version: str) -> str:
    """``<name>/<version>/manifest.json``."""
    return f"{version_dir(name, version)}/{MANIFEST}"


def artifact_key(name: str, version: str, path: str) -> str:
    """``<name>/<version>/<path>``: an artifact of a published version (``path`` is checked by
    the caller, see :func:`kerascut_core.uris.check_key`)."""
    return f"{version_dir(name, version)}/{path}"


def manifest_ref(version: str) -> str:
    """``<version>/manifest.json``: the manifest as ``latest.json`` names it (relative to the backbone)."""
    return f"{version}/{MANIFEST}"


def latest_key(name: str) -> str:
    """``<name>/latest.json``."""
    return f"{check_name(name)}/{LATEST}"


def staging_dir(name: str, version: str) -> str:
    """``.staging/<name>/<version>``: the candidates and the claim of a version."""
    return f"{STAGING}/{version_dir(name, version)}"


def claim_key(name: str, version: str) -> str:
    """``.staging/<name>/<version>/claim.json``."""
    return f"{staging_dir(name, version)}/{CLAIM}"


def run_prefix(name: str, version: str, run_id: str) -> str:
    """``.staging/<name>/<version>/<run_id>``: the directory of one run's candidate."""
    return f"{staging_dir(name, version)}/{check_name(run_id, 'run id')}"


def run_of(key: str) -> str | None:
    """The run directory (``.staging/<name>/<version>/<run_id>``) of ``key`` (a key inside it,
    or the directory itself), or ``None`` when ``key`` is not under a run of the staging area."""
    parts = key.split("/")
    if len(parts) < 4 or parts[0] != STAGING:
        return None
    return "/".join(parts[:4])


def artifact_format(path: str) -> str:
    """``model.keras`` -> ``keras``, ``model.h5`` -> ``h5``, ``saved_model/...`` -> ``saved_model``."""
    if path.split("/", 1)[0] == SAVED_MODEL:
        return "saved_model"
    suffix = Path(path).suffix.lower().lstrip(".")
    return {"hdf5": "h5", "json": "json"}.get(suffix, suffix or "file")
