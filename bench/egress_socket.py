"""Stress check: the local cluster's egress proxy accepts a connection the moment `Egress.start` returns.

`start` returns once the proxy's socket path exists; the API server dials that path too. Each repetition starts a
proxy in a directory of its own, connects to its socket at once, and stops it, while one busy loop per core (or
`--load N`) competes for the CPU. Prints how many connects were refused; exits non-zero when any was.

    python3 bench/egress_socket.py [--starts 200] [--load N] [--generator DIR]

`--generator` imports meshcharts from another tree (say a checkout of an older commit's `generator/`), so the
same check runs on the code before a change and after it.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUSY = "while True:\n    pass\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=200)
    parser.add_argument("--load", type=int, default=os.cpu_count() or 2, help="busy loops beside the starts")
    parser.add_argument("--generator", type=Path, default=ROOT / "generator", help="where meshcharts is imported from")
    args = parser.parse_args()
    sys.path.insert(0, str(args.generator.resolve()))
    from meshcharts.cluster.local.egress import Egress

    load = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(args.load)]
    refused = 0
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="egress-bench-") as scratch:
            for run in range(args.starts):
                egress = Egress(Path(scratch) / str(run))
                egress.prepare()
                egress.start(Path(scratch) / "no-kubeconfig.yaml")
                try:
                    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                        client.settimeout(10)
                        client.connect(str(egress.socket))
                except ConnectionRefusedError:
                    refused += 1
                finally:
                    egress.stop()
    finally:
        for process in load:
            process.kill()
            process.wait()
    took = time.perf_counter() - start
    print(
        f"egress proxy, meshcharts from {args.generator}: {refused} of {args.starts} connects right after start "
        f"refused ({args.load} busy loops, {took:.0f} s)"
    )
    return 1 if refused else 0


if __name__ == "__main__":
    raise SystemExit(main())
