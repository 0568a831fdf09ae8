"""Benchmark: a cluster test layer with the local clusters' kube-apiserver as meshcharts starts it, against the same
layer with extra kube-apiserver flags, alternating run by run.

    python3 bench/apiserver_args.py --arg enable-priority-and-fairness=false [--arg K=V ...] [--layer L] [--runs 2]

The flags reach the API servers of the layer's session clusters through a pytest plugin of this file (`-p
apiserver_args`), which adds them to kwokctl's kube-apiserver patch; meshcharts itself is not changed. Prints each
run's wall time, the machine's busy CPU (/proc/stat) and pytest's summary, the medians, and the ratio of the
flags' run to the plain run (the peer). A run that fails stops the benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from typing import Any

from _pytest_run import ROOT, run_pytest
from layers import LAYERS as ALL_LAYERS

# The layers that start local clusters (bench/layers.py names them).
LAYERS = {name: ALL_LAYERS[name][0] for name in ("upgrade", "e2e", "cluster")}
ENV = "MESHCHARTS_BENCH_APISERVER_ARGS"


def pytest_configure(config: Any) -> None:
    """As a pytest plugin: add the flags in $MESHCHARTS_BENCH_APISERVER_ARGS to every local cluster's API server."""
    flags = json.loads(os.environ.get(ENV) or "[]")
    if not flags:
        return
    import yaml

    from meshcharts.cluster.local import Local

    plain = Local.kwokctl_config

    def with_flags(self: Local, name: str) -> str:
        config = yaml.safe_load(plain(self, name))
        for patch in config["componentsPatches"]:
            if patch["name"] == "kube-apiserver":
                patch.setdefault("extraArgs", []).extend({"key": k, "value": v} for k, v in flags)
        return str(yaml.safe_dump(config, sort_keys=False))

    Local.kwokctl_config = with_flags  # type: ignore[method-assign]


def run(layer: str, workers: int, flags: list[tuple[str, str]]) -> tuple[float, float, str]:
    env = {**os.environ, ENV: json.dumps(flags)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "bench"), env.get("PYTHONPATH", "")) if p)
    done = run_pytest(
        ["-p", "apiserver_args", "-n", str(workers), *LAYERS[layer], "--cluster-name", f"bench-apiserver-{layer}"],
        env=env,
    )
    if done.returncode != 0:
        raise SystemExit(f"{layer} with {flags or 'no extra flags'} failed: {done.summary}\n{done.stdout[-3000:]}")
    return done.wall, done.busy_cpu, done.summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arg", action="append", required=True, help="a kube-apiserver flag as KEY=VALUE (no --)")
    parser.add_argument("--layer", choices=sorted(LAYERS), default="upgrade")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    flags = []
    for item in args.arg:
        key, sep, value = item.partition("=")
        if not sep or not key or key.startswith("-"):
            parser.error(f"--arg {item!r}: write KEY=VALUE, the flag's name without its dashes")
        flags.append((key, value))
    figures: dict[str, list[tuple[float, float]]] = {"plain": [], "flags": []}
    for number in range(1, args.runs + 1):
        for label, extra in (("plain", []), ("flags", flags)):
            took, busy, summary = run(args.layer, args.workers, extra)
            figures[label].append((took, busy))
            print(f"run {number} {label:5s}: {took:6.1f} s wall, {busy:5.0f} cpu-s busy ({summary})", flush=True)
    medians = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in figures.items()}
    shown = " ".join(f"--{k}={v}" for k, v in flags)
    for label in ("plain", "flags"):
        wall, busy = medians[label]
        print(f"{args.layer} -n {args.workers}, {label} ({shown if label == 'flags' else 'as meshcharts starts it'}): "
              f"median {wall:.1f} s wall, {busy:.0f} cpu-s busy")  # fmt: skip
    (w0, c0), (w1, c1) = medians["plain"], medians["flags"]
    print(f"ratio flags / plain: wall {w1 / w0:.2f}, cpu {c1 / c0:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
