"""Waits and timeouts: ``validation.timeout`` (the wait for a validation deployment) and
``refresh_timeout`` (the bound on one whole refresh), written as ``kerascut gc --older-than``
durations (``30m``, ``6h``) or seconds."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from kerascut_core.config import ValidationSettings, config_json_schema, parse_config
from kerascut_core.durations import format_duration, parse_duration
from kerascut_core.errors import ConfigError


def _cfg(**top: Any) -> dict[str, Any]:
    return {"store": "./b", "backbones": [{"name": "a", "source": "m.keras"}], **top}


def test_durations_are_the_gc_syntax() -> None:
    from kerascut_core.cli.store_cmd import parse_duration as cli_parse

    for text, seconds in (("30m", 1800.0), ("6h", 21600.0), ("7d", 604800.0), ("2w", 1209600.0),
                          ("90", 90.0), (" 1.5h ", 5400.0), (45, 45.0), (0.5, 0.5)):
        assert parse_duration(text) == seconds
        if isinstance(text, str):
            assert cli_parse(text) == seconds  # `kerascut gc --older-than` reads the same
    for bad in ("soon", "6 hours", "-1", "1e3", "", True, float("nan"), -5):
        with pytest.raises(ValueError, match="Expected a duration such as 30m, 24h or 7d"):
            parse_duration(bad)
    assert [format_duration(s) for s in (21600, 1800, 86400 * 14, 90, 1.5)] == ["6h", "30m", "2w", "90s", "1.5s"]


def test_validation_timeout_defaults_to_6h_and_is_overridden_per_backbone() -> None:
    cfg = parse_config(_cfg())
    assert cfg.validation.timeout == 6 * 3600.0 and cfg.refresh_timeout is None
    data = _cfg(validation={"timeout": "30m"}, refresh_timeout="2h")
    data["backbones"].append({"name": "big", "source": "n.keras", "validation": {"timeout": 7200}})
    cfg = parse_config(data)
    assert cfg.refresh_timeout == 7200.0
    assert [b.resolved_validation(cfg.validation).timeout for b in cfg.backbones] == [1800.0, 7200.0]
    # a dumped config (what `kerascut run` and `deploy` pass to the flow) reads back the same
    again = parse_config(cfg.model_dump(mode="json", exclude_none=True))
    assert again.validation.timeout == 1800.0 and again.refresh_timeout == 7200.0


@pytest.mark.parametrize("where,value,expected", [
    ("refresh_timeout", "0", "refresh_timeout: Expected a duration above zero"),
    ("refresh_timeout", "soon", "refresh_timeout: Expected a duration such as 30m, 24h or 7d"),
    ("validation", {"timeout": -3}, "validation.timeout: Expected a duration"),
    ("validation", {"timeout": "1 day"}, "validation.timeout: Expected a duration"),
])
def test_bad_durations_are_one_line_config_errors(where: str, value: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_cfg(**{where: value}), source="team.yaml")
    assert str(info.value).startswith(f"team.yaml: {expected}") and "\n" not in str(info.value)
    assert info.value.exit_code == 2


def test_both_fields_are_in_the_schema_and_the_reference() -> None:
    from pathlib import Path

    schema = config_json_schema()
    validation = schema["$defs"]["ValidationSettings"]["properties"]["timeout"]
    assert validation["default"] == "6h" and "30m" in validation["description"]
    assert {"type": "string", "pattern": validation["anyOf"][1]["pattern"]} in validation["anyOf"]
    assert "refresh_timeout" in schema["properties"] and "timeout" in schema["$defs"]["ValidationOverrides"]["properties"]
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "| `refresh_timeout` |" in readme and '| `timeout` | float \\| str | `"6h"` |' in readme


def test_prepare_backbone_passes_validation_timeout_to_run_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A remote validation waits `validation.timeout`, not a fixed 6 h; a run still going then
    fails the backbone with the setting named."""
    import prefect.deployments
    from prefect.states import Completed, Running

    from kerascut.flows import prepare_backbone as module

    calls: list[dict[str, Any]] = []
    final = {"state": Completed()}

    def fake_run_deployment(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return SimpleNamespace(state=final["state"], name="validate-a")

    monkeypatch.setattr(prefect.deployments, "run_deployment", fake_run_deployment)
    monkeypatch.setattr(module, "read_validation_report", lambda uri: {"passed": True, "max_abs_diff": 0.0})
    backbone = {"name": "a", "source": "m.keras"}
    settings = ValidationSettings(deployment="validate-backbone/gpu", timeout="45m")
    report = module._validate("s3://b/.staging/a/v/r/model.keras", backbone, settings, None, None)
    assert report["passed"] and calls[0]["timeout"] == 2700.0 and calls[0]["name"] == "validate-backbone/gpu"
    assert calls[0]["parameters"]["validation"]["timeout"] == 2700.0  # the flow gets the setting too

    final["state"] = Running()  # run_deployment returned at the timeout with the run still going
    monkeypatch.setattr(module, "read_validation_report", lambda uri: None)
    with pytest.raises(Exception, match=r"did not finish .* within validation\.timeout=45m .*raise validation\.timeout"):
        module._validate("s3://b/.staging/a/v/r/model.keras", backbone, settings, None, None)


def test_the_refresh_deadline_bounds_waits_and_subflows() -> None:
    from kerascut.flows._deadline import Deadline
    from kerascut.flows.prepare_backbone import prepare_backbone

    none = Deadline(None)
    assert none.remaining() is None and not none.expired and none.bound(prepare_backbone) is prepare_backbone
    soon = Deadline(3600.0)
    bounded = soon.bound(prepare_backbone)
    assert bounded is not prepare_backbone and 3590 < bounded.timeout_seconds <= 3600
    assert bounded.name == prepare_backbone.name
    past = Deadline(10.0, now=0.0)  # started long ago on the monotonic clock
    assert past.expired and past.remaining() == 0.0 and past.bound(prepare_backbone).timeout_seconds > 0
    assert past.message("Preparing it") == (
        "Preparing it did not finish within refresh_timeout=10s; raise refresh_timeout in the config "
        "(or find what was slow in the run's logs)."
    )


@pytest.mark.integration
def test_refresh_timeout_fails_what_is_not_done(prefect_harness: None, tmp_path, monkeypatch) -> None:
    """With a refresh_timeout that has passed before the checks finish, every backbone is
    reported failed with the setting named, and the run fails; nothing is published."""
    import time

    from kerascut.flows.refresh_backbones import refresh_backbones
    from kerascut.tasks import freshness

    original = freshness.check_backbone_freshness.fn

    def slow(backbone: dict[str, Any], store: str, force: bool = False) -> Any:
        time.sleep(3)
        return original(backbone, store, force)

    monkeypatch.setattr(freshness.check_backbone_freshness, "fn", slow)
    cfg = {"store": str(tmp_path / "store"), "refresh_timeout": 0.5, "backbones": [
        {"name": "mnv2", "source": "keras.applications/MobileNetV2", "weights": "none",
         "input_shape": [32, 32, 3], "end": "block_3_expand_relu"}]}
    state = refresh_backbones(config=cfg, return_state=True)
    assert state.is_failed()
    rows = state.result(raise_on_failure=False).rows
    assert [r["status"] for r in rows] == ["failed"]
    assert "did not finish within refresh_timeout=0.5s" in rows[0]["message"]
    assert not (tmp_path / "store" / "mnv2").exists()
