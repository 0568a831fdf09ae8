"""Benchmark: wall time of the cluster test layers on a warm toolchain, as `.ci/test` runs them.

Each layer runs in its own pytest process with its own session cluster (bring-up and take-down
included). Targets: the e2e layer within 60 s (issue 14; 90 s in issue 7), the whole upgrade matrix of every release
line within 4 minutes (issue 16; 3 minutes for one line in issue 8).
"""

from __future__ import annotations

import argparse
import collections
import tempfile
from pathlib import Path

from junitparser import JUnitXml

from _pytest_run import run_pytest

LAYERS = {
    "e2e": (["tests/e2e"], 60.0),
    "upgrade": (["tests/upgrade"], 240.0),
    "upgrade-helm3": (["tests/upgrade", "--helm", "3"], 240.0),
    # Both cluster layers in one invocation, as .ci/test's Helm 4 pass runs them (no target of its own).
    "cluster": (["tests/e2e", "tests/upgrade"], None),
    # The static layers, as .ci/test runs them before the cluster layers (no target of its own).
    "static": (["tests/unit", "tests/render", "tests/oracle"], None),
}


def worker_seconds_by_file(junit: Path) -> dict[str, float]:
    """JUnit classname (the test module, `tests.e2e.test_base`: the suite has no test classes) -> the seconds its
    test cases took, setup and teardown included."""
    seconds: dict[str, float] = collections.defaultdict(float)
    for suite in JUnitXml.fromfile(str(junit)):
        for case in suite:
            seconds[case.classname] += case.time or 0.0
    return dict(seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("layers", nargs="*", default=["e2e", "upgrade"], choices=sorted(LAYERS))
    parser.add_argument(
        "--workers", type=int, default=0, help="pytest-xdist workers (-n), each with a session cluster of its own"
    )
    parser.add_argument(
        "--pytest-arg", action="append", default=[], help="one more pytest argument for every layer (repeatable)"
    )
    parser.add_argument(
        "--by-file",
        type=int,
        default=0,
        metavar="N",
        help="also print the N test files whose tests took longest, in worker-seconds (JUnit `time` summed)",
    )
    args = parser.parse_args()
    parallel = ["-n", str(args.workers), *args.pytest_arg] if args.workers else list(args.pytest_arg)
    failed = False
    for layer in args.layers:
        argv, target = LAYERS[layer]
        with tempfile.TemporaryDirectory(prefix="meshcharts-bench-") as scratch:
            junit = Path(scratch) / "junit.xml"
            report = ["--junitxml", str(junit)] if args.by_file else []
            run = run_pytest([*parallel, *argv, "--cluster-name", f"bench-{layer}", *report])
            by_file = worker_seconds_by_file(junit) if junit.is_file() else {}
        took, busy, summary = run.wall, run.busy_share, run.summary
        workers = " ".join([f"-n {args.workers}" if args.workers else "1 process", *args.pytest_arg])
        if target is None:
            aim = "no target"
        else:
            aim = f"target < {target:.0f} s: {'meets' if took <= target and run.returncode == 0 else 'MISSES'}"
        print(f"{layer:14s} {workers:9s} {took:6.1f} s  machine busy {busy:4.0%}  {aim}   ({summary})")
        if by_file:
            print(f"  worker-seconds by test file (JUnit `time` summed): {sum(by_file.values()):.0f} in all")
            for name, seconds in collections.Counter(by_file).most_common(args.by_file):
                print(f"  {seconds:8.1f}  {name}")
        failed |= run.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
