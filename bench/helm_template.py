"""Benchmark: `helm template` of each chart with default values, beside `helm version` in the same run.

`helm version` is the floor: the cost of starting the helm binary at all. Target (issue 4): the
istiod chart renders in at most 2x that floor (median of 5).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from pathlib import Path

from meshcharts import tools

ROOT = Path(__file__).resolve().parents[1]


def median_seconds(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for tool in ("helm", "helm3"):
        helm = str(tools.path(tool))
        floor = median_seconds([helm, "version"], args.runs)
        print(f"{tool}: helm version median {floor * 1000:.0f} ms (floor)")
        for chart in ("istiod", "gateway", "base"):
            t = median_seconds([helm, "template", chart, str(ROOT / "charts" / chart), "-n", "istio-system"], args.runs)
            mark = f"  target <= 2.0x: {'meets' if t / floor <= 2.0 else 'MISSES'}" if chart == "istiod" else ""
            print(f"{tool}: helm template {chart:8s} median {t * 1000:.0f} ms  ratio {t / floor:.2f}x{mark}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
