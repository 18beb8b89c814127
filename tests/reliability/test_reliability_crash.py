"""Crash consistency: SIGKILL publishing processes at random points (tests/reliability/crash.py).

CI kills 8 publishes on a local store and 4 on the S3 API server; ``-m slow`` kills 50 on each.
After every kill the store's invariants hold; a rerun completes the work; ``kerascut gc``
removes every orphan and no committed object. With fan-out (``prepare.deployment``), a worker's
prepare job killed mid-prepare on a real server (the session's ``fanout_world``, shared with
test_fanout.py) ends CRASHED, its backbone is reported failed
while the other publishes, and the next refresh completes it (tests/reliability/remote_crash.py).
"""

from __future__ import annotations

import os
import sys

import pytest

from tests.reliability.crash import run_crash_harness, run_publish_race
from tests.reliability.figures import record
from tests.reliability.remote_crash import run_remote_prepare_kill
from tests.reliability.servers import moto_server
from tests.reliability.servers import s3_env as s3_env_for

pytestmark = pytest.mark.integration

GC = [sys.executable, "-m", "kerascut_core", "gc", "{store}", "--older-than", "0"]


def _check(report):
    record("crash", **report.as_dict())
    assert report.problems == [], report.problems[:10]
    assert report.rerun_ok and report.gc_ok
    assert report.kills + report.finished_before_kill > 0


@pytest.fixture(scope="module")
def s3_env():
    with moto_server(lifetime=1800) as url, s3_env_for(url) as env:
        yield env


def _bucket(name):
    import boto3

    boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).create_bucket(Bucket=name)
    return f"s3://{name}/prod"


def test_kills_local_store_short(tmp_path):
    _check(run_crash_harness(str(tmp_path / "store"), kills=6, seed=1, size=1 << 20, gc_command=GC, calibrations=1))


def test_kills_s3_store_short(s3_env):
    _check(run_crash_harness(_bucket("crash-short"), kills=3, seed=2, size=1 << 20, env=s3_env, gc_command=GC,
                             calibrations=1))


@pytest.mark.parametrize("store", ["local", "s3"])
def test_concurrent_publishers_write_one_copy(tmp_path, s3_env, store):
    """The publish protocol under a race (the same versions from 4 processes at once);
    the same through 2 to 8 whole `kerascut run` processes is in test_reliability_flows.py."""
    uri = str(tmp_path / "store") if store == "local" else _bucket("race-protocol")
    problems = run_publish_race(uri, 4, ["r1", "r2", "r3"], env=s3_env if store == "s3" else None)
    record("race", processes=4, store=f"{store} (publish protocol)", ok=not problems, exits=[])
    assert problems == []


def test_killed_remote_prepare_is_reported_and_completed_by_the_next_refresh(tmp_path, fanout_world):
    from tests.reliability.sources import shared_sources

    report = run_remote_prepare_kill(fanout_world, tmp_path, shared_sources())
    record("crash-remote-prepare", **{k: v for k, v in report.items() if k != "killed"})
    assert report["problems"] == [], report


@pytest.mark.slow
def test_kills_local_store_full(tmp_path):
    report = run_crash_harness(str(tmp_path / "store"), kills=50, seed=11, size=4 << 20, gc_command=GC)
    _check(report)
    assert report.kills >= 50


@pytest.mark.slow
def test_kills_s3_store_full():
    """50 kills on S3 in five runs of 10, each on a fresh S3 API server: moto's own memory grows
    by gigabytes over a run of killed clients, and the OOM killer stops it near 25 kills."""
    kills = 0
    for batch in range(5):
        with moto_server(lifetime=900) as url, s3_env_for(url) as env:
            report = run_crash_harness(_bucket(f"crash-full-{batch}"), kills=10, seed=40 + batch, size=1 << 20,
                                       env=env, gc_command=GC)
            _check(report)
            kills += report.kills
    assert kills >= 50
