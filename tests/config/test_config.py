"""The YAML config: field names, defaults, overrides, one-line errors with field paths, schema."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kerascut_core.config import (
    KerascutConfig,
    config_json_schema,
    load_config,
    parse_config,
)
from kerascut_core.errors import ConfigError, KerascutError, StoreError
from kerascut_core.uris import NAME_MAX_LENGTH, check_name
from tests.support.cli import kerascut as run_kerascut

ROOT = Path(__file__).resolve().parents[2]

ISSUE_EXAMPLE = """
store: s3://team-backbones/prod
cache_dir: ~/.cache/kerascut
schedule: {cron: "0 3 * * 1", timezone: UTC}
validation:
  samples: 8
  batch_size: 8
  atol: 0.0
  require_gpu: false
  deployment: null
backbones:
  - name: mobilenetv2-stride16
    source: keras.applications/MobileNetV2
    weights: imagenet
    input_shape: [224, 224, 3]
    start: block_3_expand_relu
    end: block_13_expand_relu
    formats: [keras]
    validation: {samples: 4}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "kerascut.yaml"
    path.write_text(text)
    return path


def _base(**backbone: object) -> dict:
    return {"store": "./backbones", "backbones": [{"name": "b", "source": "model.keras", **backbone}]}


def test_issue_example_loads_with_exact_field_names(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, ISSUE_EXAMPLE))
    assert cfg.store == "s3://team-backbones/prod"
    assert cfg.cache_dir == os.path.expanduser("~/.cache/kerascut")  # ~ and $VAR are expanded, never literal
    assert (cfg.schedule.cron, cfg.schedule.timezone) == ("0 3 * * 1", "UTC")
    assert cfg.validation.samples == 8 and cfg.validation.deployment is None
    (b,) = cfg.backbones
    assert (b.name, b.source, b.weights, b.input_shape) == (
        "mobilenetv2-stride16", "keras.applications/MobileNetV2", "imagenet", [224, 224, 3]
    )
    assert (b.start, b.end, b.formats) == ("block_3_expand_relu", "block_13_expand_relu", ["keras"])
    merged = b.resolved_validation(cfg.validation)
    assert (merged.samples, merged.batch_size, merged.atol) == (4, 8, 0.0)
    assert b.cut_spec().to_dict() == {
        "start": "block_3_expand_relu", "end": "block_13_expand_relu",
        "drop_first": None, "extra_inputs": "error",
    }
    assert b.source_options() == {
        "allow_unsafe": False, "weights": "imagenet", "input_shape": (224, 224, 3)
    }


def test_shipped_configs_are_valid() -> None:
    for name in ("quickstart.yaml", "example-s3.yaml"):
        cfg = load_config(ROOT / "deployments" / name)
        assert cfg.backbones
    quick = load_config(ROOT / "deployments" / "quickstart.yaml")
    assert quick.store == "./backbones"
    assert len(quick.backbones) == 2
    assert all(b.source.startswith("keras.applications/") and b.weights == "none" for b in quick.backbones)


