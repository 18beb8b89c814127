"""Issue 10, configs and messages with limits: hostile YAML (alias bombs, deep nesting, huge
integers), huge values in messages, ``..`` keys, ``file://host`` and URIs as the cache directory.

Every refusal is one ``ConfigError`` line (exit 2) naming the file or field and the fix, and it
comes fast: nothing here may take more than a second or two.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

from kerascut_core._names import short_repr
from kerascut_core.config import MAX_YAML_DEPTH, MAX_YAML_NODES, load_config, parse_config
from kerascut_core.config import yaml_loader as config_module
from kerascut_core.errors import ConfigError, SourceError
from kerascut_core.sources.cache import DownloadCache, check_cache_dir, default_cache_dir
from kerascut_core.uris import file_uri_path, parse_uri
from tests.support.cli import kerascut

ROOT = Path(__file__).resolve().parents[2]
BOUND = 1000  # no message may be longer, whatever the value


def _laughs(levels: int = 9, width: int = 9) -> str:
    lines = ["a0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + f"\nstore: *a{levels - 1}\nbackbones: *a{levels - 1}\n"


def _write(tmp_path: Path, text: str, name: str = "team.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _refused(path: Path) -> str:
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert "\n" not in message and len(message) < BOUND, message[:300]
    assert message.startswith(str(path)), message[:300]
    assert info.value.exit_code == 2
    return message


# --- YAML limits ------------------------------------------------------------------------------


def test_billion_laughs_is_refused_fast(tmp_path: Path) -> None:
    text = _laughs()
    assert len(text) < 700  # the finding: a ~500-byte file
    message = _refused(_write(tmp_path, text))
    assert f"at most {MAX_YAML_NODES:,} YAML values" in message
    assert "write the values out" in message


def test_alias_bomb_inside_a_field_is_refused(tmp_path: Path) -> None:
    levels = ["&l0 [" + ", ".join(["x"] * 8) + "]"]
    levels += [f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 8) + "]" for i in range(1, 7)]
    text = "store: ./b\nbackbones:\n  - {name: a, source: m.keras, start: [" + ", ".join(levels) + "]}\n"
    assert len(text) < 600
    assert "YAML values once anchors and aliases are expanded" in _refused(_write(tmp_path, text))


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    message = _refused(_write(tmp_path, "store: &s [a, *s]\nbackbones: []\n"))
    assert "recursive aliases" in message and "team.yaml:1:" in message


def test_aliases_nested_past_the_depth_limit_are_refused(tmp_path: Path) -> None:
    deep = "[" * 40 + "x" + "]" * 40  # each alone is within the limit ...
    text = f"store: ./b\nx0: &x0 {deep}\nx1: &x1 [*x0, {deep.replace('x', '*x0')}]\nbackbones: [*x1]\n"
    message = _refused(_write(tmp_path, text))  # ... together they are 80+ deep
    assert f"at most {MAX_YAML_DEPTH} levels" in message


@pytest.mark.parametrize("levels", [MAX_YAML_DEPTH + 1, 5000])
def test_deep_nesting_is_a_config_error_not_a_recursion_error(tmp_path: Path, levels: int) -> None:
    path = _write(tmp_path, "store: ./b\nbackbones: " + "[" * levels + "]" * levels + "\n")
    message = _refused(path)
    assert f"team.yaml:2:{MAX_YAML_DEPTH + 11}: Expected YAML nested at most {MAX_YAML_DEPTH} levels" in message


@pytest.mark.parametrize("value", ["9" * 5000, "-" + "1" * 4301, "0x" + "f" * 200, "1_000" * 30])
def test_huge_integers_are_refused_with_their_place(tmp_path: Path, value: str) -> None:
    path = _write(tmp_path, f"store: ./b\nconcurrency: {value}\nbackbones: [{{name: a, source: m}}]\n")
    message = _refused(path)
    assert "team.yaml:2:14: Expected integers of at most 100 digits" in message
    assert f"{len(value):,} characters" in message


def test_unreadable_scalar_values_are_config_errors(tmp_path: Path) -> None:
    message = _refused(_write(tmp_path, "store: 2024-13-45\nbackbones: []\n"))
    assert "team.yaml:1:8: Expected valid YAML" in message and "2024-13-45" in message


def test_oversized_file_is_refused_before_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_module, "MAX_CONFIG_BYTES", 1024 * 1024)
    path = _write(tmp_path, "store: ./b\n# " + "x" * (1024 * 1024) + "\nbackbones: []\n")
    assert "Expected a config file of at most 1 MiB" in _refused(path)


def test_ordinary_anchors_and_merge_keys_keep_working(tmp_path: Path) -> None:
    text = """
