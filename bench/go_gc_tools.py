"""Benchmark: the short-lived Go tools the suite runs (helm, istioctl, cosign) at Go's default GOGC=100 against
GOGC=400, the value the local cluster's processes already run with (README, "Clusters").

Two measurements, alternating the two settings run by run so that a machine getting busier hurts both alike:
- `--renders N`: N `helm template` of each chart of charts/ in a row, wall and CPU time of the helm processes;
- `--static K`: the static test layers (`pytest -n 2 tests/unit tests/render tests/oracle`, pytest-xdist's default
  scheduling, as `.ci/test` ran them before it took `--dist worksteal`) K times each way, wall time and the
  machine's busy CPU over the run (/proc/stat).

GOGC goes into the environment of each run, so every Go program it starts inherits it; the peer is the same run at
Go's default. Prints each run and the medians, and the ratio (GOGC=400 over GOGC=100).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import time

from _pytest_run import ROOT, run_pytest
from layers import LAYERS
from meshcharts import tools

SETTINGS = ("100", "400")
STATIC = LAYERS["static"][0]


def env_with(gogc: str) -> dict[str, str]:
    return {**os.environ, "GOGC": gogc}


def renders(count: int, gogc: str) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system of the helm children) of `count` renders of each chart."""
    helm = str(tools.path("helm"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    for _ in range(count):
        for chart in ("base", "istiod", "gateway"):
            subprocess.run(
                [helm, "template", "x", str(ROOT / "charts" / chart), "-n", "istio-system"],
                env=env_with(gogc), stdout=subprocess.DEVNULL, check=True,
            )  # fmt: skip
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return took, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def static(gogc: str) -> tuple[float, float, str]:
    """Wall seconds, machine busy CPU seconds and pytest's summary line of one run of the static layers."""
    run = run_pytest(["-n", "2", *STATIC], env=env_with(gogc))
    if run.returncode != 0:
        raise SystemExit(f"static layers failed under GOGC={gogc}: {run.summary}\n{run.stdout[-3000:]}")
    return run.wall, run.busy_cpu, run.summary


def report(name: str, figures: dict[str, list[tuple[float, float]]]) -> None:
    medians = {
        g: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)) for g, runs in figures.items()
    }
    for gogc in SETTINGS:
        wall, cpu = medians[gogc]
        print(f"{name}: GOGC={gogc:3s} median {wall:7.2f} s wall, {cpu:7.2f} cpu-s over {len(figures[gogc])} run(s)")
    (w100, c100), (w400, c400) = medians["100"], medians["400"]
    print(f"{name}: GOGC=400 / GOGC=100: wall {w400 / w100:.2f}, cpu {c400 / c100:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--renders", type=int, default=0, help="helm template of each chart this many times per run")
    parser.add_argument("--render-runs", type=int, default=3, help="runs of --renders each way (alternating)")
    parser.add_argument("--static", type=int, default=0, help="runs of the static layers each way (alternating)")
    args = parser.parse_args()
    if not args.renders and not args.static:
        parser.error("give --renders N and/or --static K")
    if args.renders:
        figures: dict[str, list[tuple[float, float]]] = {g: [] for g in SETTINGS}
        for run in range(args.render_runs):
            for gogc in SETTINGS:
                wall, cpu = renders(args.renders, gogc)
                figures[gogc].append((wall, cpu))
                print(
                    f"renders run {run + 1} GOGC={gogc}: {3 * args.renders} renders, {wall:.2f} s wall, {cpu:.2f} cpu-s"
                )
        report("renders", figures)
    if args.static:
        figures = {g: [] for g in SETTINGS}
        for run in range(args.static):
            for gogc in SETTINGS:
                wall, cpu, summary = static(gogc)
                figures[gogc].append((wall, cpu))
                print(
                    f"static run {run + 1} GOGC={gogc}: {wall:.1f} s wall, {cpu:.0f} cpu-s busy ({summary})", flush=True
                )
        report("static layers", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
