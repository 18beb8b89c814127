"""``end: auto-pyramid`` through the config, the CLI (in process) and the pipeline's steps.

One tiny saved CNN (module scope) is the source: ``kerascut inspect --stages`` lists its
stages, ``kerascut cut --end auto-pyramid --levels`` cuts it, ``kerascut validate`` checks the
cut, and a config backbone with ``end: auto-pyramid`` goes through fetch, cut, stage, validate
and publish into a local store whose manifest and card carry the taps' channels and strides.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import pytest

import kerascut_core as kc
from kerascut_core.config import BackboneConfig, parse_config
from tests.support.cli import kerascut

L = keras.layers


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keras.utils.set_random_seed(1)
    x = keras.Input((16, 16, 3), name="x")
    h = L.ReLU(name="r1")(L.Conv2D(4, 3, strides=2, padding="same", name="c1")(x))
    c2 = L.Conv2D(8, 3, strides=2, padding="same", name="c2")(h)
    h = L.Add(name="b_add")([c2, L.Conv2D(8, 3, padding="same", name="b_conv")(c2)])
    h = L.ReLU(name="r3")(L.Conv2D(16, 3, strides=2, padding="same", name="c3")(h))
    path = tmp_path_factory.mktemp("pyramid") / "tiny.keras"
    keras.Model(x, h, name="tiny_cnn").save(path)
    return path


def test_inspect_stages_table_and_json(source: Path) -> None:
    out = kerascut("inspect", source, "--stages")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["level", "stride", "stride"]
    assert [line.split()[:5] for line in lines[2:6]] == [
        ["P0", "1", "exact", "x", "x"],
        ["P1", "2", "exact", "c1", "r1"],
        ["P2", "4", "exact", "c2", "b_add"],
        ["P3", "8", "exact", "c3", "r3"],
    ]
    data = json.loads(kerascut("inspect", source, "--stages", "--json").stdout)
    assert data["model"] == "tiny_cnn" and data["pyramid_outputs"] is None
    assert [(s["level"], s["latest"], s["channels"]) for s in data["stages"]][2:] == [(2, "b_add", 8), (3, "r3", 16)]


def test_inspect_marks_cut_points_for_the_pyramid(source: Path) -> None:
    data = json.loads(kerascut("inspect", source, "--end", "auto-pyramid", "--levels", "2,3", "--json").stdout)
    points = [row["name"] for row in data["layers"] if row["cut_point"]]
    assert points == ["x", "c1", "r1", "c2"]


def test_cut_at_the_auto_pyramid(source: Path, tmp_path: Path) -> None:
    out_path = tmp_path / "p.keras"
    out = kerascut("cut", source, "--end", "auto-pyramid", "--levels", "2,3", "-o", out_path)
    assert out.returncode == 0, out.stderr
    assert "output P2: (None, 4, 4, 8)  <- b_add  (stride 4)" in out.stdout
    assert "output P3: (None, 2, 2, 16)  <- r3  (stride 8)" in out.stdout
    model = keras.saving.load_model(out_path)
    assert sorted(model.output) == ["P2", "P3"]
    report = kerascut("validate", out_path, "--source", source, "--end", "auto-pyramid", "--levels", "2,3",
                      "--samples", "2", "--json", "-q")
    assert report.returncode == 0, report.stdout[-2000:] + report.stderr[-2000:]
    data = json.loads(report.stdout)
    assert data["passed"] and data["cut_spec"]["end"] == {"P2": "b_add", "P3": "r3"}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--end", "r3", "--levels", "3"], 2, "Expected `levels` only with end='auto-pyramid'"),
        (["--end", "auto-pyramid", "--levels", "3,x"], 2, "Expected pyramid levels as comma-separated integers"),
        (["--end", "auto-pyramid", "--levels", "9"], None, "level 9"),
    ],
)
def test_bad_levels_on_the_command_line(source: Path, tmp_path: Path, args: list[str], code: int | None,
                                        message: str) -> None:
    out = kerascut("cut", source, *args, "-o", tmp_path / "p.keras")
    assert out.returncode != 0 and (code is None or out.returncode == code)
    assert message in " ".join(out.stderr.split())
    assert not (tmp_path / "p.keras").exists()


def test_config_fields_and_their_errors() -> None:
    base = {"store": "./store", "backbones": [{"name": "p", "source": "keras.applications/ResNet50"}]}
    cfg = parse_config({**base, "backbones": [{**base["backbones"][0], "end": "auto-pyramid", "levels": [3, 4, 5]}]})
    assert cfg.backbones[0].cut_spec().to_dict()["levels"] == [3, 4, 5]
    with pytest.raises(kc.ConfigError, match=r"levels.*only with end='auto-pyramid'"):
        parse_config({**base, "backbones": [{**base["backbones"][0], "end": "conv5_block3_out", "levels": [3]}]})
    with pytest.raises(kc.ConfigError, match="distinct integers"):
        parse_config({**base, "backbones": [{**base["backbones"][0], "end": "auto-pyramid", "levels": [3, 3]}]})


def test_plan_gives_a_version_per_choice_of_levels(tmp_path: Path) -> None:
    config = tmp_path / "kerascut.yaml"
    backbone = {"source": "keras.applications/ResNet50", "weights": "none", "end": "auto-pyramid"}
    config.write_text(json.dumps({"store": str(tmp_path / "store"), "backbones": [
        {"name": "all-levels", **backbone}, {"name": "p3-p5", **backbone, "levels": [3, 4, 5]}]}))
    out = kerascut("plan", config, "--json")
    assert out.returncode == 0, out.stderr
    entries = {b["name"]: b for b in json.loads(out.stdout)["backbones"]}
    assert entries["all-levels"]["status"] == "new"
    assert entries["all-levels"]["version"] != entries["p3-p5"]["version"]


def test_a_config_publishes_a_validated_pyramid_with_channels_and_strides(source: Path, tmp_path: Path) -> None:
    from kerascut_core.config import ValidationSettings
    from kerascut_core.pipeline.assemble import publish_candidate
    from kerascut_core.pipeline.candidate import cut_candidate, fetch_source
    from kerascut_core.pipeline.reports import validate_staged
    from kerascut_core.publishing.versioning import backbone_version
    from kerascut_core.stores import open_store

    backbone = BackboneConfig(name="tiny-fpn", source=str(source), end="auto-pyramid", levels=[2, 3])
    candidate = cut_candidate(backbone, fetch_source(backbone), tmp_path / "work")
    assert [(o.name, o.address, o.channels, o.stride) for o in candidate.outputs] == [
        ("P2", "b_add", 8, [4, 4]), ("P3", "r3", 16, [8, 8])]
    fingerprint = kc.fingerprint(backbone.source, **backbone.source_options())
    version = backbone_version(backbone, fingerprint)
    store = open_store(str(tmp_path / "store"))
    from kerascut_core.publishing.root import ensure_store_root

    ensure_store_root(store)
    staged = kc.stage_candidate(store, backbone.name, version, candidate.files)
    report = validate_staged(staged, backbone, ValidationSettings(samples=2, batch_size=2))
    assert report.passed, report.failures
    result = publish_candidate(store, staged, backbone, version, fingerprint, candidate, report.model_dump(mode="json"))
    assert result.status == "published"
    manifest = json.loads((tmp_path / "store" / "tiny-fpn" / version / "manifest.json").read_text())
    assert manifest["cut"]["end"] == "auto-pyramid" and manifest["cut"]["levels"] == [2, 3]
    assert [o["pyramid"] for o in manifest["outputs"]] == [
        {"rule": "auto-pyramid", "level": 2, "stride": 4, "exact": True, "reduction": 4.0},
        {"rule": "auto-pyramid", "level": 3, "stride": 8, "exact": True, "reduction": 8.0},
    ]
    card = next(p for p in (tmp_path / "store" / "tiny-fpn" / version).iterdir() if p.suffix == ".md").read_text()
    assert "| `P3` | `r3` |" in card and "| 16 | 8 |" in card and "auto-pyramid" in card
