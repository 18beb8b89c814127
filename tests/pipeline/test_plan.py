"""``kerascut plan``: what the next refresh publishes, and why, and that the refresh agrees.

The unit tests publish fake versions (a manifest and ``latest.json``, no Keras) of
``keras.applications`` backbones and change one input of the version at a time. The
integration tests run ``kerascut run`` through the CLI (Prefect's embedded server, about 15 s
a run): one run per store kind publishes new backbones, the source and the config change, the
plan says what the second run will do, and the second run does exactly that.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from kerascut_core.config import BackboneConfig, parse_config
from kerascut_core.pipeline.plan import (
    CUT,
    FORMATS,
    INPUT_SHAPE,
    KERAS,
    SOURCE,
    UNEXPLAINED,
    UNREADABLE,
    plan_backbones,
)
from kerascut_core.publishing import update_latest
from kerascut_core.publishing.layout import latest_key, manifest_key
from kerascut_core.publishing.manifest import Manifest
from kerascut_core.publishing.versioning import backbone_version
from kerascut_core.sources import fingerprint
from kerascut_core.stores import open_store
from tests.reliability.sources import kerascut
from tests.support.cli import kerascut as cli

ROOT = Path(__file__).resolve().parents[2]
APP = {"name": "mnv2", "source": "keras.applications/MobileNetV2", "weights": "none",
       "input_shape": [32, 32, 3], "end": "block_3_expand_relu"}


# --- fake publications (no Keras) ------------------------------------------------------------


def publish_fake(store_uri: str, backbone: dict[str, Any], *, keras: str | None = None) -> str:
    """Commit a manifest for ``backbone`` as the pipeline would record it, and point latest at it."""
    from kerascut_core.sources import keras_version

    spec = BackboneConfig.model_validate(backbone)
    keras = keras or keras_version() + ".0"
    fp = fingerprint(spec.source, **spec.source_options())
    if spec.is_application:  # what fingerprint() records under that Keras
        fp = re.sub(r"keras=[0-9.]+", f"keras={'.'.join(keras.split('.')[:2])}", fp)
    version = backbone_version(spec, fp, keras_version=keras)
    manifest = Manifest.model_validate({
        "name": spec.name, "version": version,
        "source": {"uri": spec.source, "fingerprint": fp, "weights": spec.source_options().get("weights")},
        "cut": spec.cut_spec().to_dict(), "inputs": [], "outputs": [],
        "params": {"total_source": 1, "kept": 1},
        "artifacts": [{"path": "model.keras" if f == "keras" else f"{f}/saved_model.pb", "format": f,
                       "bytes": 1, "sha256": "0" * 64} for f in spec.formats],
        "validation": {"passed": True, "max_abs_diff": 0.0},
        "software": {"kerascut": "0.1.0", "keras": keras, "python": "3.11.0"},
    })
    store = open_store(store_uri)
    store.put_bytes(manifest_key(spec.name, version), manifest.to_json().encode())
    update_latest(store, spec.name, version)
    return version


def plan_one(store_uri: str, backbone: dict[str, Any]):
    (entry,) = plan_backbones(parse_config({"store": store_uri, "backbones": [backbone]}))
    return entry


def test_new_then_up_to_date_then_each_reason(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    entry = plan_one(store, APP)
    assert (entry.status, entry.latest, entry.reasons, entry.publishes) == ("new", None, [], True)
    published = publish_fake(store, APP)
    assert entry.version == published  # the plan's version is the one the pipeline derives
    entry = plan_one(store, APP)
    assert (entry.status, entry.version, entry.latest, entry.publishes) == ("up-to-date", published, published, False)

    for change, what, before, after in (
        ({"input_shape": [64, 64, 3]}, INPUT_SHAPE, "32x32x3", "64x64x3"),
        ({"end": "block_2_add"}, CUT, "end='block_3_expand_relu'", "end='block_2_add'"),
        ({"formats": ["keras", "saved_model"]}, FORMATS, "keras", "keras+saved_model"),
        ({"source": "keras.applications/MobileNetV3Small"}, SOURCE, None, None),
        ({"weights": "imagenet"}, SOURCE, None, None),
    ):
        entry = plan_one(store, {**APP, **change})
        assert entry.status == "stale" and entry.latest == published and entry.version != published, change
        assert [r.what for r in entry.reasons] == [what], (change, entry.reasons)
        if before is not None:
            assert (entry.reasons[0].before, entry.reasons[0].after) == (before, after)
        assert entry.latest_after == entry.version

    two = plan_one(store, {**APP, "input_shape": [64, 64, 3], "end": "block_2_add"})
    assert [r.what for r in two.reasons] == [CUT, INPUT_SHAPE]


def test_keras_major_minor_is_its_own_reason(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    publish_fake(store, APP, keras="3.0.4")  # published under another Keras
    entry = plan_one(store, APP)
    assert entry.status == "stale"
    assert [(r.what, r.before) for r in entry.reasons] == [(KERAS, "3.0")]  # not "source changed"


def test_unexplained_unreadable_pinned_and_errors(tmp_path: Path) -> None:
    store_uri = str(tmp_path / "store")
    store = open_store(store_uri)
    old = publish_fake(store_uri, APP)
    # a manifest whose record does not give its version (edited, or an older scheme)
    data = json.loads(store.get_bytes(manifest_key("mnv2", old)))
    data["source"]["fingerprint"] += "-edited"
    store.put_bytes(manifest_key("mnv2", old), json.dumps(data).encode(), overwrite=True)
    entry = plan_one(store_uri, {**APP, "input_shape": [48, 48, 3]})
    assert [r.what for r in entry.reasons][-1] == UNEXPLAINED
    # latest names a version whose manifest is gone
    store.delete(manifest_key("mnv2", old))
    entry = plan_one(store_uri, APP)
    assert entry.status == "stale" and [r.what for r in entry.reasons] == [UNREADABLE]

    # a pinned latest: the refresh publishes, latest stays where a person put it
    pinned = publish_fake(store_uri, {**APP, "name": "pin"})
    pointer = store.read_json(latest_key("pin"))
    store.put_bytes(latest_key("pin"), json.dumps({**pointer, "pinned": True}).encode(), overwrite=True)
    entry = plan_one(store_uri, {**APP, "name": "pin", "input_shape": [64, 64, 3]})
    assert entry.status == "stale" and entry.pinned and entry.latest_after == pinned != entry.version

    # a source that cannot be fingerprinted fails that backbone only; the CLI exits 1
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"store": str(tmp_path / "other"), "backbones": [
        APP, {"name": "gone", "source": str(tmp_path / "missing.keras")}]}))
    entries = plan_backbones(parse_config(yaml.safe_load(cfg.read_text())))
    assert [e.status for e in entries] == ["new", "error"] and "missing.keras" in entries[1].message
    out = kerascut(["plan", str(cfg)], env=dict(os.environ), cwd=tmp_path)
    assert out.returncode == 1 and "error: gone:" in out.stderr, out.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("store: x\nbackbones: []\n")
    out = kerascut(["plan", str(bad), "--check"], env=dict(os.environ), cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.startswith("error:"), out.stderr


# --- plan against what `kerascut run` does ---------------------------------------------------

_SOURCES = r"""
import sys
from pathlib import Path
import keras