def test_defaults_and_end_forms() -> None:
    cfg = parse_config(
        {
            "store": "/srv/backbones",
            "backbones": [
                {"name": "a", "source": "keras.applications/ResNet50",
                 "end": {"C3": "conv3_block4_out", "C4": "conv4_block6_out"}},
                {"name": "b", "source": "s3://bucket/key.h5", "drop_first": 3, "end": ["x", "y"],
                 "formats": ["saved_model"], "extra_inputs": "auto", "allow_unsafe": True},
            ],
        }
    )
    a, b = cfg.backbones
    assert cfg.schedule is None and cfg.concurrency == 2 and cfg.aws_credentials_block is None
    assert a.source_options() == {"allow_unsafe": False, "weights": "imagenet"}
    assert a.end == {"C3": "conv3_block4_out", "C4": "conv4_block6_out"}
    assert b.formats == ["keras", "saved_model"]  # keras is always published
    assert b.cut_spec().drop_first == 3 and b.cut_spec().extra_inputs == "auto"
    assert b.source_options() == {"allow_unsafe": True}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_base(strat="x"), "backbones[0].strat: Unknown key 'strat'. Did you mean 'start'"),
        ({**_base(), "valdation": {}}, "valdation: Unknown key 'valdation'. Did you mean 'validation'?"),
        ({**_base(), "validation": {"sample": 2}}, "validation.sample: Unknown key 'sample'. Did you mean 'samples'"),
        (_base(validation={"atoll": 1}), "backbones[0].validation.atoll: Unknown key 'atoll'. Did you mean 'atol'"),
        (_base(start=3), "backbones[0].start: Expected a layer name or a list of names. Received 3."),
        (_base(end={"P3": 1}), "backbones[0].end: Expected a layer name"),
        (_base(start="a", drop_first=2), "backbones[0]: Expected either `start` or `drop_first`, not both."),
        (_base(drop_first=0), "backbones[0].drop_first:"),
        (_base(formats=["tflite"]), "backbones[0].formats[0]: Expected one of 'keras', 'saved_model', 'onnx' or 'litert'. Received 'tflite'."),
        (_base(weights="none"), "backbones[0]: Expected `weights` only with keras.applications/NAME sources."),
        (_base(name="../etc"), "backbones[0].name: Expected a name of letters, digits"),
        (_base(input_shape=[0, 3]), "backbones[0].input_shape: Expected a list of positive sizes"),
        (_base(extra_inputs="sometimes"), "backbones[0].extra_inputs: Expected one of 'error' or 'auto'."),
        ({**_base(), "schedule": {"cron": "0 3 * *"}}, 'schedule.cron: Expected a cron expression with 5 fields like "0 3 * * 1"'),
        ({**_base(), "schedule": {"cron": "0 3 * * 1", "timezone": "Europe/Berln"}}, "schedule.timezone: Expected an IANA time zone such as 'UTC' or 'Europe/Berlin'. Received 'Europe/Berln'. Did you mean 'Europe/Berlin'"),
        ({**_base(), "validation": {"deployment": "gpu"}}, "validation.deployment: Expected a deployment name as 'FLOW/DEPLOYMENT'"),
        ({**_base(), "store": "http://x/y"}, "store: Expected a local directory, file:// URI or s3://bucket/prefix. Received a http:// URI"),
        ({"store": "x", "backbones": []}, "backbones: Expected at least one backbone."),
        ({"store": "x", "backbones": [{"name": "a", "source": "m"}, {"name": "a", "source": "n"}]}, "Received 'a' twice"),
        ({"backbones": [{"name": "a", "source": "m"}]}, "store: Expected this required field."),
        ({**_base(), "concurrency": 0}, "concurrency: "),
        ({**_base(), "retention": {"keep_last": 0}}, "retention.keep_last: "),
        ({**_base(), "retention": {"keep": 3}}, "retention.keep: "),
        (_base(retention={"keep_last": -1}), "backbones[0].retention.keep_last: "),
        ({**_base(), "prepare": {"deployment": "prepare-backbone"}},
         "prepare.deployment: Expected a deployment name as 'FLOW/DEPLOYMENT'"),
        ({**_base(), "prepare": {"deploy": "prepare-backbone/cpu"}},
         "prepare.deploy: Unknown key 'deploy'. Did you mean 'deployment'"),
    ],
)
def test_errors_name_the_field_path(data: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, source="team.yaml")
    message = str(info.value)
    assert message.startswith("team.yaml: ")
    assert expected in message
    assert "\n" not in message
    assert info.value.exit_code == 2


def test_retention_default_and_per_backbone_override() -> None:
    """`retention: {keep_last: N}` at the top is every backbone's default; a backbone may set its own."""
    cfg = parse_config(_base())
    assert cfg.retention.keep_last is None and cfg.backbones[0].resolved_retention(cfg.retention).keep_last is None
    data = {**_base(), "retention": {"keep_last": 5}}
    data["backbones"] += [{"name": "c", "source": "m.keras", "retention": {"keep_last": 2}},
                          {"name": "d", "source": "n.keras", "retention": {}}]
    cfg = parse_config(data)
    assert [b.resolved_retention(cfg.retention).keep_last for b in cfg.backbones] == [5, 2, 5]
    schema = config_json_schema()
    assert "retention" in schema["properties"] and "retention" in schema["$defs"]["BackboneConfig"]["properties"]
    assert schema["$defs"]["RetentionSettings"]["properties"]["keep_last"]["anyOf"][0]["minimum"] == 1


def test_error_path_with_index_two(tmp_path: Path) -> None:
    data = _base()
    data["backbones"] += [{"name": "c", "source": "m.keras"}, {"name": "d", "source": "n.keras", "start": ["a", 1]}]
    with pytest.raises(ConfigError, match=r"backbones\[2\]\.start: Expected a layer name or a list of names"):
        parse_config(data)


