"""The catalog of a big store: 50 backbones and 1,000 versions render in well under a minute,
streaming (peak memory near that of a store with one version per backbone).

A local store holds B backbones of V versions each (50 x 20; 5 x 4 with ``--quick``). The first
version of each backbone is committed through the real protocol (stage, commit, latest, an
alias, a consumer); the others are copies of its directory with their own version in the
manifest, committed a second apart. ``kerascut catalog STORE -o DIR`` runs in its own
subprocess, once on the big store and once on a store with one version per backbone; its wall
time and peak resident memory (``ru_maxrss`` from ``wait4``) are reported.

Goals: the big store in under 60 s; peak memory at most 1.2 x the small store's.

    python -m benchmarks.run catalog            # 50 backbones x 20 versions
    python -m benchmarks.run catalog --quick    # 5 x 4
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["GOAL_RATIO", "GOAL_SECONDS", "run"]

REPO = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 60.0
GOAL_RATIO = 1.2


def _manifest(name: str, version: str):
    from kerascut_core.publishing.manifest import Manifest

    return Manifest(
        name=name, version=version,
        source={"uri": "keras.applications/ResNet50", "fingerprint": "f" * 64, "weights": "none"},
        cut={"start": "conv3_block1_out", "end": {"C4": "conv4_block6_out", "C5": "conv5_block3_out"}},
        inputs=[{"name": "input", "shape": [None, 28, 28, 512], "dtype": "float32", "replaces": "conv3_block1_out"}],
        outputs=[{"name": "C4", "shape": [None, 14, 14, 1024], "dtype": "float32", "address": "conv4_block6_out",
                  "channels": 1024, "stride": [16, 16]},
                 {"name": "C5", "shape": [None, 7, 7, 2048], "dtype": "float32", "address": "conv5_block3_out",
                  "channels": 2048, "stride": [32, 32]}],
        params={"total_source": 23_587_712, "kept": 22_000_000},
        validation={"passed": True, "max_abs_diff": 0.0, "samples": 8},
        preprocessing={"mode": "caffe", "function": "keras.applications.resnet.preprocess_input"},
    )


def _build(store_dir: Path, backbones: int, versions: int, work: Path) -> None:
    from kerascut_core import open_store
    from kerascut_core.publishing import commit_version, promote, stage_candidate, update_latest
    from kerascut_core.publishing.consumer_registry import register_consumer

    store = open_store(str(store_dir))
    artifact = work / "model.keras"
    artifact.write_bytes(os.urandom(4096))
    for b in range(backbones):
        name = f"resnet50-c4c5-{b:02d}"
        first = f"{0:016x}"
        staged = stage_candidate(store, name, first, {"model.keras": artifact})
        commit_version(store, name, first, staged, _manifest(name, first))
        update_latest(store, name, first)
        promote(store, name, first, alias="prod", reason="benchmark")
        register_consumer(store, name, "detector", follows="prod", outputs=["C4", "C5"])
        source = store_dir / name / first
        body = (source / "manifest.json").read_text()
        for i in range(1, versions):
            version = f"{i:016x}"
            target = store_dir / name / version
            target.mkdir()
            os.link(source / "model.keras", target / "model.keras")
            (target / "manifest.json").write_text(body.replace(first, version))
            stamp = time.time() - versions + i
            os.utime(target / "manifest.json", (stamp, stamp))


def _catalog(store_dir: Path, out: Path) -> tuple[int, float]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    argv = [sys.executable, "-m", "kerascut_core", "catalog", str(store_dir), "-o", str(out)]
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"catalog failed: {err.strip().splitlines()[-3:]}")
    return usage.ru_maxrss * 1024, seconds


def run(quick: bool) -> list[dict]:
    backbones, versions = (5, 4) if quick else (50, 20)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="kc-bench-catalog-") as tmp:
        work = Path(tmp)
        peaks = {}
        for count in (1, versions):
            store_dir = work / f"store-{count}"
            _build(store_dir, backbones, count, work)
            peak, seconds = _catalog(store_dir, work / f"site-{count}")
            peaks[count] = peak
            pages = sum(1 for _ in (work / f"site-{count}").rglob("*.html"))
            case = f"{backbones} backbones x {count} versions ({pages} pages)"
            rows.append({"case": case, "metric": "wall", "value": round(seconds, 2), "unit": "s",
                         **({"goal": f"< {GOAL_SECONDS:g} s", "ok": seconds < GOAL_SECONDS} if count == versions else {})})
            rows.append({"case": case, "metric": "peak_rss", "value": round(peak / 2**20, 1), "unit": "MiB"})
        ratio = peaks[versions] / peaks[1]
        rows.append({"case": f"{backbones} backbones, {versions} / 1 versions", "metric": "peak_rss_ratio",
                     "value": round(ratio, 3), "unit": "x", "goal": f"<= {GOAL_RATIO}x", "ok": ratio <= GOAL_RATIO})
    return rows


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
