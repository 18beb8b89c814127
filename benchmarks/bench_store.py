"""Store transfers and fingerprints against a real S3 API server (moto's standalone server).

Rows:
* upload / download of one artifact (300 MB; 30 MB with ``--quick``) through kerascut's S3
  store (put-if-absent multipart upload with sha256 metadata; ranged parallel download with a
  size check) versus ``aws s3 cp`` against the same endpoint in the same run. Goal: within 1.25x.
  Each side runs ``repeats`` times and the best time counts (the machine is shared).
* fingerprinting 20 S3 sources (HEAD requests only): ``fingerprint_many`` with a fresh client,
  and one by one on a warm client. Goals: under 1 s in total and 0 bytes downloaded (counted
  from the client's own GetObject responses: there must be none).

    python -m benchmarks.run store [--quick]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks._s3 import s3_bench

__all__ = ["run"]


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(quick: bool = False) -> list[dict]:
    size_mb = 30 if quick else 300
    rows: list[dict] = []
    work = Path(tempfile.mkdtemp(prefix="kc-bench-store-"))
    try:
        with s3_bench(work) as (endpoint, admin):
            rows = _measure(work, endpoint, admin, size_mb, repeats=3)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def _measure(work: Path, endpoint: str, admin, size_mb: int, repeats: int) -> list[dict]:
    rows: list[dict] = []
    from kerascut_core import fingerprint
    from kerascut_core.aws import client as _s3
    from kerascut_core.sources import fingerprint_many
    from kerascut_core.stores import open_store

    artifact = work / "model.keras"
    with open(artifact, "wb") as handle:
        for _ in range(size_mb):
            handle.write(os.urandom(1 << 20))
    store = open_store("s3://bench/backbones")
    aws = shutil.which("aws")

    def aws_cp(src: str, dst: str) -> None:
        subprocess.run([aws, "s3", "cp", "--only-show-errors", "--endpoint-url", endpoint, src, dst],
                       check=True, env=os.environ)

    up_kc, up_aws, down_kc, down_aws = [], [], [], []
    for i in range(repeats):
        # alternate which side goes first, so neither always meets a cold (or a busy) server
        uploads = [
            (up_kc, lambda i=i: store.put_file(f"kc/{i}/model.keras", artifact)),
            *([(up_aws, lambda i=i: aws_cp(str(artifact), f"s3://bench/aws/{i}/model.keras"))] if aws else []),
        ]
        for times, fn in uploads if i % 2 else reversed(uploads):
            times.append(_time(fn))
        out = work / f"down-kc-{i}.keras"
        down_kc.append(_time(lambda i=i, out=out: store.get_file(f"kc/{i}/model.keras", out)))
        if out.stat().st_size != artifact.stat().st_size:
            raise RuntimeError("kerascut download has the wrong size")
        out.unlink()
        if aws:
            out = work / f"down-aws-{i}.keras"
            down_aws.append(_time(lambda i=i, out=out: aws_cp(f"s3://bench/aws/{i}/model.keras", str(out))))
            out.unlink()
        for key in (f"backbones/kc/{i}/model.keras", f"aws/{i}/model.keras"):
            admin.delete_object(Bucket="bench", Key=key)  # keep the server's memory flat
    case = f"{size_mb} MB artifact"
    # `aws s3 cp` times include starting the CLI; report that too, and ratios without it
    startup = min(_time(lambda: subprocess.run([aws, "--version"], check=True, capture_output=True))
                  for _ in range(repeats)) if aws else 0.0
    if aws:
        rows.append({"case": case, "metric": "aws cli startup (aws --version)", "value": round(startup, 3), "unit": "s"})
    for label, ours, theirs in (("upload", up_kc, up_aws), ("download", down_kc, down_aws)):
        best = min(ours)
        rows.append({"case": case, "metric": f"{label} kerascut", "value": round(best, 3), "unit": "s"})
        rows.append({"case": case, "metric": f"{label} throughput", "value": round(size_mb / best, 1), "unit": "MB/s"})
        if theirs:
            rows.append({"case": case, "metric": f"{label} aws s3 cp", "value": round(min(theirs), 3), "unit": "s"})
            ratio = best / min(theirs)
            rows.append({"case": case, "metric": f"{label} ratio vs aws s3 cp", "value": round(ratio, 3),
                         "unit": "x", "goal": "<= 1.25x", "ok": ratio <= 1.25})
            net = best / max(1e-3, min(theirs) - startup)
            rows.append({"case": case, "metric": f"{label} ratio vs aws s3 cp minus its startup",
                         "value": round(net, 3), "unit": "x"})
        else:
            rows.append({"case": case, "metric": f"{label} ratio vs aws s3 cp", "value": None, "unit": "x",
                         "goal": "<= 1.25x (aws cli not found)", "ok": None})

    # fingerprints: 20 sources, HEAD only
    for i in range(20):
        admin.put_object(Bucket="bench", Key=f"sources/m{i}.keras", Body=os.urandom(256 << 10))
    _s3.clear_clients()
    counted = {"get_calls": 0, "get_bytes": 0}

    def count(http_response=None, parsed=None, model=None, **_):
        if model is not None and model.name == "GetObject":
            counted["get_calls"] += 1
            counted["get_bytes"] += int((parsed or {}).get("ContentLength", 0))

    uris = [f"s3://bench/sources/m{i}.keras" for i in range(20)]
    totals, sequential, results = [], [], []
    for _ in range(repeats):  # best of `repeats`, each with a fresh client as in a new refresh
        _s3.clear_clients()
        start = time.perf_counter()
        _s3.client().meta.events.register("after-call.s3", count)
        results.append(fingerprint_many(uris))
        totals.append(time.perf_counter() - start)
        sequential.append(_time(lambda: results.append([fingerprint(u) for u in uris])))
    if len(set(results[0])) != 20 or any(r != results[0] for r in results):
        raise RuntimeError("fingerprints are not distinct or not stable")
    best = min(totals)
    rows.append({"case": "20 S3 sources", "metric": "fingerprint_many total (fresh client)", "value": round(best, 3),
                 "unit": "s", "goal": "< 1 s", "ok": best < 1.0})
    rows.append({"case": "20 S3 sources", "metric": "fingerprint one by one (warm client)",
                 "value": round(min(sequential), 3), "unit": "s", "goal": "< 1 s", "ok": min(sequential) < 1.0})
    rows.append({"case": "20 S3 sources", "metric": "bytes downloaded", "value": counted["get_bytes"],
                 "unit": "bytes", "goal": "0 (no GetObject)", "ok": counted["get_calls"] == 0})
    return rows
