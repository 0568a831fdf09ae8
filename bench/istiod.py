"""Benchmark: the real istiod on the local cluster's host, from process start to webhook-ready.

Brings a local cluster up, installs base and istiod from charts/ (default values), then starts the chart's
istiod Deployment on the host `--runs` times (stopping it by pid in between) and prints, per run and as
median/min/max: seconds until istiod is ready (/ready answers and its webhook port serves TLS) and until its
CA is in every webhook configuration of its revision. There is no peer to compare with: on kind the same
Deployment runs as a pod, whose start includes pulling images.

    python3 bench/istiod.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "generator"))

from meshcharts import cluster, controlplane  # noqa: E402
from meshcharts.helm import Helm  # noqa: E402
from meshcharts.kube import kube_for  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    name = f"bench-istiod-{uuid.uuid4().hex[:6]}"
    up = cluster.up(name, timeout=180)
    runner = up.backend.istiod_runner(name)
    ready: list[float] = []
    trusted: list[float] = []
    try:
        kubeconfig = up.kubeconfig
        helm = Helm(kubeconfig=kubeconfig)
        for release, chart in (("istio-base", "base"), ("istiod", "istiod")):
            helm.upgrade(
                release, ROOT / "charts" / chart, namespace="istio-system", install=True, wait=True, timeout=180,
                extra=("--create-namespace",),
            )  # fmt: skip
        kube = kube_for(kubeconfig)
        for run in range(1, args.runs + 1):
            # A fresh start each time: the webhooks lose istiod's CA first, so "trusted" is measured, not inherited.
            for config in kube.admission.list_mutating_webhook_configuration(
                label_selector="istio.io/rev=default"
            ).items:
                for hook in config.webhooks:
                    hook.client_config.ca_bundle = None
                kube.admission.replace_mutating_webhook_configuration(config.metadata.name, config)
            begin = time.perf_counter()
            started = runner.answer(kube, "istio-system", "istiod", timeout=180)
            ready.append(time.perf_counter() - begin)
            controlplane.wait_webhooks_trusted(kube, timeout=180)
            trusted.append(time.perf_counter() - begin)
            print(f"run {run}/{args.runs}: ready {ready[-1]:.2f}s, webhooks trusted {trusted[-1]:.2f}s", flush=True)
            started.stop()
    finally:
        cluster.down(name, timeout=120)
    for label, values in (("ready", ready), ("webhooks trusted", trusted)):
        print(
            f"istiod start -> {label}: median {statistics.median(values):.2f}s, "
            f"min {min(values):.2f}s, max {max(values):.2f}s over {len(values)} runs"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
