"""One pytest process as the bench scripts measure it: its wall time, how busy it kept the whole machine (from
/proc/stat, so the helm, istioctl and cluster processes it starts count too), and pytest's summary line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Run:
    wall: float  # seconds
    busy_cpu: float  # CPU seconds the whole machine was busy meanwhile
    busy_share: float  # of all the machine's CPU time meanwhile
    summary: str
    returncode: int
    stdout: str


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def run_pytest(args: Sequence[str], *, env: Mapping[str, str] | None = None) -> Run:
    """`python -m pytest -q -p no:cacheprovider ARGS` in the checkout, measured."""
    busy0, total0 = machine_ticks()
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT, env=None if env is None else dict(env), capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - start
    busy1, total1 = machine_ticks()
    summary = next(
        (line for line in reversed(done.stdout.splitlines()) if re.search(r"\d+ (passed|failed)", line)),
        done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:],
    ).strip()
    return Run(
        wall=wall,
        busy_cpu=(busy1 - busy0) / os.sysconf("SC_CLK_TCK"),
        busy_share=(busy1 - busy0) / max(total1 - total0, 1),
        summary=summary,
        returncode=done.returncode,
        stdout=done.stdout,
    )
