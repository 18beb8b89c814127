"""Crash harness: SIGKILL a publishing process at random points, then check the store.

A *child* process publishes a list of versions through the real publish protocol
(``stage_candidate`` -> ``commit_version`` -> ``update_latest``, the functions the publish task
calls) with artifacts of a few MB, so a kill can land in an upload, between artifacts, between
the manifest and ``latest.json``, or in the cleanup of staging. The *driver* starts a child,
waits until it says it is ready (imports done), sleeps a random time drawn from a seeded
generator over the measured length of a whole run, and SIGKILLs it. After every kill it checks:

1. ``latest.json`` (where present) names a version whose manifest exists;
2. every manifest's artifacts exist, with the recorded size and sha256;
3. no version directory without a manifest is listed as published (``list_versions``) or
   readable as one (``read_manifest``).

Each kill targets fresh versions, so kills spread over every phase. At the end one rerun must
complete every version of every killed child (taking over the dead children's claims) and point
``latest`` at the last one; then ``gc`` with a zero threshold must leave no staging or partial
version directory, and every committed object byte for byte as it was.

    python -m tests.reliability.crash --kills 50 --store local     # a local directory
    python -m tests.reliability.crash --kills 50 --store s3        # moto_server subprocess
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from kerascut_core.publishing.layout import RESERVED  # pure: names only

__all__ = ["CrashReport", "check_invariants", "run_crash_harness", "run_publish_race", "snapshot"]

REPO = Path(__file__).resolve().parents[2]
NAME = "crashnet"


# ---------------------------------------------------------------------------------------------
# the child: publish versions through the real protocol


def _child(store_uri: str, versions: list[str], size: int, seed: int) -> int:
    from kerascut_core.publishing import commit_version, stage_candidate, update_latest
    from kerascut_core.stores import open_store

    store = open_store(store_uri)
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="kcrash-"))
    files = {}
    for version in versions:
        model = work / f"{version}.keras"
        model.write_bytes(rng.randbytes(size))
        extra = work / f"{version}.json"
        extra.write_text(json.dumps({"version": version, "note": "second artifact"}))
        files[version] = {"model.keras": model, "graph.json": extra}
    print("ready", flush=True)
    for version in versions:
        staged = stage_candidate(store, NAME, version, files[version])
        manifest = {
            "name": NAME,
            "version": version,
            "source": {"uri": "keras.applications/MobileNetV2", "fingerprint": "crash-" + version, "weights": "none"},
            "cut": {"start": None, "end": "out"},
            "inputs": [{"name": "input", "shape": [None, 8], "dtype": "float32"}],
            "outputs": [{"name": "out", "shape": [None, 8], "dtype": "float32"}],
            "params": {"total_source": 1, "kept": 1},
            "validation": {"passed": True, "max_abs_diff": 0.0},
        }
        result = commit_version(store, NAME, version, staged, manifest)
        update_latest(store, NAME, result.version)
        print(f"published {version} {result.status}", flush=True)
    print("done", flush=True)
    return 0


# ---------------------------------------------------------------------------------------------
# invariants


def snapshot(store_uri: str, prefix: str = "") -> dict[str, str]:
    """``{key: sha256}`` of every object in the store (under ``prefix``)."""
    from kerascut_core.stores import open_store

    store = open_store(store_uri)
    return {key: hashlib.sha256(store.get_bytes(key)).hexdigest() for key in sorted(store.list(prefix))}


def check_invariants(store_uri: str) -> tuple[list[str], dict[str, int]]:
    """Problems found in the store (``[]`` when every invariant holds) and a state summary."""
    from kerascut_core.errors import ObjectNotFoundError
    from kerascut_core.publishing import list_versions, read_manifest
    from kerascut_core.stores import open_store

    store = open_store(store_uri)
    problems: list[str] = []
    keys = store.list("")
    version_dirs: dict[tuple[str, str], list[str]] = {}
    for key in keys:
        parts = key.split("/")
        if parts[0].startswith("."):
            continue
        if len(parts) >= 3 and parts[1] not in RESERVED:  # aliases/, history/: pointers, not versions
            version_dirs.setdefault((parts[0], parts[1]), []).append("/".join(parts[2:]))
    committed = {nv for nv, files in version_dirs.items() if "manifest.json" in files}
    partial = set(version_dirs) - committed
    names = {name for name, _ in version_dirs} | {k.split("/")[0] for k in keys if k.endswith("/latest.json")}
    for name in sorted(names):
        latest_key = f"{name}/latest.json"
        if latest_key in keys:
            try:
                latest = json.loads(store.get_bytes(latest_key))
            except (ValueError, ObjectNotFoundError) as exc:
                problems.append(f"{latest_key} unreadable: {exc}")
                continue
            if (name, latest.get("version")) not in committed:
                problems.append(f"{latest_key} names {latest.get('version')!r}, which has no manifest")
        listed = {v.version for v in list_versions(store, name)}
        wrongly = listed - {v for n, v in committed if n == name}
        if wrongly:
            problems.append(f"list_versions({name}) lists uncommitted versions {sorted(wrongly)}")
    for name, version in sorted(committed):
        manifest = json.loads(store.get_bytes(f"{name}/{version}/manifest.json"))
        if not (manifest.get("validation") or {}).get("passed"):
            problems.append(f"{name}/{version} committed without a passing validation report")
        for artifact in manifest.get("artifacts", []):
            key = f"{name}/{version}/{artifact['path']}"
            if key not in keys:
                problems.append(f"{key} listed in the manifest but missing")
                continue
            data = store.get_bytes(key)
            if len(data) != artifact["bytes"] or hashlib.sha256(data).hexdigest() != artifact["sha256"]:
                problems.append(f"{key} does not match its manifest (size or sha256)")
    for name, version in sorted(partial):
        try:
            read_manifest(store, name, version)
            problems.append(f"{name}/{version} has no manifest but read_manifest returned one")
        except ObjectNotFoundError:
            pass
    state = {
        "committed": len(committed),
        "partial_version_dirs": len(partial),
        "staging_objects": sum(1 for k in keys if k.startswith(".staging/")),
        "claims": sum(1 for k in keys if k.endswith("/claim.json")),
    }
    return problems, state


# ---------------------------------------------------------------------------------------------
# the driver


def _phase(store_uri: str, versions: list[str]) -> str:
    """Where the killed child was, judged from what it left in the store."""
    from kerascut_core.publishing import read_latest
    from kerascut_core.stores import open_store

    store = open_store(store_uri)
    keys = set(store.list(""))
    done = [v for v in versions if f"{NAME}/{v}/manifest.json" in keys]
    partial = [v for v in versions if v not in done and any(k.startswith(f"{NAME}/{v}/") for k in keys)]
    staged = [v for v in versions if any(k.startswith(f".staging/{NAME}/{v}/") for k in keys)]
    if partial:
        return "copying artifacts (version dir without manifest)"
    if len(done) == len(versions):
        return "after the last commit" if read_latest(store, NAME) == versions[-1] else "between commit and latest.json"
    if done:
        return "between two versions"
    return "staging or claiming" if staged else "before the first write"


@dataclass
class CrashReport:
    store: str
    kills: int = 0
    finished_before_kill: int = 0
    problems: list[str] = field(default_factory=list)
    states: Counter = field(default_factory=Counter)
    rerun_ok: bool = False
    gc_ok: bool = False
    gc_removed: int = 0
    committed: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {**self.__dict__, "states": dict(self.states)}


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def _start_child(store_uri: str, versions: list[str], size: int, seed: int, env: dict[str, str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "tests.reliability.crash", "--child", "--store-uri", store_uri,
           "--versions", ",".join(versions), "--size", str(size), "--seed", str(seed)]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_ready(proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip() == "ready":
            return
        if not line and proc.poll() is not None:
            raise RuntimeError(f"crash child exited early: {proc.stderr.read()[-2000:]}")
    proc.kill()
    raise RuntimeError("crash child never became ready")


def _run_to_end(store_uri: str, versions: list[str], size: int, seed: int, env: dict[str, str], timeout: float = 600) -> tuple[float, str]:
    proc = _start_child(store_uri, versions, size, seed, env)
    try:
        _wait_ready(proc)
        started = time.monotonic()
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"publish run failed (exit {proc.returncode}): {err.strip().splitlines()[-1:] }")
    return time.monotonic() - started, out


def run_crash_harness(
    store_uri: str,
    *,
    kills: int = 50,
    seed: int = 0,
    size: int = 3 * 1024 * 1024,
    versions_per_child: int = 2,
    env: dict[str, str] | None = None,
    gc_command: list[str] | None = None,
    calibrations: int = 3,
    log=print,
) -> CrashReport:
    """Kill ``kills`` publishing children at random points against ``store_uri``; see the module doc.

    ``gc_command`` (argv, ``{store}`` replaced) runs the CLI's gc at the end; without it the
    ``gc`` function is called.
    """
    started = time.monotonic()
    env = _env(env)
    rng = random.Random(seed)
    report = CrashReport(store=store_uri)
    # how long does an uninterrupted child take, once its imports are done? (the fastest of
    # three: the first run is slower, and a kill after the end tests nothing)
    all_versions: list[str] = []
    durations = []
    for c in range(calibrations):
        calib = [f"calib{c}-{i}" for i in range(versions_per_child)]
        durations.append(_run_to_end(store_uri, calib, size, seed, env)[0])
        all_versions += calib
    duration = min(durations)
    log(f"crash[{store_uri}]: a whole run takes {duration:.2f}s after imports")
    # a child that finished before its kill time kills nothing: draw again (bounded), so the
    # report counts ``kills`` real SIGKILLs
    try:
        _kill_loop(store_uri, report, kills, versions_per_child, size, seed, env, rng, duration, all_versions)
    except Exception as exc:  # the S3 API server itself can die (see RELIABILITY.md): report what held
        report.problems.append(f"harness stopped after {report.kills} kills: {' '.join(str(exc).split())[:300]}")
        report.seconds = round(time.monotonic() - started, 1)
        return report
    # a rerun completes every version and moves latest to the last one
    final_versions = all_versions
    return _finish(store_uri, report, final_versions, size, seed, env, gc_command, started)


def _kill_loop(store_uri, report, kills, versions_per_child, size, seed, env, rng, duration, all_versions) -> None:
    i = -1
    while report.kills < kills and i < 3 * kills:
        i += 1
        versions = [f"k{i:03d}-{j}" for j in range(versions_per_child)]
        all_versions += versions
        proc = _start_child(store_uri, versions, size, seed + i + 1, env)
        try:
            _wait_ready(proc)
            time.sleep(rng.uniform(0.0, duration * 0.95))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                report.kills += 1
            else:
                report.finished_before_kill += 1
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        problems, _ = check_invariants(store_uri)
        report.states[_phase(store_uri, versions)] += 1
        report.problems += [f"after kill {i}: {p}" for p in problems]


def _finish(store_uri, report, final_versions, size, seed, env, gc_command, started) -> CrashReport:
    _run_to_end(store_uri, final_versions, size, seed + 10_000, env)
    problems, _ = check_invariants(store_uri)
    report.problems += [f"after the rerun: {p}" for p in problems]
    from kerascut_core.publishing import list_versions, read_latest
    from kerascut_core.stores import open_store

    store = open_store(store_uri)
    listed = {v.version for v in list_versions(store, NAME)}
    missing = sorted(set(final_versions) - listed)
    if missing:
        report.problems.append(f"the rerun did not complete {missing[:5]} ({len(missing)} in all)")
    if read_latest(store, NAME) != final_versions[-1]:
        report.problems.append(f"latest is {read_latest(store, NAME)!r} after the rerun, expected {final_versions[-1]!r}")
    report.rerun_ok = not missing and read_latest(store, NAME) == final_versions[-1]
    report.committed = len(listed)
    # gc: removes every orphan (threshold 0), touches no committed object
    # committed: pointers (latest.json, aliases/, history/), the store's root marker, and
    # everything under a listed version
    committed_before = {k: v for k, v in snapshot(store_uri).items() if not k.startswith(".staging/")
                        and (k.endswith("latest.json") or k == ".kerascut-store.json"
                             or ("/" in k and k.split("/")[1] in {*listed, *RESERVED}))}
    before_keys = set(snapshot(store_uri))
    if gc_command:
        argv = [a.replace("{store}", store_uri) for a in gc_command]
        done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            report.problems.append(f"gc exited {done.returncode}: {done.stderr.strip()[-300:]}")
    else:
        from kerascut_core.publishing import gc

        gc(store, older_than=0)
    after = snapshot(store_uri)
    report.gc_removed = len(before_keys - set(after))
    leftovers = [k for k in after if k not in committed_before]
    changed = [k for k, digest in committed_before.items() if after.get(k) != digest]
    if leftovers:
        report.problems.append(f"gc left {len(leftovers)} orphan objects, e.g. {leftovers[:3]}")
    if changed:
        report.problems.append(f"gc changed or removed committed objects: {changed[:3]}")
    report.gc_ok = not leftovers and not changed
    problems, _ = check_invariants(store_uri)
    report.problems += [f"after gc: {p}" for p in problems]
    report.seconds = round(time.monotonic() - started, 1)
    return report


def run_publish_race(store_uri: str, processes: int, versions: list[str], *, size: int = 1 << 20,
                     env: dict[str, str] | None = None) -> list[str]:
    """Start ``processes`` publishers of the same ``versions`` at once; return the problems.

    Each child publishes every version (different bytes per child: saving is not
    deterministic); exactly one child must report each version ``committed`` and the others
    ``exists``; the store must hold one copy of each, ``latest`` the last one, and no staging.
    """
    env = _env(env)
    children = [_start_child(store_uri, versions, size, 1000 + i, env) for i in range(processes)]
    outputs = []
    for child in children:
        out, err = child.communicate(timeout=600)
        outputs.append((child.returncode, out, err))
    problems = [f"publisher {i} exited {code}: {err.strip()[-300:]}" for i, (code, _, err) in enumerate(outputs) if code]
    for version in versions:
        said = [line.split()[-1] for _, out, _ in outputs for line in out.splitlines()
                if line.startswith(f"published {version} ")]
        if sorted(said) != ["committed"] + ["exists"] * (processes - 1):
            problems.append(f"{version}: publishers reported {said}, expected one 'committed'")
    problems += check_invariants(store_uri)[0]
    from kerascut_core.publishing import read_latest
    from kerascut_core.stores import open_store

    store = open_store(store_uri)
    keys = store.list("")
    for version in versions:
        copies = {k.split("/")[2] for k in keys if k.startswith(f"{NAME}/{version}/")}
        if copies != {"model.keras", "graph.json", "manifest.json"}:
            problems.append(f"{version}: version directory holds {sorted(copies)}")
    if read_latest(store, NAME) != versions[-1]:
        problems.append(f"latest is {read_latest(store, NAME)!r}, expected {versions[-1]!r}")
    leftovers = [k for k in keys if k.startswith(".staging/")]
    if leftovers:
        problems.append(f"staging left behind: {leftovers[:3]}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="SIGKILL publishing processes and check the store.")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--store-uri", help="store to publish into (default: a fresh one per --store)")
    parser.add_argument("--store", choices=["local", "s3", "both"], default="both")
    parser.add_argument("--versions", default="")
    parser.add_argument("--size", type=int, default=3 * 1024 * 1024, help="bytes of the main artifact")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--json", help="write the reports here")
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.store_uri, args.versions.split(","), args.size, args.seed)

    from tests.reliability.servers import moto_server, s3_env

    reports = []
    kinds = ["local", "s3"] if args.store == "both" else [args.store]
    for kind in kinds:
        with tempfile.TemporaryDirectory(prefix="kcrash-store-") as tmp:
            if kind == "local":
                reports.append(run_crash_harness(args.store_uri or tmp, kills=args.kills, seed=args.seed, size=args.size))
                continue
            with moto_server() as url, s3_env(url) as env:
                import boto3

                boto3.client("s3", endpoint_url=url).create_bucket(Bucket="crash-store")
                reports.append(run_crash_harness("s3://crash-store/prod", kills=args.kills, seed=args.seed,
                                                 size=args.size, env=env))
    for report in reports:
        print(json.dumps(report.as_dict(), indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps([r.as_dict() for r in reports], indent=2))
    return 1 if any(r.problems or not (r.rerun_ok and r.gc_ok) for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
