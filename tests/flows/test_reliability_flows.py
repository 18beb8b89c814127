"""Reliability through the real flow: `kerascut run` subprocesses against real stores.

- S3 faults: a 3-backbone config whose sources and store are on the S3 API server, behind the
  fault proxy. At 10% faults every run publishes all three; at 100% it fails with one clear line
  and publishes nothing.
- Races: 2 to 8 concurrent `kerascut run` on one config and store: one copy of each version,
  `latest` consistent, no run reports an update it lost as its own success.
- The validation gate, through the flow: a backbone whose candidate cannot reproduce its source
  (validation fails), or whose validation cannot run (require_gpu on a CPU machine), is never
  published, and its staging is cleaned.
- Secrets: credentials given by environment or by an AwsCredentials block appear nowhere: not
  in output, logs, artifacts, run parameters, manifests, caches or exceptions.

CI runs one faulty run that also exercises the gate and the secrets scan (the publish protocol's
race runs in CI in test_reliability_crash.py); `-m slow` runs the rest.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from tests.reliability.crash import check_invariants
from tests.reliability.faultproxy import FAULT_KINDS, FaultProxy
from tests.reliability.figures import record
from tests.reliability.secretscan import SECRET_ACCESS_KEY, SECRET_KEY_ID, SECRETS, scan, scan_s3
from tests.reliability.servers import moto_server, s3_env
from tests.reliability.sources import NOISY, TINY, backbone, kerascut, make_sources

pytestmark = pytest.mark.integration

STATUSES = ("published", "up-to-date", "verified", "failed")


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    return make_sources(tmp_path_factory.mktemp("sources"))


@pytest.fixture(scope="module")
def s3(sources):
    with moto_server(lifetime=3600) as url:
        import boto3

        client = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        client.create_bucket(Bucket="rel-sources")
        for name in (*TINY, NOISY):
            client.upload_file(str(sources / f"{name}.keras"), "rel-sources", f"models/{name}.keras")
        yield url, client


def _base_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "PREFECT_", "KERASCUT_")) and k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(
        PREFECT_HOME=str(tmp / "prefect-home"), XDG_CACHE_HOME=str(tmp / "cache"),
        TF_CPP_MIN_LOG_LEVEL="2",
        AWS_EC2_METADATA_DISABLED="true", AWS_SHARED_CREDENTIALS_FILE=str(tmp / "no-aws-files"),
        AWS_CONFIG_FILE=str(tmp / "no-aws-files"),
    )
    env.update(extra)
    return env


def _write_config(path: Path, store: str, backbones: list[dict], **top) -> Path:
    path.write_text(yaml.safe_dump({"store": store, "concurrency": 2,
                                    "validation": {"samples": 2, "batch_size": 2}, **top,
                                    "backbones": backbones}))
    return path


def _statuses(output: str, names: list[str]) -> dict[str, set[str]]:
    """The final statuses each backbone reached in a run's output.

    Read from the progress lines (``  31.0s  tiny-a   published   f471a8...``) and the final
    table's rows (``│ tiny-a │ published │ ...``), never from free text in messages.
    """
    found: dict[str, set[str]] = {n: set() for n in names}
    for line in output.splitlines():
        match = re.match(r"^\s*\d+\.\ds\s+(\S+)\s+(\S+)", line) or re.match(r"^[│|]\s*(\S+)\s*[│|]\s*(\S+)\s*[│|]", line)
        if match and match.group(1) in found and match.group(2) in STATUSES:
            found[match.group(1)].add(match.group(2))
    return found


def _store_state(store: str, name: str) -> dict:
    from kerascut_core.publishing.layout import RESERVED
    from kerascut_core.stores import open_store

    st = open_store(store)
    keys = st.list("")
    versions = sorted({k.split("/")[1] for k in keys if k.startswith(f"{name}/") and k.count("/") >= 2} - RESERVED)
    committed = [v for v in versions if f"{name}/{v}/manifest.json" in keys]
    latest = json.loads(st.get_bytes(f"{name}/latest.json")) if f"{name}/latest.json" in keys else None
    return {"versions": versions, "committed": committed, "latest": latest and latest.get("version"),
            "staging": [k for k in keys if k.startswith(f".staging/{name}/") and not k.endswith("claim.json")],
            "keys": keys}


def _one_error_line(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# ------------------------------------------------------------------------------ S3 faults


def _faulty_run(tmp: Path, s3, *, rate: float, seed: int, bucket: str, kinds=FAULT_KINDS, env_extra=None,
                backbones: list[dict] | None = None):
    url, client = s3
    client.create_bucket(Bucket=bucket)
    store = f"s3://{bucket}/prod"
    config = _write_config(tmp / "faults.yaml", store, backbones or [
        backbone(name, f"s3://rel-sources/models/{name}.keras") for name in TINY])
    with FaultProxy(url, rate=rate, seed=seed, kinds=kinds, lifetime=900) as proxy:
        env = _base_env(tmp, AWS_ENDPOINT_URL=proxy.url, AWS_ACCESS_KEY_ID=SECRET_KEY_ID,
                        AWS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY, AWS_DEFAULT_REGION="us-east-1",
                        **(env_extra or {}))
        done = kerascut(["run", str(config)], env=env, cwd=tmp, timeout=900)
        stats = proxy.stats
    record("faults", rate=rate, seed=seed, ok=done.returncode == (1 if backbones else 0), exit=done.returncode, **stats)
    return done, stats, store


def _s3_env(url: str):
    """This process's kerascut_core talks to the S3 API server directly (to inspect the store)."""
    return s3_env(url)


