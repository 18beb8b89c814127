"""Memory of reading a store: ``ls``, ``show``, ``history`` and ``gc --keep-last`` with 100 versions
stay near their memory with one.

A local store holds a backbone with 1 version and one with N (100; 10 with ``--quick``), first
with small manifests (about 2 KB, what kerascut writes), then with large ones (14 MB each: 11 MB
of warnings text and 200,000 numbers in the validation report, under the store's item limit).
One version of each backbone is committed through the real protocol (stage, commit, latest,
an alias); the others are copies of its directory with their own name and version in the
manifest, each committed a moment later. Every command runs in its own ``kerascut``
subprocess; its peak resident memory is the kernel's ``ru_maxrss`` from ``wait4``.

Goal (the chain-of-custody issue): peak(N versions) <= 1.2 x peak(1 version), per command and
manifest size.

    python -m benchmarks.run store_memory            # 1 vs 100 versions
    python -m benchmarks.run store_memory --quick    # 1 vs 10 versions
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["GOAL", "run"]

REPO = Path(__file__).resolve().parents[1]
GOAL = 1.2
LARGE_WARNINGS = 11_000  # x 1,000 characters
LARGE_NUMBERS = 200_000


def _manifest(name: str, version: str, large: bool):
    from kerascut_core.publishing.manifest import Manifest

    validation: dict = {"passed": True, "max_abs_diff": 0.0, "samples": 2}
    warnings: list[str] = []
    if large:
        validation["per_sample_diffs"] = [round(i * 1e-7, 7) for i in range(LARGE_NUMBERS)]
        warnings = [f"warning {i}: " + "w" * 985 for i in range(LARGE_WARNINGS)]
    return Manifest(
        name=name, version=version,
        source={"uri": "keras.applications/MobileNetV2", "fingerprint": "f" * 64, "weights": "none"},
        cut={"end": "block_13_expand_relu"},
        inputs=[{"name": "input", "shape": [None, 96, 96, 3], "dtype": "float32"}],
        outputs=[{"name": "out", "shape": [None, 6, 6, 576], "dtype": "float32", "channels": 576, "stride": [16, 16]}],
        params={"total_source": 2_257_984, "kept": 1_234_567},
        validation=validation, warnings=warnings,
    )


def _build(store_dir: Path, name: str, versions: int, large: bool, work: Path) -> None:
    """``name`` with ``versions`` committed versions; the first through the protocol, the rest copies."""
    from kerascut_core import open_store
    from kerascut_core.publishing import commit_version, promote, stage_candidate, update_latest

    store = open_store(store_dir)
    first = f"{0:016x}"
    artifact = work / f"{name}.keras"
    artifact.write_bytes(os.urandom(4096))
    staged = stage_candidate(store, name, first, {"model.keras": artifact})
    commit_version(store, name, first, staged, _manifest(name, first, large))
    update_latest(store, name, first)
    promote(store, name, first, alias="prod", reason="benchmark")
    source = store_dir / name / first
    body = (source / "manifest.json").read_text()
    os.utime(source / "manifest.json", (time.time() - versions, time.time() - versions))
    for i in range(1, versions):
        version = f"{i:016x}"
        target = store_dir / name / version
        target.mkdir()
        os.link(source / "model.keras", target / "model.keras")
        (target / "manifest.json").write_text(body.replace(first, version))
        stamp = time.time() - versions + i  # committed in order, one second apart
        os.utime(target / "manifest.json", (stamp, stamp))


def _peak(argv: list[str], env: dict[str, str]) -> tuple[int, float]:
    """Run ``argv``; return (ru_maxrss bytes, seconds). A failing command fails the benchmark."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{argv[3:]} failed ({code}): {err.strip().splitlines()[-3:]}")
    return usage.ru_maxrss * 1024, seconds


def _commands(store: str, name: str) -> dict[str, list[str]]:
    return {
        "ls STORE": ["ls", store],
        "ls STORE NAME --json": ["ls", store, name, "--json"],
        "show STORE/NAME": ["show", f"{store}/{name}"],
        "history STORE/NAME": ["history", f"{store}/{name}"],
        "gc --keep-last 1 --dry-run": ["gc", store, "--keep-last", "1", "--dry-run", "--older-than", "3650d"],
    }


def run(quick: bool) -> list[dict]:
    many = 10 if quick else 100
    rows: list[dict] = []
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for large in (False, True):
        size = "14 MB manifests" if large else "2 KB manifests"
        with tempfile.TemporaryDirectory(prefix="kc-bench-store-memory-") as tmp:
            work = Path(tmp)
            peaks: dict[int, dict[str, int]] = {}
            for count in (1, many):
                store_dir = work / f"store-{count}"
                _build(store_dir, "mnv2", count, large, work)
                manifest_bytes = (store_dir / "mnv2" / f"{0:016x}" / "manifest.json").stat().st_size
                peaks[count] = {}
                for label, args in _commands(str(store_dir), "mnv2").items():
                    peak, seconds = _peak([sys.executable, "-m", "kerascut_core", *args], env)
                    peaks[count][label] = peak
                    rows.append({"case": f"{label}, {count} x {size}", "metric": "peak_rss", "value": round(peak / 2**20, 1),
                                 "unit": "MiB", "seconds": round(seconds, 2), "manifest_bytes": manifest_bytes})
            for label in peaks[1]:
                ratio = peaks[many][label] / peaks[1][label]
                rows.append({"case": f"{label}, {many} / 1 x {size}", "metric": "peak_rss_ratio", "value": round(ratio, 3),
                             "unit": "x", "goal": f"<= {GOAL}x", "ok": ratio <= GOAL})
    return rows


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