def test_several_problems_are_counted() -> None:
    with pytest.raises(ConfigError, match=r"\(and 1 more problem\)$"):
        parse_config({"store": "x", "backbones": [{"name": "a", "source": "m", "strat": 1, "ned": 2}]})


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match=r"kerascut.yaml:3:\d+: Expected valid YAML"):
        load_config(_write(tmp_path, "store: x\nbackbones:\n  - name: a: b\n"))
    with pytest.raises(ConfigError, match="Received an empty file"):
        load_config(_write(tmp_path, ""))
    with pytest.raises(ConfigError, match="Received list"):
        load_config(_write(tmp_path, "- a\n- b\n"))


def test_select_and_unknown_names() -> None:
    cfg = parse_config({"store": "x", "backbones": [{"name": "resnet", "source": "m"}, {"name": "mobilenet", "source": "n"}]})
    assert [b.name for b in cfg.select(["mobilenet"])] == ["mobilenet"]
    assert [b.name for b in cfg.select(None)] == ["resnet", "mobilenet"]
    with pytest.raises(ConfigError, match=r"Received 'resnt'\. Did you mean 'resnet'"):
        cfg.select(["resnt"])
    assert isinstance(ConfigError("x"), KerascutError)


def test_schema_file_is_up_to_date() -> None:
    committed = json.loads((ROOT / "kerascut_core" / "schemas" / "config.schema.json").read_text())
    assert committed == json.loads(json.dumps(config_json_schema())), (
        "kerascut_core/schemas/config.schema.json is stale: run "
        "`python -m kerascut_core config schema > kerascut_core/schemas/config.schema.json`"
    )
    props = committed["properties"]
    assert {"store", "cache_dir", "schedule", "validation", "backbones", "aws_credentials_block"} <= set(props)
    backbone = committed["$defs"]["BackboneConfig"]["properties"]
    assert {"name", "source", "weights", "input_shape", "include_top", "allow_unsafe", "start",
            "drop_first", "end", "extra_inputs", "formats", "validation"} <= set(backbone)
    assert committed["$defs"]["BackboneConfig"]["additionalProperties"] is False


def test_schema_validates_the_quickstart() -> None:
    """The exported schema accepts what pydantic accepts (a smoke check without jsonschema)."""
    data = yaml.safe_load((ROOT / "deployments" / "quickstart.yaml").read_text())
    schema = config_json_schema()
    assert set(data) <= set(schema["properties"])
    for backbone in data["backbones"]:
        assert set(backbone) <= set(schema["$defs"]["BackboneConfig"]["properties"])
    KerascutConfig.model_validate(data)


