"""Version diffs: the verdict and its reasons on version pairs built for the purpose, golden JSON
for each, the CLI's exit codes (0 / 3 / 2), and the same on the S3 API server.

The world (tests/support/diff_world.py) is published once per module into a local store. Set
``KERASCUT_WRITE_GOLDEN=1`` to rewrite tests/fixtures/diff_golden/ after a deliberate change.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

import kerascut_core as kc
from kerascut_core.errors import BadRefError
from kerascut_core.stores import open_store
from tests.support.cli import kerascut
from tests.support.diff_world import NAME, VARIANTS, model_files, publish_world

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "diff_golden"
STORE_KINDS = ("local", "s3")

#: version -> (verdict, whether the models are loaded)
CASES = {
    "v-rebuild": ("identical", True),
    "v-weights": ("compatible", True),
    "v-output-removed": ("breaking", False),
    "v-channels": ("breaking", False),
    "v-stride": ("breaking", False),
    "v-dtype": ("breaking", False),
    "v-preprocessing": ("breaking", False),
    "v-input-added": ("breaking", False),
    "v-renamed": ("breaking", False),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return model_files(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def world(files, tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    publish_world(open_store(str(root / "store")), files)
    return root


def _normal(value, root: str):
    """The JSON with the store path and the float values (kernel-dependent) made stable."""
    if isinstance(value, dict):
        return {k: _normal(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v, root) for v in value]
    if isinstance(value, str):
        return value.replace(root, "STORE")
    if isinstance(value, float):
        return "0" if value == 0 else "nonzero"
    return value


@pytest.mark.parametrize("version", list(CASES))
def test_verdicts_match_the_golden_json(world, version):
    verdict, models = CASES[version]
    store = str(world / "store")
    result = kc.diff(f"{store}/{NAME}@v-base", f"{store}/{NAME}@{version}", samples=2 if models else 0,
                     cache_dir=world / "cache")
    assert result.verdict == verdict and result.reasons
    got = _normal(result.to_json(), store)
    path = GOLDEN / f"{version}.json"
    if os.environ.get("KERASCUT_WRITE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(got, indent=2) + "\n")
    assert got == json.loads(path.read_text())


def test_what_each_pair_reports(world):
    store = str(world / "store")
    base = f"{store}/{NAME}@v-base"

    def reasons(version):
        return kc.diff(base, f"{store}/{NAME}@{version}", samples=0).reasons

    assert reasons("v-output-removed") == ["output 'C5' removed"]
    assert reasons("v-channels") == ["output 'C4': shape (?, 8, 8, 4) -> (?, 8, 8, 8)", "output 'C4': channels 4 -> 8"]
    assert reasons("v-dtype") == ["output 'C5': dtype float32 -> float16"]
    assert reasons("v-input-added") == ["input 'mask' added"]
    assert reasons("v-renamed") == ["output 'C4' renamed to 'P4'"]
    assert "output 'C4': stride (4, 4) -> (2, 2)" in reasons("v-stride")
    assert "preprocessing 'rescaling': in-graph layer kept -> dropped" in reasons("v-preprocessing")


def test_weights_and_numbers_of_a_retrained_version(world):
    store = str(world / "store")
    result = kc.diff(f"{store}/{NAME}@latest", f"{store}/{NAME}@v-weights", samples=3, cache_dir=world / "cache")
    assert result.a["pointer"] == "latest" and result.b["pointer"] is None
    assert result.weights.changed_layers == ["c1", "c2"] and result.weights.layers == 2
    assert result.weights.largest > 0 and result.weights.largest_layer in ("c1", "c2")
    assert [n.output for n in result.numbers] == ["C4", "C5"]
    assert all(n.max_abs_diff > 0 and math.isfinite(n.max_rel_diff) and n.samples == 3 for n in result.numbers)
    assert [c.line() for c in result.lineage] == ["lineage: keras 3.10.0 -> 3.11.0"]
    same = kc.diff(f"{store}/{NAME}@v-base", f"{store}/{NAME}@v-base", samples=0)
    assert same.verdict == "identical"


def test_samples_zero_loads_no_model_and_says_so(world):
    store = str(world / "store")
    result = kc.diff(f"{store}/{NAME}@v-base", f"{store}/{NAME}@v-weights", samples=0)
    assert result.verdict == "compatible" and result.weights is None and result.numbers is None
    assert any("--samples 0" in note for note in result.notes)


def test_cli_exit_codes_and_text(world):
    store = str(world / "store")
    out = kerascut("diff", f"{store}/{NAME}@v-base", f"{store}/{NAME}@v-channels", "--samples", "0")
    assert out.returncode == 3, out.stderr
    assert out.stdout.splitlines()[0] == f"{NAME}@v-base -> {NAME}@v-channels: breaking"
    assert "  output 'C4': channels 4 -> 8" in out.stdout.splitlines()
    out = kerascut("diff", f"{store}/{NAME}@v-base", f"{store}/{NAME}@v-weights", "--samples", "0", "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["verdict"] == "compatible"
    out = kerascut("diff", f"{store}/{NAME}@v-base", f"{store}/{NAME}@nope", "--samples", "0")
    assert out.returncode == 2 and out.stderr.startswith("error: ") and len(out.stderr.splitlines()) == 1
    out = kerascut("diff", f"{store}/{NAME}@v-base", f"{store}/{NAME}", "--samples", "-1")
    assert out.returncode == 2
    with pytest.raises(BadRefError, match="missing-backbone"):
        kc.diff(f"{store}/{NAME}", f"{store}/missing-backbone", samples=0)


def test_store_text_is_printed_escaped(files, tmp_path):
    from tests.support.diff_world import BASE, publish

    store = open_store(str(tmp_path / "store"))
    publish(store, "v1", files["base"])
    fields = json.loads(json.dumps(BASE))
    fields["outputs"][0]["name"] = "C4\x1b]0;owned\x07"
    publish(store, "v2", files["base"], fields)
    out = kerascut("diff", f"{store.root_uri}/{NAME}@v1", f"{store.root_uri}/{NAME}@v2", "--samples", "0")
    assert out.returncode == 3 and "\x1b" not in out.stdout and "\\x1b]0;owned" in out.stdout


def test_diff_on_each_store(store_uri, files, tmp_path):
    store = open_store(store_uri)
    publish_world(store, files, ["v-base", "v-weights", "v-dtype"])
    result = kc.diff(f"{store_uri}/{NAME}", f"{store_uri}/{NAME}@v-weights", samples=2, cache_dir=tmp_path / "cache")
    assert result.verdict == "compatible" and result.weights.changed_layers == ["c1", "c2"]
    assert kc.diff(f"{store_uri}/{NAME}", f"{store_uri}/{NAME}@v-dtype", samples=0).verdict == "breaking"


def test_every_variant_has_a_case():
    assert set(CASES) == set(VARIANTS) - {"v-base"}


def test_every_version_says_what_it_changed_in_its_card(world):
    from kerascut_core.pipeline.assemble import with_changes
    from kerascut_core.publishing.card import model_card
    from tests.support.diff_world import manifest

    store = open_store(str(world / "store"))  # latest names v-base
    changed = with_changes(store, manifest("v-channels"))
    assert changed.changes.from_version == "v-base" and changed.changes.verdict == "breaking"
    assert changed.changes.interface == ["output 'C4': shape (?, 8, 8, 4) -> (?, 8, 8, 8)", "output 'C4': channels 4 -> 8"]
    card = model_card(changed)
    assert "## Changes from `v-base`" in card and "**breaking**" in card
    assert "- output &#x27;C4&#x27;: channels 4 -&gt; 8" in card  # Markdown-escaped store text
    assert with_changes(store, manifest("v-base")).changes is None  # latest names it: nothing to compare
    again = kc.Manifest.model_validate_json(changed.to_json())
    assert model_card(again) == card  # the card is still a function of the manifest alone
