"""The examples in the docstrings of the pure modules run, as part of the normal test command.

A module is *pure* here when it imports, and its examples run, without TensorFlow, Keras,
boto3/botocore, graphviz or the network. ``DOCTESTED`` lists those that have examples that run
(``# doctest: +SKIP`` ones do not count); ``NOT_DOCTESTED`` lists every other module whose
source has a ``>>>`` and why it is left out. The lists are written out (reviewed), not worked
out at run time, so a module that starts needing Keras fails here instead of dropping out
silently.

To extend them: a new example in a module of ``DOCTESTED`` needs nothing. A module with new
examples is flagged by ``test_every_module_with_examples_is_listed``: if
``test_doctested_modules_need_no_tensorflow_keras_boto3_or_network`` passes with it added to
``DOCTESTED``, keep it there; otherwise mark its Keras/TF/S3 examples ``# doctest: +SKIP`` or
add it to ``NOT_DOCTESTED`` with the reason.
"""

from __future__ import annotations

import doctest
import importlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

#: The pure modules with examples that run (``# doctest: +SKIP`` ones do not count).
DOCTESTED = (
    "kerascut_core._lazy",
    "kerascut_core.artifacts",
    "kerascut_core.installed",
    "kerascut_core._names",
    "kerascut_core.text",
    "kerascut_core.config",
    "kerascut_core.config._fields",
    "kerascut_core.config.backbone",
    "kerascut_core.config.describe",
    "kerascut_core.config.load",
    "kerascut_core.config.models",
    "kerascut_core.config.schema",
    "kerascut_core.config.settings",
    "kerascut_core.config.yaml_loader",
    "kerascut_core.durations",
    "kerascut_core.formatting",
    "kerascut_core.events",
    "kerascut_core.extras",
    "kerascut_core.pipeline_names",
    "kerascut_core.safe_fs",
    "kerascut_core.transient",
    "kerascut_core.catalog.html",
    "kerascut_core.publishing.diff_parts",
    "kerascut_core.publishing.history",
    "kerascut_core.publishing.layout",
    "kerascut_core.pipeline.plan",
    "kerascut_core.publishing.versioning",
    "kerascut_core.sources.cache",
    "kerascut_core.sources.imports",
    "kerascut_core.sources.load_errors",
    "kerascut_core.sources.preprocessing",
    "kerascut_core.sources.presets",
    "kerascut_core.stores",
    "kerascut_core.aws.credentials",
    "kerascut_core.stores._json",
    "kerascut_core.stores.capabilities",
    "kerascut_core.stores.registry",
    "kerascut_core.surgery.backends",
    "kerascut_core.surgery.contract",
    "kerascut_core.surgery.names",
    "kerascut_core.uris",
    "kerascut_core.validation.comparisons",
    "kerascut_core.validation.device",
    "kerascut_core.validation.file_weights",
    "kerascut_core.validation.locations",
    "kerascut_core.validation.messages",
    "kerascut_core.validation.options",
    "kerascut_core.validation.report",
    "kerascut_core.validation.runtimes",
    "kerascut_core.validation.runtimes_onnx",
)

_KERAS_SKIPPED = "its examples load or cut Keras models (+SKIP); what runs is only the import"
_STORE_SKIPPED = "its examples publish to or read a store on disk (+SKIP)"