def _assert_published(store: str, names) -> None:
    for name in names:
        state = _store_state(store, name)
        assert len(state["committed"]) == 1 and state["versions"] == state["committed"], state
        assert state["latest"] == state["committed"][0]
        assert state["staging"] == []
    problems, _ = check_invariants(store)
    assert problems == []


def _assert_not_published(store: str, name: str) -> None:
    state = _store_state(store, name)
    assert state["committed"] == [] and state["versions"] == [] and state["latest"] is None, state
    assert state["staging"] == [], state["staging"]


def test_faulty_s3_run_publishes_gates_and_leaks_no_secret(tmp_path, s3):
    """CI: one `kerascut run` of three S3 backbones behind 10% S3 faults, credentials given by
    environment as secret markers; two backbones publish through the retries, the third
    cannot reproduce its source and is never published; no secret appears anywhere."""
    backbones = [backbone(name, f"s3://rel-sources/models/{name}.keras") for name in TINY[:2]]
    backbones.append(backbone(NOISY, f"s3://rel-sources/models/{NOISY}.keras", allow_unsafe=True))
    done, stats, store = _faulty_run(tmp_path, s3, rate=0.10, seed=101, bucket="rel-faults-ci", backbones=backbones)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert stats["faults"] >= 3, stats
    reported = _statuses(done.stdout + done.stderr, [*TINY[:2], NOISY])
    assert reported == {TINY[0]: {"published"}, TINY[1]: {"published"}, NOISY: {"failed"}}, reported
    assert re.search(r"noisy\s+failed\s+.*max_abs_diff", done.stderr)
    with _s3_env(s3[0]):
        _assert_published(store, TINY[:2])
        _assert_not_published(store, NOISY)
    record("gate", case="validation fails (noisy), through the flow, 10% S3 faults", ok=True)
    leaks = scan({"stdout": done.stdout, "stderr": done.stderr},
                 [tmp_path / "prefect-home", tmp_path / "cache", tmp_path / "faults.yaml"])
    leaks += scan_s3(s3[1], ["rel-faults-ci"])
    record("secrets", via="environment", outputs="stdout, stderr, Prefect home (db, logs), cache, S3 objects", leaks=len(leaks))
    assert leaks == []


@pytest.mark.slow
@pytest.mark.parametrize("seed", [201, 202, 203, 204])
def test_ten_percent_faults_every_run_succeeds(tmp_path, s3, seed):
    done, stats, store = _faulty_run(tmp_path, s3, rate=0.10, seed=seed, bucket=f"rel-faults-{seed}")
    assert done.returncode == 0, done.stderr[-3000:]
    assert stats["faults"] >= 3, stats
    with _s3_env(s3[0]):
        _assert_published(store, TINY)


@pytest.mark.slow
def test_hundred_percent_faults_fail_clearly_and_publish_nothing(tmp_path, s3):
    # reset_after lets the server apply a write the client never hears about; at 100% the server
    # must apply nothing, so every kind but that one is used.
    kinds = tuple(k for k in FAULT_KINDS if k != "reset_after")
    done, stats, _ = _faulty_run(tmp_path, s3, rate=1.0, seed=300, bucket="rel-faults-all", kinds=kinds,
                                 env_extra={"KERASCUT_S3_MAX_ATTEMPTS": "2"})
    assert done.returncode != 0
    assert stats["faults"] == stats["requests"] > 0
    assert "Traceback" not in done.stderr
    errors = _one_error_line(done.stderr)
    assert len(errors) == 1, done.stderr[-2000:]
    # every backbone's own line names the S3 failure
    failed = [line for line in done.stderr.splitlines() if re.match(r"^\s*\d+\.\ds\s+\S+\s+failed\s", line)]
    assert len(failed) == len(TINY), done.stderr[-2000:]
    assert all(re.search(r"s3://|S3|connection|retr", line) for line in failed), failed
    listing = s3[1].list_objects_v2(Bucket="rel-faults-all").get("Contents", [])
    assert listing == []


