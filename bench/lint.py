"""Benchmark: `meshcharts lint` of this repository with and without its render cache of published archives.

Runs `meshcharts lint --no-render-cache` and `meshcharts lint` alternately N times (after one warm-up run that
fills the cache) and prints each time and the medians. The peer is the same command rendering every archive again.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"--no-render-cache": ["--no-render-cache"], "render cache": []}


def lint_seconds(extra: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "meshcharts.cli", "lint", *extra], cwd=ROOT, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"meshcharts lint {' '.join(extra)} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    lint_seconds([])  # fills the cache, as any earlier lint on this machine would have
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.runs):
        for name, extra in VARIANTS.items():
            times[name].append(lint_seconds(extra))
    for name, runs in times.items():
        print(f"{name:18} median {statistics.median(runs):6.2f} s  runs {', '.join(f'{t:.2f}' for t in runs)}")
    ratio = statistics.median(times["render cache"]) / statistics.median(times["--no-render-cache"])
    print(f"with the cache / without: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
