"""Run kerascut's benchmarks, print one table and write JSON under ``benchmarks/results/``.

Each ``benchmarks/bench_*.py`` module defines ``run(quick: bool) -> list[dict]``; every row has
``case``, ``metric``, ``value``, ``unit`` and, where the issue sets one, ``goal`` (a readable
target such as ``"<= 1.5x"``) and ``ok`` (bool). Goals are ratios measured in one run.

    python -m benchmarks.run                 # all benchmarks
    python -m benchmarks.run cut store       # only bench_cut.py and bench_store.py
    python -m benchmarks.run --quick         # smaller sizes, for a smoke run
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _available() -> list[str]:
    return sorted(p.stem[len("bench_") :] for p in HERE.glob("bench_*.py"))


def _format_table(rows: list[dict]) -> str:
    cols = ["bench", "case", "metric", "value", "unit", "goal", "ok"]
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=False))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)) for row in cells]
    return "\n".join(out)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {_available()})")
    parser.add_argument("--quick", action="store_true", help="smaller sizes for a smoke run")
    args = parser.parse_args(argv)
    names = args.names or _available()
    unknown = sorted(set(names) - set(_available()))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; expected some of {_available()}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    all_rows: list[dict] = []
    for name in names:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        started = time.perf_counter()
        rows = [dict(row, bench=name) for row in module.run(quick=args.quick)]
        record = {
            "benchmark": name,
            "quick": args.quick,
            "seconds": round(time.perf_counter() - started, 2),
            "machine": {"python": platform.python_version(), "platform": platform.platform()},
            "rows": rows,
        }
        (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
        all_rows += rows
        print(_format_table(rows), flush=True)
        print(flush=True)
    print(_format_table(all_rows))
    return 1 if any(r.get("ok") is False for r in all_rows) else 0


if __name__ == "__main__":
    sys.exit(main())