#: Modules with a ``>>>`` in their source that are not doctested here, and why.
NOT_DOCTESTED = {
    "kerascut_core": _KERAS_SKIPPED,
    "kerascut_core.publishing": _STORE_SKIPPED,
    "kerascut_core.catalog": _STORE_SKIPPED,
    "kerascut_core.catalog.build": _STORE_SKIPPED,
    "kerascut_core.publishing.consumer_registry": _STORE_SKIPPED,
    "kerascut_core.publishing.gate": _STORE_SKIPPED,
    "kerascut_core.publishing.holding": _STORE_SKIPPED,
    "kerascut_core.pipeline": _STORE_SKIPPED,
    "kerascut_core.pipeline.assemble": _STORE_SKIPPED,
    "kerascut_core.pipeline.candidate": _KERAS_SKIPPED,
    "kerascut_core.publishing.card": "makes the card of a manifest read from a store (+SKIP)",
    "kerascut_core.publishing.commit": _STORE_SKIPPED,
    "kerascut_core.publishing.consumer": "loads a published Keras backbone (+SKIP); only the import runs",
    "kerascut_core.pipeline.freshness": "fingerprints a source against a store (+SKIP)",
    "kerascut_core.publishing.diff": _STORE_SKIPPED,
    "kerascut_core.publishing.garbage": _STORE_SKIPPED,
    "kerascut_core.publishing.listing": _STORE_SKIPPED,
    "kerascut_core.publishing.pointer_files": _STORE_SKIPPED,
    "kerascut_core.publishing.recovery": "asks a versioned S3 bucket for old object versions (+SKIP)",
    "kerascut_core.publishing.manifest": "reads a manifest.json file (+SKIP)",
    "kerascut_core.publishing.pointers": _STORE_SKIPPED,
    "kerascut_core.pipeline.reports": "validates a staged candidate with Keras (+SKIP)",
    "kerascut_core.publishing.retention": _STORE_SKIPPED,
    "kerascut_core.publishing.root": _STORE_SKIPPED,
    "kerascut_core.publishing.staging": _STORE_SKIPPED,
    "kerascut_core.publishing.usage": "loads a published Keras backbone with its contract (+SKIP); only the import runs",
    "kerascut_core.sources": _KERAS_SKIPPED,
    "kerascut_core.sources.applications": "lists keras.applications (+SKIP); only the import runs",
    "kerascut_core.sources.archive": "opens a .keras file (+SKIP)",
    "kerascut_core.sources.directories": "lists and downloads an S3 directory (+SKIP)",
    "kerascut_core.sources.fetching": "downloads from S3 (+SKIP)",
    "kerascut_core.sources.fingerprints": "fingerprints Keras models and S3 objects (+SKIP)",
    "kerascut_core.sources.load": _KERAS_SKIPPED,
    "kerascut_core.surgery": "builds and cuts Keras models",
    "kerascut_core.surgery.dominators": "imports Keras",
    "kerascut_core.surgery.drawing": "builds a Keras model and draws it with graphviz",
    "kerascut_core.surgery.export": "saves a Keras model (+SKIP)",
    "kerascut_core.surgery.feature_pyramid": "builds a keras.applications model (+SKIP)",
    "kerascut_core.surgery.graph": "imports Keras",
    "kerascut_core.surgery.plan": "imports Keras",
    "kerascut_core.surgery.rebuild": "imports Keras",
    "kerascut_core.surgery.strides": "imports Keras",
    "kerascut_core.validation": _KERAS_SKIPPED,
    "kerascut_core.validation.runtimes_litert": "opens a .tflite in the LiteRT interpreter (+SKIP)",
    "kerascut_core.validation.sizes": "runs shape inference on a Keras model (+SKIP); only the import runs",
}

#: Top-level packages that no doctested module may import, even indirectly.
FORBIDDEN = ("tensorflow", "keras", "boto3", "botocore", "s3transfer", "graphviz")


def _modules_with_examples() -> set[str]:
    """Every kerascut_core module whose source has a ``>>>`` (found without importing it)."""
    found = set()
    for path in (ROOT / "kerascut_core").rglob("*.py"):
        if ">>>" in path.read_text(encoding="utf-8"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


@pytest.mark.parametrize("name", sorted(DOCTESTED))
def test_doctests(name):
    module = importlib.import_module(name)
    # Failures are printed (to the captured stdout pytest shows) as doctest reports them.
    result = doctest.testmod(module, optionflags=FLAGS, report=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed"
    assert result.attempted > 0, f"{name} has no examples that run: move it to NOT_DOCTESTED"


def test_every_module_with_examples_is_listed():
    assert not set(DOCTESTED) & set(NOT_DOCTESTED)
    listed = set(DOCTESTED) | set(NOT_DOCTESTED)
    found = _modules_with_examples()
    assert sorted(found - listed) == [], "examples in modules not listed: add each to DOCTESTED or NOT_DOCTESTED"
    assert sorted(listed - found) == [], "listed modules without examples: remove them"


def test_doctested_modules_need_no_tensorflow_keras_boto3_or_network():
    """In a fresh interpreter where those imports and network connections fail, all pass."""
    script = textwrap.dedent(
        """
        import doctest, importlib, importlib.abc, json, socket, sys

        names, forbidden, flags = json.loads(sys.argv[1])

        class Refuse(importlib.abc.MetaPathFinder):
            def find_spec(self, fullname, path, target=None):
                if fullname.partition(".")[0] in forbidden:
                    raise ImportError(f"{fullname} is refused in this test")
                return None

        def no_network(*args, **kwargs):
            raise OSError("no network in this test")

        sys.meta_path.insert(0, Refuse())
        socket.socket.connect = socket.socket.connect_ex = no_network
        socket.create_connection = socket.getaddrinfo = no_network
        results = {}
        for name in names:
            result = doctest.testmod(importlib.import_module(name), optionflags=flags, report=False)
            results[name] = [result.failed, result.attempted]
        loaded = sorted(m for m in sys.modules if m.partition(".")[0] in forbidden)
        print(json.dumps({"results": results, "loaded": loaded}))
        """
    )
    args = json.dumps([sorted(DOCTESTED), FORBIDDEN, FLAGS])
    out = subprocess.run(
        [sys.executable, "-c", script, args], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    failed = {name: fa for name, fa in report["results"].items() if fa[0] or not fa[1]}
    assert failed == {}, out.stdout