out = Path(sys.argv[1])
for seed in (1, 2, 3):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((8,), name="x"), keras.layers.Dense(8, activation="relu", name="a"),
                              keras.layers.Dense(8, activation="relu", name="b"), keras.layers.Dense(4, name="c")],
                             name="seq")
    model.save(out / f"seq_{seed}.keras")
    keras.backend.clear_session()
"""

#: the plan runs in a fresh interpreter that must import neither TensorFlow, Keras nor Prefect
_PLAN = textwrap.dedent("""
    import json, sys
    from kerascut_core.cli.app import main
    code = main(["plan", sys.argv[1], "--json"])
    heavy = sorted(m for m in ("tensorflow", "keras", "prefect") if m in sys.modules)
    print("\\nHEAVY=" + json.dumps(heavy))
    sys.exit(code)
""")


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("plan-sources")
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-c", _SOURCES, str(out)], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=300)
    return out


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One PREFECT_HOME for the module's runs: its database is migrated once, by the first run."""
    return tmp_path_factory.mktemp("prefect-home")


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "KERASCUT_"))}
    env.update(PREFECT_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
    return env


def _plan(cfg: Path, env: dict[str, str], cwd: Path, *, process: bool = False) -> dict[str, Any]:
    """``kerascut plan --json``; with ``process``, in a fresh interpreter that must not import
    TensorFlow, Keras or Prefect to plan."""
    if not process:
        out = cli("plan", str(cfg), "--json", cwd=cwd, timeout=120)
        assert out.returncode in (0, 3), out.stdout + out.stderr
        return {b["name"]: b for b in json.loads(out.stdout)["backbones"]}
    done = subprocess.run([sys.executable, "-c", _PLAN, str(cfg)], cwd=cwd, env=dict(env, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True, timeout=120)
    body, _, heavy = done.stdout.rpartition("\nHEAVY=")
    assert done.returncode in (0, 3) and json.loads(heavy) == [], done.stdout + done.stderr
    return {b["name"]: b for b in json.loads(body)["backbones"]}


def _check(cfg: Path, env: dict[str, str], cwd: Path) -> int:
    return cli("plan", str(cfg), "--check", cwd=cwd, timeout=120).returncode


def _run(cfg: Path, env: dict[str, str], cwd: Path) -> dict[str, str]:
    """``kerascut run`` (in this process, on the session's Prefect API); the status of each
    backbone in its final table."""
    done = cli("run", str(cfg), "--quiet", cwd=cwd, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return dict(re.findall(r"^[│|]\s*(\S+)\s*[│|]\s*(published|up-to-date|verified|failed)\s", done.stdout, re.M))


def _latest(store_uri: str, names: list[str]) -> dict[str, str | None]:
    from kerascut_core.publishing import list_versions, read_latest

    store = open_store(store_uri)
    return {n: read_latest(store, n) for n in names} | {
        f"{n}#versions": ",".join(sorted(v.version for v in list_versions(store, n))) for n in names}


def _write(path: Path, store: str, backbones: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"store": store, "concurrency": 2, "validation": {"samples": 2, "batch_size": 2},
                                    "backbones": backbones}))
    return path


def _agree(plan: dict[str, Any], ran: dict[str, str], before: dict[str, Any], after: dict[str, Any]) -> None:
    """The run did what the plan said: published exactly the planned versions of new and stale
    backbones (latest names them), and nothing for up-to-date ones."""
    for name, entry in plan.items():
        if entry["status"] in ("new", "stale"):
            assert ran[name] == "published", (name, entry, ran)
            assert after[name] == entry["version"] and entry["version"] in after[f"{name}#versions"].split(","), name
        else:
            assert entry["status"] == "up-to-date" and ran[name] == "up-to-date", (name, entry, ran)
            assert after[name] == entry["version"] and after[f"{name}#versions"] == before[f"{name}#versions"], name


def _scenario(tmp: Path, home: Path, store: str, source_of, replace_source) -> None:
    """new -> run -> up-to-date; then changed source, changed spec, a new backbone and an
    unchanged one -> plan -> run -> the run agrees."""
    env, cfg = _env(home), tmp / "backbones.yaml"
    first = [
        {"name": "src-change", "source": source_of("a", 1), "start": "a", "end": "b"},
        {"name": "spec-change", "source": source_of("b", 2), "start": "a", "end": "b"},
        {"name": "steady", "source": source_of("b", 2), "end": "b"},
    ]
    _write(cfg, store, first)
    names = [b["name"] for b in first]
    plan = _plan(cfg, env, tmp, process=True)
    assert {n: e["status"] for n, e in plan.items()} == dict.fromkeys(names, "new")
    assert _check(cfg, env, tmp) == 3
    before = {f"{n}#versions": "" for n in names}
    ran = _run(cfg, env, tmp)
    after = _latest(store, names)
    _agree(plan, ran, before, after)
    again = _plan(cfg, env, tmp)
    assert {n: (e["status"], e["version"]) for n, e in again.items()} == {n: ("up-to-date", after[n]) for n in names}
    assert _check(cfg, env, tmp) == 0

    replace_source("a", 3)
    second = [dict(first[0]), {**first[1], "end": "c"}, dict(first[2]),
              {"name": "newcomer", "source": source_of("b", 2), "start": "b", "end": "c"}]
    _write(cfg, store, second)
    names = [b["name"] for b in second]
    plan = _plan(cfg, env, tmp, process=True)
    assert {n: e["status"] for n, e in plan.items()} == {
        "src-change": "stale", "spec-change": "stale", "steady": "up-to-date", "newcomer": "new"}
    assert [r["what"] for r in plan["src-change"]["reasons"]] == [SOURCE]
    assert [(r["what"], r["before"], r["after"]) for r in plan["spec-change"]["reasons"]] == [
        (CUT, "end='b'", "end='c'")]
    assert plan["src-change"]["latest"] == after["src-change"] and plan["steady"]["version"] == after["steady"]
    assert _check(cfg, env, tmp) == 3
    before = _latest(store, names)
    ran = _run(cfg, env, tmp)
    _agree(plan, ran, before, _latest(store, names))
    assert {e["status"] for e in _plan(cfg, env, tmp).values()} == {"up-to-date"}


@pytest.mark.integration
def test_plan_agrees_with_run_on_a_local_store(tmp_path: Path, sources: Path, prefect_home: Path,
                                               prefect_harness: None) -> None:
    work = tmp_path / "src"
    work.mkdir()

    def place(label: str, seed: int) -> None:
        (work / f"{label}.keras").write_bytes((sources / f"seq_{seed}.keras").read_bytes())

    def source_of(label: str, seed: int) -> str:
        if not (work / f"{label}.keras").exists():
            place(label, seed)
        return str(work / f"{label}.keras")

    _scenario(tmp_path, prefect_home, str(tmp_path / "store"), source_of, place)


@pytest.mark.integration
def test_plan_agrees_with_run_on_s3(tmp_path: Path, sources: Path, prefect_home: Path, s3_env: dict[str, str],
                                    s3_bucket: str, s3_client: Any, prefect_harness: None) -> None:
    def place(label: str, seed: int) -> None:
        s3_client.put_object(Bucket=s3_bucket, Key=f"sources/{label}.keras",
                             Body=(sources / f"seq_{seed}.keras").read_bytes())

    placed: set[str] = set()

    def source_of(label: str, seed: int) -> str:
        if label not in placed:
            place(label, seed)
            placed.add(label)
        return f"s3://{s3_bucket}/sources/{label}.keras"

    _scenario(tmp_path, prefect_home, f"s3://{s3_bucket}/store", source_of, place)