# ------------------------------------------------------------------------------ races + gate


def _race(tmp: Path, n: int, store: str, config: Path, env_extra: dict | None = None) -> list[subprocess.CompletedProcess]:
    results: list = [None] * n

    def one(i: int) -> None:
        home = tmp / f"proc{i}"
        home.mkdir()
        results[i] = kerascut(["run", str(config)], env=_base_env(home, **(env_extra or {})), cwd=home, timeout=1200)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def _check_race(results, store: str, good: list[str], bad: list[str]):
    reports = [_statuses(r.stdout + "\n" + r.stderr, good + bad) for r in results]
    for r in results:
        assert "Traceback" not in r.stderr, r.stderr[-2000:]
        assert r.returncode == (1 if bad else 0), r.stderr[-2000:]
    for name in good:
        state = _store_state(store, name)
        assert len(state["versions"]) == 1 and state["committed"] == state["versions"], state
        assert state["latest"] == state["committed"][0]
        assert state["staging"] == [], state["staging"]
        claimed = [i for i, rep in enumerate(reports) if "published" in rep[name]]
        # exactly one run wrote the version; the others say it was already there
        assert len(claimed) == 1, (name, reports)
        assert all(rep[name] & {"published", "up-to-date"} for rep in reports), (name, reports)
    for name in bad:
        state = _store_state(store, name)
        assert state["committed"] == [] and state["versions"] == [] and state["latest"] is None, state
        assert state["staging"] == [], state["staging"]
        assert all("failed" in rep[name] and "published" not in rep[name] for rep in reports), reports
    problems, _ = check_invariants(store)
    assert problems == []
    kind = store.split(":")[0] if "://" in store else "local"
    record("race", processes=len(results), store=kind, ok=True, exits=[r.returncode for r in results])
    for name in bad:
        record("gate", case=f"validation fails ({name}), {len(results)} concurrent runs", ok=True)


@pytest.mark.slow
def test_two_concurrent_runs_and_the_validation_gate(tmp_path, sources):
    store = str(tmp_path / "store")
    config = _write_config(tmp_path / "race.yaml", store, [
        backbone("tiny-a", str(sources / "tiny_a.keras")),
        backbone("noisy", str(sources / "noisy.keras"), allow_unsafe=True),
    ])
    results = _race(tmp_path, 2, store, config)
    _check_race(results, store, ["tiny-a"], ["noisy"])


@pytest.mark.slow
@pytest.mark.parametrize("n", [4, 8])
def test_concurrent_runs_local_store(tmp_path, sources, n):
    store = str(tmp_path / "store")
    config = _write_config(tmp_path / "race.yaml", store, [
        backbone(f"tiny-{c}", str(sources / f"{name}.keras")) for c, name in zip("abc", TINY, strict=True)])
    _check_race(_race(tmp_path, n, store, config), store, ["tiny-a", "tiny-b", "tiny-c"], [])


@pytest.mark.slow
def test_concurrent_runs_s3_store(tmp_path, s3):
    url, client = s3
    client.create_bucket(Bucket="rel-race")
    store = "s3://rel-race/prod"
    config = _write_config(tmp_path / "race.yaml", store, [
        backbone(f"tiny-{c}", f"s3://rel-sources/models/{name}.keras") for c, name in zip("abc", TINY, strict=True)])
    creds = {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
             "AWS_DEFAULT_REGION": "us-east-1"}
    results = _race(tmp_path, 4, store, config, creds)
    with _s3_env(url):
        _check_race(results, store, ["tiny-a", "tiny-b", "tiny-c"], [])


@pytest.mark.slow
def test_gate_require_gpu_on_cpu_publishes_nothing(tmp_path, sources):
    store = str(tmp_path / "store")
    config = _write_config(tmp_path / "gpu.yaml", store, [
        backbone("tiny-a", str(sources / "tiny_a.keras"), validation={"require_gpu": True})])
    done = kerascut(["run", str(config)], env=_base_env(tmp_path), cwd=tmp_path)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert re.search(r"gpu", done.stdout + done.stderr, re.I)
    state = _store_state(store, "tiny-a")
    assert state["committed"] == [] and state["latest"] is None and state["staging"] == [], state
    record("gate", case="require_gpu on a CPU worker", ok=True)


