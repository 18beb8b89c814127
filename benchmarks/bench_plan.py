"""``kerascut plan`` on 20 S3 backbones against a real S3 API server (moto's standalone server).

The store holds a published version of each backbone (a manifest and ``latest.json``, written
as the pipeline records them); then half of the sources are re-uploaded, so the plan finds 10
backbones up to date and 10 stale (for which it also reads the latest manifest to say why).

Rows:
* ``kerascut plan CONFIG --json`` end to end, as a user runs it (a fresh interpreter: imports,
  config, 20 fingerprints, pointers and manifests). Goal: under 1 s.
* the fixed cost of any such process: the interpreter, kerascut's CLI and boto3 imported;
* ``plan_backbones`` in-process with a fresh S3 client (what the command does after its imports).
* how many requests the plan sent, and that it downloaded no source (no GetObject of a source).

    python -m benchmarks.run plan [--quick]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._s3 import s3_bench

__all__ = ["run"]

ROOT = Path(__file__).resolve().parents[1]
N = 20


def _publish_fake(store, spec, fp: str) -> str:
    """A committed version of ``spec`` as the pipeline records it (no Keras needed)."""
    from kerascut_core.publishing import update_latest
    from kerascut_core.publishing.layout import manifest_key
    from kerascut_core.publishing.manifest import Manifest
    from kerascut_core.publishing.versioning import backbone_version

    version = backbone_version(spec, fp)
    manifest = Manifest.model_validate({
        "name": spec.name, "version": version,
        "source": {"uri": spec.source, "fingerprint": fp},
        "cut": spec.cut_spec().to_dict(), "inputs": [], "outputs": [],
        "params": {"total_source": 1, "kept": 1},
        "artifacts": [{"path": "model.keras", "format": "keras", "bytes": 1, "sha256": "0" * 64}],
        "validation": {"passed": True, "max_abs_diff": 0.0},
    })
    store.put_bytes(manifest_key(spec.name, version), manifest.to_json().encode())
    update_latest(store, spec.name, version)
    return version


def run(quick: bool = False) -> list[dict]:
    repeats = 3 if quick else 5
    rows: list[dict] = []
    work = Path(tempfile.mkdtemp(prefix="kc-bench-plan-"))
    try:
        with s3_bench(work) as (_endpoint, admin):
            rows = _measure(work, admin, repeats)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def _measure(work: Path, admin, repeats: int) -> list[dict]:
    rows: list[dict] = []
    import yaml

    from kerascut_core.aws import client as _s3
    from kerascut_core.config import load_config
    from kerascut_core.pipeline.plan import plan_backbones
    from kerascut_core.sources import fingerprint
    from kerascut_core.stores import open_store

    backbones = [{"name": f"b{i:02d}", "source": f"s3://bench/sources/m{i:02d}.keras", "start": "a", "end": "b"}
                 for i in range(N)]
    for i in range(N):
        admin.put_object(Bucket="bench", Key=f"sources/m{i:02d}.keras", Body=os.urandom(64 << 10))
    config = work / "backbones.yaml"
    config.write_text(yaml.safe_dump({"store": "s3://bench/store", "backbones": backbones}))
    cfg = load_config(config)
    store = open_store(cfg.store)
    for spec in cfg.backbones:
        _publish_fake(store, spec, fingerprint(spec.source))
    for i in range(0, N, 2):  # half the sources change: 10 stale, 10 up to date
        admin.put_object(Bucket="bench", Key=f"sources/m{i:02d}.keras", Body=os.urandom(64 << 10))

    counted = {"requests": 0, "source_gets": 0}

    def count(model=None, params=None, **_):
        counted["requests"] += 1
        if model is not None and model.name == "GetObject" and str((params or {}).get("Key", "")).startswith("sources/"):
            counted["source_gets"] += 1

    inproc, entries = [], []
    for _ in range(repeats):  # a fresh client each time, as in a new process
        _s3.clear_clients()
        start = time.perf_counter()
        _s3.client().meta.events.register("before-call.s3", count)
        entries = plan_backbones(cfg)
        inproc.append(time.perf_counter() - start)
    statuses = sorted(e.status for e in entries)
    if statuses != ["stale"] * (N // 2) + ["up-to-date"] * (N - N // 2):
        raise RuntimeError(f"unexpected plan: {statuses}")

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cli, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "kerascut_core", "plan", str(config), "--json"],
                             cwd=work, env=env, capture_output=True, text=True, timeout=120)
        cli.append(time.perf_counter() - start)
        if out.returncode != 0:
            raise RuntimeError(f"kerascut plan failed: {out.stderr[-500:]}")
    assert out is not None
    if json.loads(out.stdout)["would_publish"] != N // 2:
        raise RuntimeError("kerascut plan disagrees with plan_backbones")
    # what every run pays before its first request: the interpreter, kerascut's CLI and boto3
    startup = min(_time_it([sys.executable, "-c", "import kerascut_core.cli.app, boto3"], env) for _ in range(repeats))
    case = f"{N} S3 backbones (10 stale)"
    best_cli, best_inproc = min(cli), min(inproc)
    rows.append({"case": case, "metric": "kerascut plan --json (end to end)", "value": round(best_cli, 3),
                 "unit": "s", "goal": "< 1 s", "ok": best_cli < 1.0})
    rows.append({"case": case, "metric": "fixed cost: python + kerascut CLI + boto3 imports", "value": round(startup, 3), "unit": "s"})
    rows.append({"case": case, "metric": "plan_backbones in-process (fresh client)", "value": round(best_inproc, 3),
                 "unit": "s", "goal": "< 1 s", "ok": best_inproc < 1.0})
    rows.append({"case": case, "metric": "S3 requests per plan", "value": counted["requests"] // repeats,
                 "unit": "requests"})
    rows.append({"case": case, "metric": "sources downloaded", "value": counted["source_gets"], "unit": "objects",
                 "goal": "0", "ok": counted["source_gets"] == 0})
    return rows


def _time_it(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start
