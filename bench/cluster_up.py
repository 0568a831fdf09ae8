"""Warm `meshcharts cluster up` to Ready versus `kwokctl create cluster` run directly on the same binaries.

Both sides reach the same condition: /readyz answers, 2 nodes are Ready and ServiceAccount default/default
exists. The direct side runs kwokctl create + scale and then the same readiness wait in this process
(with the Kubernetes client already imported), so the ratio shows what meshcharts adds on top of kwokctl.
Rounds alternate the two sides. Usage: python bench/cluster_up.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid

from meshcharts import cluster, tools
from meshcharts.cluster._common import wait_ready
from meshcharts.cluster.local import Local

_MESHCHARTS = (
    [shutil.which("meshcharts") or ""] if shutil.which("meshcharts") else [sys.executable, "-m", "meshcharts.cli"]
)


def _meshcharts_up(name: str) -> float:
    start = time.monotonic()
    done = subprocess.run([*_MESHCHARTS, "cluster", "up", "--name", name], capture_output=True, text=True)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"meshcharts cluster up exited {done.returncode}:\n{done.stderr}")
    return seconds


def _kwokctl_up(name: str, local: Local) -> float:
    binaries = local.binaries()
    env = local.env(binaries)
    start = time.monotonic()
    for argv in (
        local.create_argv(name, binaries, api_port=None),
        [str(binaries["kwokctl"]), "scale", "node", "--replicas", str(cluster.DEFAULT_NODES), "--name", name],
    ):
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr}")
    wait_ready(local.kubeconfig(name), nodes=cluster.DEFAULT_NODES, timeout=120)
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    local = Local()
    tools.install(["kwokctl", "kwok", "etcd", *tools.KUBERNETES_COMPONENTS])
    import kubernetes.client  # noqa: F401  (the direct side should not pay for the import)

    print(f"load average at the start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", file=sys.stderr)
    ours: list[float] = []
    direct: list[float] = []
    for round_no in range(args.rounds):
        for side, samples in (("meshcharts", ours), ("kwokctl", direct)):
            name = f"bench-{uuid.uuid4().hex[:6]}"
            try:
                seconds = _meshcharts_up(name) if side == "meshcharts" else _kwokctl_up(name, local)
            finally:
                cluster.down(name, timeout=60)
            samples.append(seconds)
            print(f"round {round_no + 1} {side:<10} {seconds:6.2f}s", file=sys.stderr, flush=True)

    ours_median, direct_median = statistics.median(ours), statistics.median(direct)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"machine: {os.cpu_count()} cores, load average at the end {load}; Kubernetes {local.k8s_version}; "
        f"{args.rounds} rounds"
    )
    print("| what | median to Ready | samples |")
    print("|---|---|---|")
    print(f"| `meshcharts cluster up` | {ours_median:.2f} s | {' '.join(f'{s:.2f}' for s in ours)} |")
    print(
        f"| `kwokctl create cluster` + scale + same wait | {direct_median:.2f} s | "
        f"{' '.join(f'{s:.2f}' for s in direct)} |"
    )
    print(
        f"ratio meshcharts/kwokctl: {ours_median / direct_median:.2f} (target <= 1.1); "
        f"median {ours_median:.2f} s (target <= 5 s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
