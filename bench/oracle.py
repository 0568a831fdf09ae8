"""Wall time of the injection oracle layer (`tests/oracle`), and of its two steps per values variant.

Runs `pytest -q tests/oracle` as CI does, in a fresh process per round, then times in this process one
`helm template` of charts/istiod and one `istioctl kube-inject` of every workload per variant: the cost the
layer pays before it compares. Usage: python bench/oracle.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from meshcharts import tools  # noqa: E402
from tests.oracle import cases  # noqa: E402
from tests.oracle.conftest import CHART  # noqa: E402
from tests.oracle.injection import inject, render_injector  # noqa: E402


def _layer() -> tuple[float, str]:
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/oracle"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - start
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    if done.returncode != 0:
        raise SystemExit(f"pytest tests/oracle exited {done.returncode}:\n{done.stdout[-4000:]}{done.stderr}")
    return seconds, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    helm, istioctl = tools.path("helm"), tools.path("istioctl")
    variants, text = cases.variants(), cases.workloads_text()
    print(f"{len(cases.workloads())} workloads x {len(variants)} variants")

    layer, summary = [], ""
    for _ in range(args.rounds):
        seconds, summary = _layer()
        layer.append(seconds)
    print(f"pytest tests/oracle: median {statistics.median(layer):.1f} s over {args.rounds} ({summary})")

    render, injecting = [], []
    for variant in variants:
        start = time.monotonic()
        injector = render_injector(helm, CHART, variant.chart_values())
        render.append(time.monotonic() - start)
        start = time.monotonic()
        inject(istioctl, injector, text, env=variant.env)
        injecting.append(time.monotonic() - start)
    print(f"helm template per variant: median {statistics.median(render):.2f} s")
    print(f"istioctl kube-inject of all workloads per variant: median {statistics.median(injecting):.2f} s")


if __name__ == "__main__":
    main()