def test_config_module_does_not_import_tensorflow_or_prefect() -> None:
    code = (
        "import sys; from kerascut_core.config import load_config; "
        "load_config('deployments/quickstart.yaml'); "
        "print(sorted(m for m in ('tensorflow', 'keras', 'prefect') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_prepare_deployment_default_and_config_check(tmp_path: Path) -> None:
    """`prepare: {deployment: prepare-backbone/cpu}` fans the refresh out; without it, in-process."""
    from kerascut_core.pipeline_names import PREPARE_DEPLOYMENT

    assert parse_config(_base()).prepare.deployment is None
    cfg = parse_config({**_base(), "prepare": {"deployment": PREPARE_DEPLOYMENT}})
    assert cfg.prepare.deployment == "prepare-backbone/cpu"
    assert "PrepareSettings" in config_json_schema()["$defs"]
    path = _write(tmp_path, yaml.safe_dump({**_base(), "prepare": {"deployment": PREPARE_DEPLOYMENT}}))
    out = _cli("config", "check", str(path), "--no-models")
    assert out.returncode == 0 and "fields ok" in out.stdout, out.stderr


def _cli(*args: str, cwd: Path = ROOT, process: bool = False):
    return run_kerascut(*args, cwd=cwd, process=process)


def test_cli_config_schema_and_check_fields(tmp_path: Path) -> None:
    out = _cli("config", "schema")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == json.loads(json.dumps(config_json_schema()))

    good = _cli("config", "check", "deployments/quickstart.yaml", "--no-models")
    assert good.returncode == 0, good.stderr
    assert "fields ok (2 backbone(s)" in good.stdout

    bad = _write(tmp_path, "store: x\nbackbones:\n  - {name: a, source: m.keras, ned: y}\n")
    out = _cli("config", "check", str(bad))
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and "backbones[0].ned: Unknown key 'ned'. Did you mean 'end'" in out.stderr
    assert "Traceback" not in out.stderr and out.stderr.count("\n") == 1


def test_cli_run_bad_config_exits_2(tmp_path: Path) -> None:
    bad = _write(tmp_path, "store: x\nbackbones:\n  - {name: a, source: m.keras, strat: y}\n")
    out = _cli("run", str(bad))
    assert out.returncode == 2
    assert "backbones[0].strat" in out.stderr and "Traceback" not in out.stderr
    out = _cli("run", "deployments/quickstart.yaml", "--only", "resnet50-c3c5")
    assert out.returncode == 2
    assert "Did you mean 'resnet50-c3-c5'" in out.stderr


def test_cli_config_check_layer_names_against_the_model(tmp_path: Path) -> None:
    import keras

    keras.backend.clear_session()
    x = keras.Input((8, 8, 3), name="image")
    h = keras.layers.Conv2D(4, 3, padding="same", name="stem")(x)
    h = keras.layers.Conv2D(4, 3, padding="same", name="block3")(h)
    keras.Model(x, h).save(tmp_path / "m.keras")
    keras.backend.clear_session()

    good = _write(tmp_path, f"store: x\nbackbones:\n  - {{name: a, source: {tmp_path / 'm.keras'}, start: stem, end: block3}}\n")
    out = _cli("config", "check", str(good))
    assert out.returncode == 0, out.stderr
    assert "ok  a: inputs stem -> outputs block3" in out.stdout

    bad = _write(
        tmp_path,
        f"store: x\nbackbones:\n  - {{name: a, source: {tmp_path / 'm.keras'}}}\n"
        f"  - {{name: b, source: {tmp_path / 'm.keras'}, start: stem, end: blokc3}}\n",
    )
    out = _cli("config", "check", str(bad))
    assert out.returncode == 2
    assert "backbones[1].end:" in out.stderr and "'blokc3'" in out.stderr and "'block3'" in out.stderr
    assert "ok  a:" in out.stdout and "Traceback" not in out.stderr


# One backbone-name rule (issue 11): the config checks `name` with uris.check_name, the rule every
# store path segment follows. Expected: True = valid. The config used to refuse 101-128
# characters and 'a..b'; it now accepts exactly what a store can hold.
NAME_TABLE = [
    ("", False),
    ("a", True),
    ("7", True),
    ("a" * 100, True),
    ("a" * 101, True),
    ("a" * 128, True),
    ("a" * 129, False),
    ("A1.b_c-d", True),
    (".a", False),
    (".", False),
    ("..", False),
    ("a..b", True),
    ("a.", True),
    ("-a", False),
    ("_a", False),
    ("é", False),
    ("aé", False),
    ("\uff41", False),  # a fullwidth a
    ("a\u0661", False),  # an Arabic-Indic digit one
    ("a b", False),
    (" a", False),
    ("a ", False),
    ("a/b", False),
    ("/a", False),
    ("a\\b", False),
    ("a\x00", False),
    ("\x00", False),
    ("a\n", False),  # `$` would match before a trailing newline: the rule is a full match
    ("a\tb", False),
    ("a@b", False),
    ("a:b", False),
]


def _store_accepts(name: str) -> bool:
    try:
        return check_name(name) == name
    except StoreError:
        return False


def _config_accepts(name: str) -> bool:
    try:
        parse_config(_base(name=name), source="team.yaml")
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("team.yaml: backbones[0].name: Expected a name of letters, digits")
        assert f"at most {NAME_MAX_LENGTH} characters" in message and "\n" not in message
        return False
    return True


@pytest.mark.parametrize(("name", "valid"), NAME_TABLE, ids=[repr(n)[:20] for n, _ in NAME_TABLE])
def test_config_and_stores_share_one_name_rule(name: str, valid: bool) -> None:
    assert _store_accepts(name) is valid
    assert _config_accepts(name) is valid
    # the JSON schema's pattern (ECMA `$`: the end of the string) says the same, for editors
    pattern = config_json_schema()["$defs"]["BackboneConfig"]["properties"]["name"]["pattern"]
    assert (re.fullmatch(pattern.removeprefix("^").removesuffix("$"), name) is not None) is valid


def test_name_rule_length_is_the_store_limit() -> None:
    assert NAME_MAX_LENGTH == 128  # no published store path (names, versions, run ids) becomes invalid
    schema = config_json_schema()["$defs"]["BackboneConfig"]["properties"]["name"]
    assert schema["maxLength"] == NAME_MAX_LENGTH
    with pytest.raises(StoreError, match="at most 128 characters"):
        check_name("a" * 129, "version")
