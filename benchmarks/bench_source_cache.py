"""A cache-hit run of an ``s3://`` source: verifying the hit costs no second hash.

A ~100 MB ``.keras``-sized object is put on a real S3 API server (moto's standalone server) and
fetched once into a download cache. Then, as a refresh that finds the source in the cache
does, each timed run takes the HEAD, verifies the hit (ETag now, and the sha256 recorded at
download) and records the source sha256 the manifest carries (``fetch_source`` then the cut
step's ``_source_sha256``).

Rows:
* the cache-hit run (fetch + record the source sha256), best of 3;
* one HEAD and one sha256 pass over the file: what a hit cost when it was checked by size only
  and the cut step hashed the file; the goal is that verifying the hit adds no second pass
  (the run stays within 1.2x of it);
* how many times the run read the file's bytes (goal: 1).

    python -m benchmarks.run source_cache [--quick]
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

__all__ = ["run"]

REPEATS = 3


def run(quick: bool = False) -> list[dict]:
    from benchmarks._s3 import s3_bench

    size = (20 if quick else 100) << 20
    work = Path(tempfile.mkdtemp(prefix="kc-bench-source-cache-"))
    try:
        with s3_bench(work) as (_endpoint, admin):
            admin.put_object(Bucket="bench", Key="sources/big.keras", Body=os.urandom(size))
            return _measure(work, size)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _measure(work: Path, size: int) -> list[dict]:
    """A verified hit against one HEAD and one hash pass, with the source on the bench bucket."""
    from kerascut_core.aws import client as _s3
    from kerascut_core.pipeline import candidate as candidate_module
    from kerascut_core.sources import cache as cache_module
    from kerascut_core.stores import sha256_file

    uri, cache = "s3://bench/sources/big.keras", str(work / "cache")
    backbone = {"name": "big", "source": uri, "end": "b"}
    candidate_module.fetch_source(backbone, cache_dir=cache)  # the download

    reads: list[str] = []
    real_hash = cache_module.hash_regular

    def counted(path: Path, **kwargs: object) -> tuple[str, tuple[int, ...]]:
        reads.append(str(path))
        return real_hash(path, **kwargs)  # type: ignore[arg-type]

    cache_module.hash_regular = counted  # type: ignore[assignment]
    hit_runs, passes = [], []
    try:
        for _ in range(REPEATS):
            reads.clear()
            start = time.perf_counter()
            fetched = candidate_module.fetch_source(backbone, cache_dir=cache)
            digest, _ = candidate_module._source_sha256(fetched)
            hit_runs.append(time.perf_counter() - start)
            passes.append(len(reads))
    finally:
        cache_module.hash_regular = real_hash  # type: ignore[assignment]
    one_pass = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        _s3.client().head_object(Bucket="bench", Key="sources/big.keras")
        if sha256_file(fetched.source) != digest:
            raise RuntimeError("the recorded source sha256 is not that of the cached bytes")
        one_pass.append(time.perf_counter() - start)
    case = f"s3:// source of {size >> 20} MB, cache hit"
    best_hit, best_pass = min(hit_runs), min(one_pass)
    ratio = best_hit / best_pass
    return [
        {"case": case, "metric": "fetch + record source sha256 (verified hit)", "value": round(best_hit, 3),
         "unit": "s", "runs": [round(t, 3) for t in hit_runs]},
        {"case": case, "metric": "one HEAD + one sha256 pass (size-only hit, hashed by the cut step)",
         "value": round(best_pass, 3), "unit": "s", "runs": [round(t, 3) for t in one_pass]},
        {"case": case, "metric": "verified hit / one pass", "value": round(ratio, 2), "unit": "x",
         "goal": "<= 1.2x", "ok": ratio <= 1.2},
        {"case": case, "metric": "reads of the source's bytes per run", "value": max(passes), "unit": "passes",
         "goal": "1", "ok": max(passes) == 1},
    ]
