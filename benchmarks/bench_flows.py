"""What Prefect costs kerascut: a no-op refresh, and the per-backbone overhead of the flows.

One run, against a real S3 API server (moto) and a real Prefect API (the test harness):

1. **Direct**: for each of N backbones, the core functions called one after the other
   (fingerprint, version, fetch, load, cut, save, stage, validate, commit, latest).
2. **Full refresh**: ``refresh-backbones`` over a config of the same N backbones (into another
   store prefix, ``concurrency: 1`` so the comparison is like for like).
3. **No-op refresh**: the same config again; every version is already published.

Goals (from the issue): no-op <= 5% of the full refresh; Prefect overhead per backbone <= 15%
of the direct time. Sources are MobileNetV2 (96x96, seeded random weights) files on S3, cut at
different blocks, so every backbone is a distinct version with real work behind it.

    python -m benchmarks.run flows            # 20 backbones
    python -m benchmarks.run flows --quick    # 4 backbones
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["run"]

_ENDS = [f"block_{i}_expand_relu" for i in (4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)]


def _env(endpoint: str, tmp: Path) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def _backbones(bucket: str, n: int) -> list[dict[str, Any]]:
    return [
        {
            "name": f"mnv2-{i:02d}",
            "source": f"s3://{bucket}/sources/mnv2-{i % 4}.keras",
            "start": "block_3_expand_relu" if i % 2 else None,
            "end": _ENDS[i % len(_ENDS)],
        }
        for i in range(n)
    ]


def _make_sources(tmp: Path, bucket: str, client: Any) -> None:
    import keras

    for i in range(4):
        keras.backend.clear_session()
        keras.utils.set_random_seed(100 + i)
        model = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3))
        path = tmp / f"mnv2-{i}.keras"
        model.save(path)
        client.upload_file(str(path), bucket, f"sources/mnv2-{i}.keras")
    keras.backend.clear_session()


def _direct(cfg: dict[str, Any], workdir: Path) -> None:
    """The same work as prepare-backbone, with the core functions called directly."""
    import keras

    from kerascut_core import __version__
    from kerascut_core.config import parse_config
    from kerascut_core.fetch import resolve_local
    from kerascut_core.fingerprint import fingerprint, keras_version
    from kerascut_core.publish import commit_version, stage_candidate, update_latest
    from kerascut_core.sources import load_model
    from kerascut_core.stores import open_store
    from kerascut_core.surgery import cut
    from kerascut_core.validation import validate
    from kerascut_core.versioning import compute_version

    parsed = parse_config(cfg)
    store = open_store(parsed.store)
    for b in parsed.backbones:
        settings = b.resolved_validation(parsed.validation)
        fp = fingerprint(b.source, **b.source_options())
        version = compute_version(fp, b.cut_spec(), b.input_shape, keras_version(), __version__)
        if store.exists(f"{b.name}/{version}/manifest.json"):
            continue
        local, options = resolve_local(b.source, cache_dir=parsed.cache_dir, **b.source_options())
        source = load_model(local, **options)
        spec = b.cut_spec()
        model = cut(source, start=spec.start, end=spec.end, drop_first=spec.drop_first, extra_inputs=spec.extra_inputs)
        path = workdir / f"{b.name}.keras"
        model.save(path)
        inputs = [{"name": t.name, "shape": list(t.shape), "dtype": str(t.dtype)} for t in model.inputs]
        outputs = [{"name": t.name, "shape": list(t.shape), "dtype": str(t.dtype)} for t in model.outputs]
        params = {"total_source": int(source.count_params()), "kept": int(model.count_params())}
        del model, source
        keras.backend.clear_session()
        uri = stage_candidate(store, b.name, version, {"model.keras": path})
        report = validate(
            uri, local, spec, samples=settings.samples, batch_size=settings.batch_size,
            atol=settings.atol, rtol=settings.rtol, seed=settings.seed, source_options=options,
        )
        keras.backend.clear_session()
        manifest = {
            "name": b.name, "version": version,
            "source": {"uri": b.source, "fingerprint": fp, "weights": None, "allow_unsafe": False},
            "cut": spec.to_dict(), "inputs": inputs, "outputs": outputs, "params": params,
            "validation": report.model_dump(mode="json"),
        }
        commit_version(store, b.name, version, uri, manifest)
        update_latest(store, b.name, version)


def run(quick: bool = False) -> list[dict[str, Any]]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL", "CRITICAL")
    import boto3

    from tests.fixtures.s3 import start_moto_server, stop_process

    n = 4 if quick else 20
    proc, endpoint = start_moto_server()
    saved = {k: os.environ.get(k) for k in _env(endpoint, Path("/"))}
    try:
        with tempfile.TemporaryDirectory(prefix="kerascut-bench-") as tmp_name:
            tmp = Path(tmp_name)
            os.environ.update(_env(endpoint, tmp))
            client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
            client.create_bucket(Bucket="bench")
            _make_sources(tmp, "bench", client)
            validation = {"samples": 4, "batch_size": 4}
            base = {"validation": validation, "concurrency": 1, "cache_dir": str(tmp / "cache"),
                    "backbones": _backbones("bench", n)}
            direct_cfg = {**base, "store": "s3://bench/direct"}
            flow_cfg = {**base, "store": "s3://bench/flows"}

            # warm the download cache and TensorFlow once, outside the timings
            _direct({**base, "store": "s3://bench/warmup", "backbones": base["backbones"][:1]}, tmp)

            started = time.perf_counter()
            _direct(direct_cfg, tmp)
            direct_s = time.perf_counter() - started

            from prefect.testing.utilities import prefect_test_harness

            from flows.refresh_backbones import refresh_backbones

            with prefect_test_harness(server_startup_timeout=120):
                started = time.perf_counter()
                full = refresh_backbones(config=flow_cfg)
                full_s = time.perf_counter() - started
                started = time.perf_counter()
                noop = refresh_backbones(config=flow_cfg)
                noop_s = time.perf_counter() - started
            assert full["published"] == n and noop["up_to_date"] == n, (full, noop)
    finally:
        stop_process(proc)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    overhead = (full_s - direct_s) / direct_s
    noop_ratio = noop_s / full_s
    return [
        {"case": f"{n} backbones, core functions directly", "metric": "time", "value": round(direct_s, 2), "unit": "s"},
        {"case": f"{n} backbones, full refresh (flows)", "metric": "time", "value": round(full_s, 2), "unit": "s"},
        {"case": f"{n} backbones, no-op refresh", "metric": "time", "value": round(noop_s, 2), "unit": "s"},
        {"case": "no-op / full refresh", "metric": "ratio", "value": round(noop_ratio * 100, 2), "unit": "%",
         "goal": "<= 5%", "ok": noop_ratio <= 0.05},
        {"case": "Prefect overhead per backbone", "metric": "seconds", "value": round((full_s - direct_s) / n, 3),
         "unit": "s"},
        {"case": "Prefect overhead vs direct", "metric": "ratio", "value": round(overhead * 100, 2), "unit": "%",
         "goal": "<= 15%", "ok": overhead <= 0.15},
    ]