# ------------------------------------------------------------------------------ secrets


_DUMP_PREFECT = r"""
import asyncio, json
from prefect.client.orchestration import get_client

async def main():
    async with get_client() as client:
        out = {"logs": [], "artifacts": [], "flow_runs": [], "task_runs": []}
        offset = 0
        while True:
            page = await client.read_logs(limit=200, offset=offset)
            if not page:
                break
            out["logs"] += [log.message for log in page]
            offset += len(page)
        out["artifacts"] = [a.model_dump(mode="json") for a in await client.read_artifacts()]
        out["flow_runs"] = [r.model_dump(mode="json") for r in await client.read_flow_runs()]
        out["task_runs"] = [r.model_dump(mode="json") for r in await client.read_task_runs()]
        print(json.dumps(out, default=str))

asyncio.run(main())
"""

_SAVE_BLOCK = r"""
import sys
from prefect_aws import AwsCredentials
from prefect_aws.client_parameters import AwsClientParameters
AwsCredentials(aws_access_key_id=sys.argv[1], aws_secret_access_key=sys.argv[2], region_name="us-east-1",
               aws_client_parameters=AwsClientParameters(endpoint_url=sys.argv[3])).save("kc-secret", overwrite=True)
"""


@pytest.mark.slow
def test_block_credentials_leak_nowhere(tmp_path, s3):
    url, client = s3
    client.create_bucket(Bucket="rel-block")
    store = "s3://rel-block/prod"
    env = _base_env(tmp_path, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    saved = subprocess.run([sys.executable, "-c", _SAVE_BLOCK, SECRET_KEY_ID, SECRET_ACCESS_KEY, url],
                           env=env, capture_output=True, text=True, timeout=300)
    assert saved.returncode == 0, saved.stderr[-2000:]
    config = _write_config(tmp_path / "block.yaml", store, [
        backbone("tiny-a", "s3://rel-sources/models/tiny_a.keras"),
        backbone("broken", "s3://rel-sources/models/missing.keras"),  # an exception path too
    ], aws_credentials_block="kc-secret")
    done = kerascut(["run", str(config)], env=env, cwd=tmp_path, timeout=900)
    assert done.returncode == 1, done.stderr[-2000:]  # "broken" fails, tiny-a publishes
    assert "published" in _statuses(done.stdout + done.stderr, ["tiny-a"])["tiny-a"]
    dump = subprocess.run([sys.executable, "-c", _DUMP_PREFECT], env=env, capture_output=True,
                          text=True, timeout=300)
    assert dump.returncode == 0, dump.stderr[-2000:]
    leaks = scan({"stdout": done.stdout, "stderr": done.stderr, "prefect api": dump.stdout},
                 [tmp_path / "cache", tmp_path / "block.yaml"])
    leaks += scan_s3(client, ["rel-block"])
    assert json.loads(dump.stdout)["logs"], "no logs were read back: the scan would prove nothing"
    record("secrets", via="AwsCredentials block", outputs="stdout, stderr, Prefect logs/artifacts/runs, cache, S3 objects", leaks=len(leaks))
    assert leaks == []


@pytest.mark.slow
def test_env_credentials_leak_nowhere_on_failure(tmp_path, s3):
    url, _ = s3
    config = _write_config(tmp_path / "fail.yaml", "s3://rel-no-such-bucket/prod", [
        backbone("tiny-a", "s3://rel-sources/models/tiny_a.keras")])
    env = _base_env(tmp_path, AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID=SECRET_KEY_ID,
                    AWS_SECRET_ACCESS_KEY=SECRET_ACCESS_KEY, AWS_DEFAULT_REGION="us-east-1")
    for argv in (["run", str(config)], ["ls", "s3://rel-no-such-bucket/prod"],
                 ["--debug", "ls", "s3://rel-no-such-bucket/prod"]):
        done = kerascut(argv, env=env, cwd=tmp_path, timeout=600)
        assert done.returncode != 0
        leaks = scan({"stdout": done.stdout, "stderr": done.stderr}, [tmp_path / "prefect-home"], SECRETS)
        record("secrets", via="environment, failing command " + argv[0], outputs="stdout, stderr, Prefect home", leaks=len(leaks))
        assert leaks == []
