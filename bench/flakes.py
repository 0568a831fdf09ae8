"""Stress check: the tests that once failed at random, run again and again with both cores kept busy.

Each repetition is a pytest process of its own under ci/leftovers.py (the gate that ends .ci/test), so a
repetition also fails when it leaves a process running (a gpg-agent, a cluster component). While the runs go
on, one busy loop per core competes with them for the CPU. Prints one line per repetition and the count of
failed runs; exits non-zero when any failed.

    python3 bench/flakes.py [--runs 20] [--no-load] [-- PYTEST_SELECTION...]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The lifecycle tests of the cluster layers and the linters' tests: what failed at random (issue 21), and the
# timing-sensitive places that were changed with them.
SELECTION = (
    "tests/e2e/test_local_cluster.py::test_up_that_runs_out_of_time_cleans_up_after_itself",
    "tests/e2e/test_local_cluster.py::test_down_stops_a_component_that_has_no_pid_file",
    "tests/e2e/test_base.py::test_all_crds_are_established_after_install",
    "tests/render/test_outside_linters.py",
    "tests/unit/test_admission.py",
    "tests/unit/test_gnupg.py",
)
BUSY = "while True:\n    pass\n"


def start_load() -> list[subprocess.Popen[bytes]]:
    """One busy loop per core, so the tests run on a machine whose cores are all taken."""
    return [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(os.cpu_count() or 2)]


def stop_load(load: list[subprocess.Popen[bytes]]) -> None:
    for proc in load:
        proc.send_signal(signal.SIGTERM)
    for proc in load:
        proc.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-load", action="store_true", help="do not keep the cores busy")
    parser.add_argument("selection", nargs="*", default=list(SELECTION))
    args = parser.parse_args()
    # Stopped with SIGTERM, the busy loops still go (the finally below runs on SystemExit).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load = [] if args.no_load else start_load()
    failed: list[int] = []
    started = time.perf_counter()
    try:
        for run in range(1, args.runs + 1):
            begin = time.perf_counter()
            done = subprocess.run(
                [sys.executable, str(ROOT / "ci" / "leftovers.py"), "--", sys.executable, "-m", "pytest", "-q",
                 "-p", "no:cacheprovider", *args.selection],
                cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            summary = [line for line in done.stdout.splitlines() if re.search(r"\d+ (passed|failed|error)", line)]
            verdict = "ok" if done.returncode == 0 else f"FAILED (exit {done.returncode})"
            print(
                f"run {run}/{args.runs}: {verdict} in {time.perf_counter() - begin:.1f}s; "
                f"{summary[-1].strip('= ') if summary else '(no pytest summary)'}",
                flush=True,
            )
            if done.returncode != 0:
                failed.append(run)
                tail = (done.stdout + done.stderr).splitlines()[-40:]
                print("\n".join(f"    {line}" for line in tail), flush=True)
    finally:
        stop_load(load)
    load_note = "no load" if args.no_load else f"{os.cpu_count()} busy loops"
    print(
        f"flakes: {len(failed)} of {args.runs} runs failed ({load_note}; {time.perf_counter() - started:.0f}s)"
        + (f"; failed runs: {failed}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
