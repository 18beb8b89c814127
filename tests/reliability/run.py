"""Run the reliability harnesses and summarise their figures.

    python -m tests.reliability.run            # the CI slice (pytest -m "not slow")
    python -m tests.reliability.run --full     # everything: 50+50 kills, all 80+ bad inputs, races up to 8, ...

Figures are collected in ``benchmarks/results/reliability.jsonl`` and summarised at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIGURES = REPO / "benchmarks" / "results" / "reliability.jsonl"


def summarise(lines: list[dict]) -> dict:
    by = defaultdict(list)
    for line in lines:
        by[line["kind"]].append(line)
    crash = by["crash"]
    bad = by["bad_input"]
    return {
        "kills_survived": {c["store"]: c["kills"] for c in crash},
        "kill_problems": sum(len(c["problems"]) for c in crash),
        "fault_runs": [(f["rate"], f["ok"], f.get("faults"), f.get("requests")) for f in by["faults"]],
        "races": [(r["processes"], r["store"], r["ok"]) for r in by["race"]],
        "gate_runs": [(g["case"], g["ok"]) for g in by["gate"]],
        "bad_inputs_tried": len(bad),
        "bad_inputs_passed": sum(1 for b in bad if b["ok"]),
        "secret_scans": len(by["secrets"]),
        "secrets_leaked": sum(s["leaks"] for s in by["secrets"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also run the slow harnesses")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args(argv)
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.unlink(missing_ok=True)
    tests = sorted(str(p.relative_to(REPO)) for p in (REPO / "tests").glob("test_reliability_*.py"))
    marker = [] if args.full else ["-m", "not slow"]
    env = dict(os.environ, KERASCUT_RELIABILITY_FIGURES=str(FIGURES))
    code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *marker, *tests,
                            *args.pytest_args], cwd=REPO, env=env)
    lines = [json.loads(x) for x in FIGURES.read_text().splitlines()] if FIGURES.exists() else []
    print(json.dumps(summarise(lines), indent=2))
    return code


if __name__ == "__main__":
    sys.exit(main())
