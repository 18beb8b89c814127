"""Untrusted text is inert everywhere, and names cannot be confused.

- store and model text reaches terminals escaped (control, bidi and other format characters)
  through the real CLI: ``inspect``, ``cut``, ``config check``, ``show``, ``ls``, ``history``,
  ``promote`` and error lines; the raw bytes of stdout and stderr are checked;
- the model card renders manifest text as inert Markdown (no raw HTML, link or heading);
- ``contract.preprocess`` imports only allow-listed functions unless ``trust_preprocess=True``;
- alias names are compared case-folded with the reserved words and refused when they look like
  a version in any case;
- ``$VAR`` and ``~`` in store and cache paths are expanded or refused, never taken literally.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kerascut_core.errors import ConfigError, SourceError, StoreError
from kerascut_core.publishing import (
    BackboneContract,
    Manifest,
    commit_version,
    model_card,
    promote,
    stage_candidate,
    update_latest,
)
from kerascut_core.publishing.layout import check_alias
from kerascut_core.publishing.usage import allowed_preprocess_function
from kerascut_core.stores import open_store
from kerascut_core.text import for_html, for_markdown, for_terminal, inert_lines, printable
from tests.support.cli import kerascut as run_kerascut
from tests.support.store_attack_world import local_tree, manifest_body

OSC = "\x1b]0;pwned\x07"  # sets the terminal's title
RLO = "\u202e"  # right-to-left override
HTML = "<img src=x onerror=alert(1)>"
# every byte that must never reach a terminal raw
FORBIDDEN = [b"\x1b", b"\x07", RLO.encode(), "\u2066".encode(), "\u200b".encode(), b"\xc2\x9b"]
VERSION = "0123456789abcdef"


def kerascut(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, process: bool = False):
    """The CLI (in this process unless ``process``); stdout and stderr kept as bytes, exactly as written."""
    return run_kerascut(*args, cwd=cwd, env=env, text=False, process=process)


def assert_inert(out: subprocess.CompletedProcess) -> None:
    for stream in (out.stdout, out.stderr):
        for raw in FORBIDDEN:
            assert raw not in stream, (raw, stream[-2000:])
    assert b"Traceback" not in out.stderr


def one_line_error(out: subprocess.CompletedProcess) -> str:
    assert out.returncode != 0, out.stdout
    lines = out.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    return lines[0]


# --- the renderers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["\x1b]0;t\x07", "\x1b[2J", "\x9b31m", "\x7f", "a\u202eb", "\u200b", "\u200e\u200f", "\u2066x\u2069",
     "\ufeff", "\u2028", "\u2029", "\u061c", "\x00", "\ud800"],
)
def test_for_terminal_escapes_controls_and_format_characters(raw):
    shown = for_terminal(raw)
    assert shown.isascii() and shown.isprintable(), shown
    assert printable(raw) == shown and inert_lines(shown) == shown  # escaping twice changes nothing


def test_for_terminal_keeps_ordinary_text_and_bounds_before_escaping():
    assert for_terminal("block_13_expand_relu \u00e9 Ünïcödé 层") == "block_13_expand_relu \u00e9 Ünïcödé 层"
    assert for_terminal("\x1b" * 10_000, limit=10) == "\\x1b" * 10 + "..."
    assert for_terminal("x" * 500, limit=None) == "x" * 500
    assert inert_lines(f"a{OSC}\nb{RLO}") == "a\\x1b]0;pwned\\x07\nb\\u202e"


@pytest.mark.parametrize(
    "raw, absent",
    [
        (HTML, "<img"),
        ("[click](https://evil.example)", "[click]"),
        ("![x](https://evil.example/x.png)", "!["),
        ("<script>alert(1)</script>", "<script>"),
        ("**bold** _em_ `code` ~~gone~~ | cell", "**"),
        ("a&amp;b", "&amp;b"),
    ],
)
def test_for_markdown_and_for_html_are_inert(raw, absent):
    md = for_markdown(raw)
    assert absent not in md and "<" not in md and ">" not in md
    assert "|" not in md.replace("\\|", "")
    assert "<" not in for_html(raw) and ">" not in for_html(raw) and "'" not in for_html(raw)


# --- the model card --------------------------------------------------------------------------


def test_the_card_renders_a_dropped_layer_name_holding_html_inert():
    body = manifest_body("tiny", VERSION)
    evil = f"resc{HTML}[x](https://evil.example){OSC}{RLO}"
    body["preprocessing"] = {"mode": "in_graph", "layers": [{"address": evil, "type": "Rescaling", "kept": False}]}
    body["warnings"] = [f"the cut drops the in-graph preprocessing of model.keras ({evil} (Rescaling))"]
    body["outputs"][0]["address"] = f"# heading {HTML}"
    card = model_card(Manifest.model_validate(body))
    warning = next(line for line in card.splitlines() if line.startswith("> **Warning:**"))
    assert "&lt;img src=x onerror=alert(1)&gt;" in warning and "\\[x\\](https://evil.example)" in warning
    assert "\x1b" not in card and RLO not in card and "\x07" not in card
    # outside code spans (shown literally: HTML in one is text) no tag survives
    prose = re.sub(r"`[^`\n]*`", "", card.split("\n---\n", 1)[1])
    assert "<" not in prose and "[x](" not in prose.replace("\\[x\\](", "")
    assert f"`# heading {HTML}`" in card  # the address, as a code span
    assert not any(line.lstrip().startswith("# heading") for line in card.splitlines())


def test_the_validation_report_markdown_is_inert():
    from kerascut_core.validation.report import ValidationReport

    row = {"name": f"{HTML}[a](https://evil.example){OSC}", "address": "a", "dtype": "float32", "shape": [None, 2],
           "passed": True, "max_abs_diff": 0.0, "max_rel_diff": 0.0}
    report = ValidationReport.model_validate(
        {"passed": True, "max_abs_diff": 0.0, "candidate": "c`|<b>.keras", "outputs": [row]}
    )
    md = report.to_markdown()
    assert "| &lt;img src=x onerror=alert(1)&gt;\\[a\\](https://evil.example)\\\\x1b\\]0;pwned\\\\x07 |" in md
    assert "- candidate: `c'\\|<b>.keras`" in md and "\x1b" not in md


# --- the preprocessing function --------------------------------------------------------------


@pytest.mark.parametrize(
    "name, allowed",
    [
        ("keras.applications.mobilenet_v2.preprocess_input", True),
        ("keras.applications.resnet.preprocess_input", True),
        ("keras_hub.layers.ResNetImageConverter", True),
        ("keras_hub.models.ResNetImageClassifierPreprocessor", True),
        ("os.system", False),
        ("keras.applications.resnet.decode_predictions", False),
        ("keras.applications..preprocess_input", False),
        ("keras.applications.x.y.preprocess_input", False),
        ("keras_hub.layers.Dense", False),
        ("evil_module.preprocess_input", False),
        ("keras.applications.resnet.preprocess_input\n", False),
    ],
)
def test_the_preprocess_allow_list(name, allowed):
    assert allowed_preprocess_function(name) is allowed


@pytest.fixture
def sentinel_module(tmp_path, monkeypatch):
    """A module on sys.path that writes a file when it is imported (a side effect)."""
    name = f"kc_sentinel_{os.getpid()}_{tmp_path.name.replace('-', '_')}"
    sentinel = tmp_path / "imported.txt"
    where = tmp_path / "modules"
    where.mkdir()
    (where / f"{name}.py").write_text(
        f"from pathlib import Path\nPath({str(sentinel)!r}).write_text('ran')\n"
        "def preprocess(x):\n    return [[v * 2 for v in row] for row in x]\n"
    )
    monkeypatch.syspath_prepend(str(where))
    yield name, sentinel
    sys.modules.pop(name, None)


def _publish_with_function(store, function: str) -> None:
    import keras

    work = Path(store.root_uri.removeprefix("file://")).parent
    keras.backend.clear_session()
    x = keras.Input((4,), name="x")
    keras.Model(x, keras.layers.Dense(2, name="d")(x), name="tiny").save(work / "model.keras")
    staged = stage_candidate(store, "tiny", VERSION, {"model.keras": work / "model.keras"})
    body = manifest_body("tiny", VERSION)
    body["preprocessing"] = {"mode": "tf", "function": function, "layers": [], "applies_to_inputs": True}
    assert commit_version(store, "tiny", VERSION, staged, body).committed
    update_latest(store, "tiny", VERSION)


def test_a_manifest_naming_a_module_does_not_import_it_even_with_safe_mode(tmp_path, sentinel_module):
    import kerascut_core as kc

    module, sentinel = sentinel_module
    (tmp_path / "w").mkdir()
    store = open_store(tmp_path / "w" / "store")
    _publish_with_function(store, f"{module}.preprocess")

    _, contract = kc.load_backbone_with_contract(f"{store.root_uri}/tiny", cache_dir=tmp_path / "cache", safe_mode=True)
    with pytest.raises(SourceError) as err:
        contract.preprocess([[1.0, 2.0, 3.0, 4.0]])
    message = str(err.value)
    assert len(message.splitlines()) == 1 and f"{module}.preprocess" in message and "trust_preprocess=True" in message
    with pytest.raises(SourceError):
        contract.preprocess_function  # noqa: B018 - the property is what resolves
    assert not sentinel.exists() and module not in sys.modules

    _, trusted = kc.load_backbone_with_contract(
        f"{store.root_uri}/tiny", cache_dir=tmp_path / "cache", trust_preprocess=True
    )
    assert trusted.preprocess([[1.0, 2.0]]) == [[2.0, 4.0]]
    assert sentinel.read_text() == "ran"


def test_an_allow_listed_function_still_resolves():
    body = manifest_body("tiny", VERSION)
    body["preprocessing"] = {"mode": "tf", "function": "keras.applications.mobilenet_v2.preprocess_input",
                             "layers": [], "applies_to_inputs": True}
    contract = BackboneContract(Manifest.model_validate(body), "r")
    assert contract.preprocess_function.__name__ == "preprocess_input"


# --- alias names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "alias, rule",
    [
        ("LATEST", "built-in alias"), ("Latest", "built-in alias"), ("Manifest", "reserved"),
        ("HISTORY", "reserved"), ("Aliases", "reserved"), ("CLAIM", "reserved"),
        ("0123456789ABCDEF", "look like a version"), ("0123456789AbCdEf", "look like a version"),
        ("0123456789abcdef", "look like a version"),
    ],
)
def test_confusable_alias_names_are_refused(alias, rule):
    with pytest.raises(StoreError, match=rule) as err:
        check_alias(alias)
    assert alias in str(err.value) and len(str(err.value).splitlines()) == 1


@pytest.mark.parametrize("alias", ["prod", "Prod", "staging", "canary-2", "latest2", "0123456789abcde"])
def test_ordinary_alias_names_pass(alias):
    assert check_alias(alias) == alias


def _committed(store, tmp_path: Path, body_update=None, version: str = VERSION) -> None:
    (tmp_path / "m.keras").write_bytes(b"not really a model")
    staged = stage_candidate(store, "tiny", version, {"model.keras": tmp_path / "m.keras"})
    body = manifest_body("tiny", version)
    if body_update:
        body_update(body)
    assert commit_version(store, "tiny", version, staged, body).committed
    update_latest(store, "tiny", version)


def test_promote_refuses_a_confusable_alias_and_changes_nothing(tmp_path):
    store = open_store(tmp_path / "store")
    _committed(store, tmp_path)
    before = local_tree(tmp_path / "store")
    for alias in ("LATEST", "Manifest", "0123456789ABCDEF"):
        with pytest.raises(StoreError):
            promote(store, "tiny", VERSION, alias=alias)
    out = kerascut("promote", str(tmp_path / "store" / "tiny"), VERSION, "--alias", "HISTORY")
    assert "HISTORY" in one_line_error(out)
    assert local_tree(tmp_path / "store") == before


# --- store text through the real CLI ---------------------------------------------------------


def _evil(body) -> None:
    body["outputs"][0]["address"] = f"blk{RLO}{OSC}"
    body["outputs"][0]["name"] = f"C3{RLO}"
    body["warnings"] = [f"warning {OSC} with \u2066isolates\u2069 and \u200bzero width and \x9bC1"]
    body["cut"]["end"] = f"end{RLO}"


def test_show_ls_history_and_promote_print_store_text_inert(tmp_path):
    store = open_store(tmp_path / "store")
    _committed(store, tmp_path, _evil)
    ref = str(tmp_path / "store" / "tiny")
    promote(store, "tiny", VERSION, alias="prod", reason=f"because {OSC}{RLO}")
    for args in (("show", f"{ref}@{VERSION}"), ("ls", str(tmp_path / "store")), ("ls", str(tmp_path / "store"), "tiny"),
                 ("gc", str(tmp_path / "store"), "--dry-run"),
                 ("history", ref), ("promote", ref, VERSION, "--alias", "canary", "--reason", f"r{OSC}")):
        out = kerascut(*args)
        assert out.returncode == 0, (args, out.stderr)
        assert_inert(out)
    shown = kerascut("show", f"{ref}@{VERSION}").stdout.decode()
    assert "blk\\u202e\\x1b]0;pwned\\x07" in shown and "\\u2066isolates\\u2069" in shown


def test_an_error_quoting_store_text_is_inert(tmp_path):
    store = open_store(tmp_path / "store")
    _committed(store, tmp_path)
    out = kerascut("show", f"{tmp_path / 'store' / 'tiny'}@nope{RLO}")
    one_line_error(out)
    assert_inert(out)


# --- model text through the real CLI ---------------------------------------------------------


@pytest.fixture(scope="module")
def evil_model(tmp_path_factory) -> Path:
    """A real .keras whose model and layer names hold an OSC escape, U+202E and HTML."""
    import keras

    work = tmp_path_factory.mktemp("evil")
    keras.backend.clear_session()
    x = keras.Input((4,), name="x")
    r = keras.layers.Rescaling(1 / 255.0, name=f"resc{HTML}{OSC}")(x)
    d = keras.layers.Dense(4, name="d1")(r)
    o = keras.layers.Dense(3, name=f"out{RLO}{OSC}")(d)
    keras.Model(x, o, name=f"evil{OSC}").save(work / "m.keras")
    return work / "m.keras"


def test_inspect_and_cut_print_layer_names_inert(evil_model, tmp_path):
    out = kerascut("inspect", str(evil_model))
    assert out.returncode == 0, out.stderr
    assert_inert(out)
    assert b"out\\u202e\\x1b]0;pwned\\x07" in out.stdout and b"evil\\x1b]0;pwned\\x07" in out.stdout

    out = kerascut("cut", str(evil_model), "--start", "d1", "--end", f"out{RLO}{OSC}", "-o", str(tmp_path / "c.keras"))
    assert out.returncode == 0, out.stderr
    assert_inert(out)
    assert b"warning: the cut drops the in-graph preprocessing" in out.stderr  # the dropped Rescaling, named
    assert b"resc<img src=x onerror=alert(1)>\\x1b]0;pwned\\x07" in out.stderr


def test_config_check_prints_layer_names_inert(evil_model, tmp_path):
    config = tmp_path / "backbones.yaml"
    config.write_text(
        f"store: {tmp_path / 'store'}\n"
        "backbones:\n"
        f"  - name: tiny\n    source: {evil_model}\n    start: d1\n"
        '    end: "out\\u202e\\e]0;pwned\\a"\n'
        f"  - name: tiny2\n    source: {evil_model}\n    start: d1\n"
        '    end: "nope\\e]0;pwned\\a"\n'
    )
    out = kerascut("config", "check", str(config))
    assert_inert(out)
    lines = out.stdout.decode().splitlines() + out.stderr.decode().splitlines()
    assert any(line.startswith("ok  tiny: ") and "out\\u202e\\x1b]0;pwned\\x07" in line for line in lines), lines
    assert any("backbones[1]" in line for line in lines) and out.returncode == 2, lines


# --- $VAR and ~ in store and cache paths -----------------------------------------------------


def test_a_store_path_with_a_variable_is_expanded_not_taken_literally(tmp_path, monkeypatch):
    from kerascut_core.config import load_config

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KC_TEAM", "vision")
    (tmp_path / "c.yaml").write_text(
        "store: $HOME/x/${KC_TEAM}\nbackbones:\n  - name: m\n    source: keras.applications/MobileNetV2\n"
        "    end: block_3_expand_relu\n"
    )
    assert load_config(tmp_path / "c.yaml").store == f"{tmp_path}/home/x/vision"
    assert open_store("~/s").root_uri.endswith(f"{tmp_path.name}/home/s")

    (tmp_path / "bad.yaml").write_text((tmp_path / "c.yaml").read_text().replace("$HOME", "$KC_UNSET_VAR"))
    monkeypatch.delenv("KC_UNSET_VAR", raising=False)
    with pytest.raises(ConfigError, match="KC_UNSET_VAR is not set"):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(StoreError, match="KC_UNSET_VAR is not set"):
        open_store("$KC_UNSET_VAR/store")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "c.yaml"]  # no directory called $HOME


def test_the_cli_expands_or_refuses_a_store_variable(tmp_path):
    store = open_store(tmp_path / "store")
    _committed(store, tmp_path)
    out = kerascut("ls", "$KC_STORE", cwd=tmp_path, env={"KC_STORE": str(tmp_path / "store")})
    assert out.returncode == 0 and b"tiny" in out.stdout, out.stderr
    env = {k: v for k, v in os.environ.items() if k != "KC_NOT_SET"}
    out = subprocess.run([sys.executable, "-m", "kerascut_core", "ls", "$KC_NOT_SET/store"], capture_output=True,
                         timeout=120, cwd=tmp_path, env=env)
    assert "KC_NOT_SET is not set" in one_line_error(out)
    assert not (tmp_path / "$KC_NOT_SET").exists()


def test_cache_dirs_expand_variables(tmp_path, monkeypatch):
    from kerascut_core.sources import check_cache_dir, default_cache_dir

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KERASCUT_CACHE_DIR", "$HOME/kc")
    assert default_cache_dir() == tmp_path / "kc"
    monkeypatch.setenv("KERASCUT_CACHE_DIR", "~/kc2")
    assert default_cache_dir() == tmp_path / "kc2"
    monkeypatch.delenv("KERASCUT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "${HOME}/xdg")
    assert default_cache_dir() == tmp_path / "xdg" / "kerascut"
    assert check_cache_dir("$HOME/c") == f"{tmp_path}/c"
    with pytest.raises(ConfigError, match="KC_NO_SUCH_VAR is not set"):
        check_cache_dir("$KC_NO_SUCH_VAR/c")
    with pytest.raises(ConfigError, match="expected"):
        check_cache_dir("${bad name}/c")
    assert json.dumps(check_cache_dir("/plain/$")) == '"/plain/$"'  # a $ with no name after it is text


def test_kerascut_run_prints_step_details_inert(capsys):
    import io

    from rich.console import Console

    from kerascut.flows.cli import _ProgressPrinter

    buffer = io.StringIO()
    printer = _ProgressPrinter(Console(file=buffer, force_terminal=True, width=300), quiet=False)
    printer("tiny", "failed", {"message": f"layer {OSC}{RLO} [bold]not found[/bold]"})
    printer("tiny", "warning", {"message": f"drops {OSC}{RLO}"})
    shown = buffer.getvalue()
    assert "\x07" not in shown and RLO not in shown and "]0;pwned" in shown and "[bold]not found" in shown
    assert "\x1b]" not in shown  # rich's own styling is CSI (ESC [), never an OSC from the text
    err = capsys.readouterr().err
    assert "\x1b" not in err and RLO not in err and "drops \\x1b]0;pwned\\x07\\u202e" in err
