"""Benchmark aid: where the machine's CPU goes while a command runs, by process name.

`python bench/cpu_by_process.py [--interval S] -- COMMAND...` runs COMMAND and, every S seconds, reads the CPU time
(utime + stime, /proc/PID/stat) of every process on the machine; at the end it prints how busy the machine was
(/proc/stat), the least wall time that much CPU needs on this machine's cores (busy CPU seconds over the cores: the
command cannot finish sooner here however well its work is spread), what COMMAND's own process tree used (getrusage
of its waited-for descendants: short-lived helm and istioctl processes are in it), and the CPU seconds seen per
process name (kube-apiserver, etcd, pilot-discovery, python ...). A process that ends between two samples loses what
it used since the last one, so the per-name figures are lower bounds, most of all for short-lived processes. With
`-- sleep 30` beside a running cluster it measures the cluster's idle cost. It also prints the largest resident
memory one process of each name had at a sample.
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from _pytest_run import machine_ticks

HZ = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def process_name(pid: str) -> str | None:
    """The executable's base name; for Python `python:pytest`, `python:<module>` of `-m <module>` (the egress
    proxy: `python:meshcharts.cluster.local.egress`), `python:-c` (pytest-xdist's workers), `python:<script>`, else
    `python:other`; None once the process is gone."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if not args or not args[0]:
        return None
    name = os.path.basename(args[0].decode(errors="replace"))
    if name.startswith("python"):
        if b"pytest" in b" ".join(args[1:4]):
            return "python:pytest"
        words = [a.decode(errors="replace") for a in args[1:] if a]
        while words and words[0].startswith("-") and words[0] not in ("-m", "-c"):
            words.pop(0)  # interpreter options (-u, -I, -X...)
        if len(words) >= 2 and words[0] == "-m":
            return f"python:{words[1]}"
        if words and words[0] == "-c":
            return "python:-c"  # pytest-xdist's workers (execnet starts them with `python -c`), among others
        if words and words[0].endswith(".py"):
            return f"python:{os.path.basename(words[0])}"
        return "python:other"
    return name.split("-v0")[0]  # the toolchain's pilot-discovery-v0.0.0-... directory names its version


def sample(
    seen: dict[tuple[str, str], int], used: collections.Counter[str], peak: collections.Counter[str] | None = None
) -> None:
    """Adds to `used` what each process used since the last sample (a process is its pid and its start time), and
    raises `peak` to the largest resident memory (bytes) one process of each name has at this sample."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = process_name(entry)
        if name is None:
            continue
        key = (entry, fields[19])
        ticks = int(fields[11]) + int(fields[12])
        used[name] += ticks - seen.get(key, 0)
        seen[key] = ticks
        if peak is not None:
            peak[name] = max(peak[name], int(fields[21]) * PAGE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between samples (default 2)")
    parser.add_argument("--top", type=int, default=15, help="process names to print (default 15)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    seen: dict[tuple[str, str], int] = {}
    used: collections.Counter[str] = collections.Counter()
    sample(seen, used)  # the baseline: only what is used from now on counts
    used.clear()
    (busy0, _), start = machine_ticks(), time.monotonic()
    peak: collections.Counter[str] = collections.Counter()
    child = subprocess.Popen(command)
    while child.poll() is None:
        time.sleep(args.interval)
        sample(seen, used, peak)
    wall = time.monotonic() - start
    busy = (machine_ticks()[0] - busy0) / HZ
    tree = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"wall {wall:.1f} s, exit {child.returncode}; machine busy {busy:.0f} cpu-s ({busy / wall:.2f} cores)")
    print(f"the command's process tree (rusage of waited-for descendants): {tree.ru_utime + tree.ru_stime:.0f} cpu-s")
    cores = os.cpu_count() or 1
    print(f"the same work, every one of the {cores} cores busy all the time, would still take {busy / cores:.0f} s")
    print("cpu-s seen per process name (lower bounds):")
    for name, ticks in used.most_common(args.top):
        print(f"  {ticks / HZ:8.1f}  {name}")
    print("largest resident memory of one process per name, MB (sampled, lower bounds):")
    for name, rss in peak.most_common(args.top):
        print(f"  {rss / 2**20:8.0f}  {name}")
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
