"""Run the bad-input corpus (``cases.yaml``) through the CLI and check every rule.

    python -m tests.bad_inputs.runner              # every case
    python -m tests.bad_inputs.runner --tier ci    # the CI slice
    python -m tests.bad_inputs.runner keras-empty cut-unknown-end   # some cases

:class:`Corpus` sets the world up once (fixtures, a local store and an S3 store each holding a
committed backbone ``seed``, an S3 API server, a proxy that denies everything); :meth:`Corpus.run`
runs one case in a subprocess and returns the rules it broke (``[]`` when it passed).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.reliability.faultproxy import FaultProxy
from tests.reliability.servers import moto_server, s3_env, s3_environment

__all__ = ["CASES", "CaseResult", "Corpus", "load_cases"]

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CASES = HERE / "cases.yaml"
SRC_BUCKET = "reliab-src"
STORE_BUCKET = "reliab-store"
# Environment a user's shell might carry that must not leak into a case.
_SCRUB = ("PREFECT_API_URL", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "KERASCUT_DEBUG",
          "TF_CPP_MIN_LOG_LEVEL")


def load_cases(path: Path = CASES) -> list[dict[str, Any]]:
    cases = yaml.safe_load(path.read_text())
    ids = [c["id"] for c in cases]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise ValueError(f"duplicate case ids in {path}: {sorted(dupes)}")
    return cases


@dataclass
class CaseResult:
    id: str
    problems: list[str] = field(default_factory=list)
    exit_code: int | None = None
    stderr: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _seed_store(store_uri: str, work: Path) -> None:
    """Commit one backbone ``seed`` (through the real publish protocol) so stores are not empty."""
    from kerascut_core.publishing import commit_version, stage_candidate, update_latest
    from kerascut_core.stores import open_store

    store = open_store(store_uri)
    model = work / "seed.keras"
    model.write_bytes(os.urandom(4096))
    version = "a1b2c3d4e5f6"
    staged = stage_candidate(store, "seed", version, {"model.keras": model})
    commit_version(store, "seed", version, staged, {
        "name": "seed", "version": version,
        "source": {"uri": "keras.applications/MobileNetV2", "fingerprint": "seed", "weights": "none"},
        "cut": {"end": "block_3_expand_relu"},
        "inputs": [{"name": "input", "shape": [None, 96, 96, 3], "dtype": "float32"}],
        "outputs": [{"name": "block_3_expand_relu", "shape": [None, 24, 24, 144], "dtype": "float32"}],
        "params": {"total_source": 10, "kept": 5},
        "validation": {"passed": True, "max_abs_diff": 0.0},
    })
    update_latest(store, "seed", version)


class Corpus:
    """The world the cases run in. Use as a context manager; everything stops on exit."""

    def __init__(self, root: Path | None = None, *, s3: bool = True, models: bool = True) -> None:
        self._stack = contextlib.ExitStack()
        self.root = Path(root or tempfile.mkdtemp(prefix="kc-badinputs-"))
        self._owns_root = root is None
        self.want_s3 = s3
        self.want_models = models
        self.values: dict[str, str] = {}

    def __enter__(self) -> Corpus:
        from tests.bad_inputs.make_corpus import make_corpus

        fx = make_corpus(self.root / "fx", models=self.want_models)
        store = self.root / "store"
        store.mkdir()
        _seed_store(str(store), self.root)
        self.values = {"fx": str(fx), "store": str(store), "s3": "", "s3store": "", "denied": ""}
        self.home = self.root / "home"
        (self.home / "cache").mkdir(parents=True)
        if self.want_s3:
            url = self._stack.enter_context(moto_server(lifetime=1800))
            denied = self._stack.enter_context(FaultProxy(url, rate=1.0, kinds=("denied",), lifetime=1800))
            self.values.update(s3=url, s3store=f"s3://{STORE_BUCKET}/prod", denied=denied.url)
            with s3_env(url):
                s3 = self.s3_client()
                s3.create_bucket(Bucket=SRC_BUCKET)
                s3.create_bucket(Bucket=STORE_BUCKET)
                if self.want_models:
                    s3.upload_file(str(fx / "tiny.keras"), SRC_BUCKET, "models/tiny.keras")
                _seed_store(self.values["s3store"], self.root)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def s3_client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.values["s3"], region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    # -- state of the stores -------------------------------------------------------------------

    def snapshot(self) -> dict[str, str]:
        """Every file and object in both stores, with its sha256 or ETag, and open uploads."""
        out: dict[str, str] = {}
        base = Path(self.values["store"])
        for path in sorted(base.rglob("*")):
            rel = "local:" + path.relative_to(base).as_posix()
            out[rel] = "dir" if path.is_dir() else _sha(path)
        if self.values["s3"]:
            s3 = self.s3_client()
            for bucket in (SRC_BUCKET, STORE_BUCKET):
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                    for obj in page.get("Contents", []):
                        out[f"s3:{bucket}/{obj['Key']}"] = f"{obj['ETag']}:{obj['Size']}"
                for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
                    out[f"upload:{bucket}/{upload['Key']}"] = upload["UploadId"]
            out["s3:buckets"] = ",".join(sorted(b["Name"] for b in s3.list_buckets()["Buckets"]))
        return out

    # -- one case ------------------------------------------------------------------------------

    def _fill(self, text: str, values: dict[str, str]) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), text)

    def run(self, case: dict[str, Any], timeout: float = 300) -> CaseResult:
        result = CaseResult(case["id"])
        if case.get("s3") and not self.values["s3"]:
            result.problems.append("needs the S3 API server, which this corpus was set up without")
            return result
        tmp = Path(tempfile.mkdtemp(prefix=case["id"][:20] + "-", dir=self.root))
        values = {**self.values, "tmp": str(tmp), "config": str(tmp / "config.yaml")}
        if "config" in case:
            (tmp / "config.yaml").write_text(self._fill(case["config"], values))
        env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
        env.update(
            PYTHONPATH=str(REPO), XDG_CACHE_HOME=str(self.home / "cache"), KERAS_HOME=str(self.home / "keras"),
            PREFECT_HOME=str(self.home / "prefect"), COLUMNS="200", NO_COLOR="1",
        )
        if case.get("s3"):
            env.update(s3_environment(self.values["s3"]))
        for key, value in (case.get("env") or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = self._fill(str(value), values)
        argv = [self._fill(str(a), values) for a in case["argv"]]
        outputs = [Path(self._fill(o, values)) for o in case.get("outputs", [])]
        before = self.snapshot()
        started = time.monotonic()
        try:
            done = subprocess.run([sys.executable, "-m", "kerascut_core", *argv], cwd=tmp, env=env,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            result.problems.append(f"did not finish within {timeout}s")
            return result
        result.seconds = round(time.monotonic() - started, 2)
        result.exit_code = done.returncode
        result.stderr = done.stderr
        result.problems += check_output(case, done.returncode, done.stdout, done.stderr)
        after = self.snapshot()
        if after != before:
            changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            result.problems.append(f"the store changed: {changed[:4]}")
        made = [str(p) for p in outputs if p.exists()]
        if made:
            result.problems.append(f"left an output behind: {made}")
        shutil.rmtree(tmp, ignore_errors=True)
        return result


_PROGRESS = re.compile(r"^(kerascut: refreshing |\s*\d+\.\ds\s+\S+\s+\S+)")


def check_output(case: dict[str, Any], code: int, stdout: str, stderr: str) -> list[str]:
    """The rules a failing command's output must follow (see cases.yaml)."""
    problems = []
    if code == 0:
        problems.append("exited 0")
    elif case.get("exit") is not None and code != case["exit"]:
        problems.append(f"exited {code}, expected {case['exit']}")
    lines = [line for line in stderr.splitlines() if line.strip()]
    if case["argv"][0] == "run":
        # `kerascut run` reports progress on stderr (one line per step); everything else must
        # still be the single error line, and a failing backbone's message is its "failed" line.
        progress = [line for line in lines if _PROGRESS.match(line)]
        lines = [line for line in lines if not _PROGRESS.match(line)]
        failed = [line for line in progress if " failed " in line]
        stderr = "\n".join(lines + failed)
    if "Traceback (most recent call last)" in stderr + stdout:
        problems.append("printed a traceback")
    errors = [line for line in lines if line.startswith("error:")]
    if len(errors) != 1:
        problems.append(f"expected one 'error:' line on stderr, got {len(errors)}")
    if len(lines) != 1:
        problems.append(f"expected stderr to be one line, got {len(lines)}: {[line[:100] for line in lines[:4]]}")
    if "rerun with --debug" in stderr:
        problems.append("an unexpected exception reached the CLI (no designed message)")
    message = (stderr if case["argv"][0] == "run" else errors[0] if errors else stderr).lower()
    for fragment in case.get("expect", []):
        options = [f.lower() for f in str(fragment).split("|")]
        if not any(option in message for option in options):
            problems.append(f"message lacks {fragment!r}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ids", nargs="*", help="run only these case ids")
    parser.add_argument("--tier", choices=["ci", "all"], default="all")
    parser.add_argument("--json", help="write results here")
    args = parser.parse_args(argv)
    cases = load_cases()
    if args.ids:
        cases = [c for c in cases if c["id"] in args.ids]
    elif args.tier == "ci":
        cases = [c for c in cases if c.get("tier") == "ci"]
    results = []
    with Corpus() as corpus:
        for case in cases:
            result = corpus.run(case)
            results.append(result)
            mark = "ok  " if result.ok else "FAIL"
            line = result.stderr.strip().splitlines()[-1][:160] if result.stderr.strip() else ""
            print(f"{mark} {case['id']:<36} exit={result.exit_code} {result.seconds:5.1f}s  {line}", flush=True)
            for problem in result.problems:
                print(f"       - {problem}", flush=True)
    failed = [r for r in results if not r.ok]
    print(f"\n{len(results)} cases, {len(results) - len(failed)} passed, {len(failed)} failed")
    if args.json:
        Path(args.json).write_text(json.dumps([r.__dict__ for r in results], indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