store: ./backbones
validation: &checks {samples: 4, atol: 0.0}
backbones:
  - &mnv2
    name: mnv2-a
    source: keras.applications/MobileNetV2
    weights: none
    input_shape: [96, 96, 3]
    end: block_3_expand_relu
    validation: *checks
  - <<: *mnv2
    name: mnv2-b
    end: block_6_expand_relu
"""
    cfg = load_config(_write(tmp_path, text))
    a, b = cfg.backbones
    assert (a.name, b.name, b.end, b.weights, b.input_shape) == (
        "mnv2-a", "mnv2-b", "block_6_expand_relu", "none", [96, 96, 3])
    assert b.resolved_validation(cfg.validation).samples == 4


def test_many_small_aliases_within_the_limit_are_fine(tmp_path: Path) -> None:
    rows = "\n".join(f"  - {{name: b{i}, source: m.keras, validation: *v}}" for i in range(500))
    cfg = load_config(_write(tmp_path, f"store: ./b\nvalidation: &v {{samples: 2}}\nbackbones:\n{rows}\n"))
    assert len(cfg.backbones) == 500


def test_the_limits_do_not_leak_into_pyyaml() -> None:
    assert yaml.safe_load("n: " + "9" * 200)["n"] == int("9" * 200)
    assert yaml.SafeLoader.yaml_constructors["tag:yaml.org,2002:int"] is yaml.SafeLoader.construct_yaml_int


def test_cli_refuses_a_billion_laughs_in_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path, _laughs())
    out = kerascut("config", "check", str(path), cwd=ROOT, timeout=120)
    assert out.returncode == 2
    assert out.stderr.startswith(f"error: {path}: Expected at most 100,000 YAML values")
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


# --- values in messages -----------------------------------------------------------------------

HUGE = "x" * 10_000_000


def _backbone(**fields: object) -> dict:
    return {"store": "./b", "backbones": [{"name": "a", "source": "m.keras", **fields}]}


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"store": "./b", "backbones": [{"name": HUGE, "source": "m"}]}, "backbones[0].name"),
        ({"store": "./b", "backbones": [{"name": "n" * 10_000_000, "source": "m"}]}, "(10,000,000 characters)"),
        (_backbone(**{HUGE: 1}), "Unknown key"),
        (_backbone(formats=[HUGE]), "backbones[0].formats[0]"),
        (_backbone(start=HUGE, drop_first=1), "backbones[0]: Expected either `start` or `drop_first`"),
        (_backbone(start=[1] * 1_000_000), "backbones[0].start"),
        (_backbone(end={HUGE: 3}), "backbones[0].end"),
        (_backbone(input_shape=[0] * 1_000_000), "backbones[0].input_shape"),
        (_backbone(weights=HUGE), "backbones[0]: Expected `weights` only"),
        ({"store": "./b", "backbones": [{"name": "a", "source": "gs://" + HUGE}]}, "backbones[0].source"),
        ({"store": HUGE + "://x", "backbones": [{"name": "a", "source": "m"}]}, "store"),
        ({"store": "s3://b/" + "k/" * 5_000_000 + "..", "backbones": [{"name": "a", "source": "m"}]}, "store"),
        ({**_backbone(), "schedule": {"cron": HUGE}}, "schedule.cron"),
        ({**_backbone(), "schedule": {"cron": "0 3 * * 1", "timezone": HUGE}}, "schedule.timezone"),
        ({**_backbone(), "validation": {"deployment": HUGE}}, "validation.deployment"),
        ({**_backbone(), "concurrency": 10**5000}, "<an integer of 5001 digits>"),
        ({**_backbone(), "concurrency": [HUGE] * 1000}, "concurrency"),
        ({**_backbone(), "cache_dir": "s3://" + HUGE}, "cache_dir"),
        ({"store": "./b", "backbones": [{"name": "a", "source": "m"}, {"name": "a", "source": "m" + HUGE}]}, "twice"),
    ],
)
def test_huge_values_give_bounded_messages(data: dict, fragment: str) -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        parse_config(data, source="team.yaml")
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert len(message) < BOUND and "\n" not in message, message[:300]
    assert message.startswith("team.yaml: ") and fragment in message, message[:300]


def test_huge_name_from_a_file_and_from_only(tmp_path: Path) -> None:
    path = _write(tmp_path, "store: ./b\nbackbones:\n  - {name: " + "a/" * 500_000 + ", source: m.keras}\n")
    assert "(1,000,000 characters)" in _refused(path)
    cfg = parse_config(_backbone())
    with pytest.raises(ConfigError) as info:
        cfg.select([HUGE])
    assert len(str(info.value)) < BOUND and "Valid names: 'a'" in str(info.value)


def test_short_repr_is_repr_for_small_values_and_bounded_for_huge_ones() -> None:
    for value in ["Europe/Berln", [0, 3], {"a": 1}, 12, 1.5, None, True, ("x",)]:
        assert short_repr(value) == repr(value)
    for value in [HUGE, 10**5000, -(10**5000), [HUGE] * 100, {HUGE: [HUGE]}, [[[[[[1]]]]]] * 10**5,
                  HUGE.encode()]:
        assert len(short_repr(value)) < 200
    assert short_repr("\x1b[2J" + HUGE).startswith("'\\x1b[2J")  # escaped, never raw


# --- URIs: '..' keys, file://host, cache_dir ----------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field", "fragment"),
    [
        ({"store": "s3://bucket/../x"}, "store", "'..' segments"),
        ({"store": "s3://bucket/a/./b"}, "store", "'..' segments"),
        ({"store": "s3://Bad_Bucket/p"}, "store", "valid bucket name"),
        ({"store": "file://fileserver/backbones"}, "store", "Received host 'fileserver'"),
        ({"store": "file://"}, "store", "with a path"),
        ({"cache_dir": "s3://bucket/cache"}, "cache_dir", "local directory"),
        ({"cache_dir": "file:///tmp/cache"}, "cache_dir", "local directory"),
        ({"cache_dir": "gs:/bucket"}, "cache_dir", "local directory"),
        ({"validation": {"data": "s3://bucket/../x.npz"}}, "validation.data", "'..' segments"),
        ({"validation": {"data": "file://h/x.npz"}}, "validation.data", "Received host 'h'"),
        ({"validation": {"data": "hdfs://x/y.npz"}}, "validation.data", "scheme 'hdfs'"),
    ],
)
def test_bad_uris_in_top_level_fields(data: dict, field: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({**_backbone(), **data}, source="team.yaml")
    assert str(info.value).startswith(f"team.yaml: {field}: ") and fragment in str(info.value)


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"source": "s3://bucket/models/../../etc/x.keras"}, "source", "'..' segments"),
        ({"source": "file://fileserver/m.keras"}, "source", "Received host 'fileserver'"),
        ({"source": "keras.applications/MobileNetV2", "weights": "s3://bucket/../w.h5"}, "weights", "'..'"),
        ({"validation": {"data": "s3://bucket/./x.npz"}}, "validation.data", "'..' segments"),
    ],
)
def test_bad_uris_in_backbones(fields: dict, field: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_backbone(**fields), source="team.yaml")
    assert str(info.value).startswith(f"team.yaml: backbones[0].{field}: ") and fragment in str(info.value)


def test_good_uris_keep_working() -> None:
    cfg = parse_config({**_backbone(source="s3://bucket/models/m.keras"), "store": "s3://bucket/a/b/",
                        "cache_dir": "~/.cache/kerascut", "validation": {"data": "file:///srv/x.npz"}})
    assert cfg.store == "s3://bucket/a/b/" and cfg.cache_dir == os.path.expanduser("~/.cache/kerascut")
    assert parse_config({**_backbone(), "store": "file://localhost/srv/b"}).store == "file:///srv/b"
    assert parse_config({**_backbone(), "store": "file:///srv/b"}).store == "file:///srv/b"
    assert parse_config({**_backbone(), "cache_dir": "C:/cache"}).cache_dir == "C:/cache"


def test_file_uri_path() -> None:
    assert file_uri_path("file:///srv/a%20b.keras") == Path("/srv/a b.keras")
    assert file_uri_path("file://localhost/srv/x") == Path("/srv/x")
    assert file_uri_path("file:///srv/m#1.keras") == Path("/srv/m#1.keras")  # not a fragment
    for bad in ("file://host/p", "file://localhost:80/p", "file://", "file:///a%00b"):
        with pytest.raises(SourceError):
            file_uri_path(bad)
    with pytest.raises(SourceError, match="Received host 'server'"):
        parse_uri("file://server/share/m.keras")


def test_cache_dir_uri_is_refused_and_nothing_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KERASCUT_CACHE_DIR", "s3://bucket/cache")
    with pytest.raises(ConfigError, match=r"^Expected `KERASCUT_CACHE_DIR` to be a local directory.*'s3://bucket/cache'"):
        default_cache_dir()
    with pytest.raises(ConfigError, match="KERASCUT_CACHE_DIR"):
        DownloadCache()
    with pytest.raises(ConfigError, match="`cache_dir`"):
        DownloadCache("s3://bucket/cache")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("KERASCUT_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    assert check_cache_dir("./a:b") == "./a:b"
