"""Run benchmarks: ``python -m tests.benchmarks [NAME ...]`` (default: all).

Each ``bench_NAME.py`` module exposes ``main() -> dict`` that prints its own
table and returns the results, written to ``bench-results/NAME.json``.
Timings are compared as ratios measured in the same run, never asserted.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from tests.benchmarks.common import write_results

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem[len("bench_"):] for p in HERE.glob("bench_*.py"))
    for name in names:
        module = importlib.import_module(f"tests.benchmarks.bench_{name}")
        print(f"\n=== benchmark: {name} ===", flush=True)
        results = module.main()
        path = write_results(name, results)
        print(f"results written to {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
