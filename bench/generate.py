"""Benchmark: generating all charts from the specs (load + validate + render + compare with charts/).

Prints the median of N in-process runs and of N `meshcharts generate --check` processes (which add
interpreter start-up). Target (issue 3): median at most 0.5 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from meshcharts import render, spec, write
from meshcharts.paths import Layout

ROOT = Path(__file__).resolve().parents[1]


def timed(fn: object, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append(time.perf_counter() - start)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    layout = Layout(ROOT)
    files = render.render_all(spec.load(layout))
    in_process = timed(lambda: write.check(layout), args.runs)
    cli = timed(
        lambda: subprocess.run(
            [sys.executable, "-m", "meshcharts.cli", "generate", "--check"], cwd=ROOT, check=True, capture_output=True
        ),
        args.runs,
    )
    size = sum(len(t) for t in files.values())
    print(f"charts: {len({p.split('/')[0] for p in files if '/' in p})}, files: {len(files)}, bytes: {size}")
    print(
        f"generate (in-process, load+render+diff): median {statistics.median(in_process):.3f} s "
        f"(min {min(in_process):.3f}, max {max(in_process):.3f}, n={args.runs})"
    )
    print(
        f"meshcharts generate --check (process):    median {statistics.median(cli):.3f} s "
        f"(min {min(cli):.3f}, max {max(cli):.3f}, n={args.runs})"
    )
    target = 0.5
    verdict = "meets" if statistics.median(cli) <= target else "MISSES"
    print(f"target: median <= {target} s for the command: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
