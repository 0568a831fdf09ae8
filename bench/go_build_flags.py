"""Benchmark: a cold toolchain build with and without one `go build` flag.

`python bench/go_build_flags.py [--build helm3] [--runs 2] [--flag=-gcflags=all=-dwarf=false]` builds one entry of
`meshcharts.tools.builds()` from its wrapper module, each time with an empty Go build cache of its own (the module cache
is the machine's, so nothing is downloaded while timing), alternating: the toolchain's flags (`tools.go_build_argv`)
without `--flag`, then with it, whether or not `tools.GO_BUILD_FLAGS` has it today. It prints each build's wall time
and CPU seconds (rusage of the finished `go build` and everything it ran), each set's medians, and the ratio of the
medians (with / without). The binaries go to a temporary directory and are thrown away; the toolchain cache is not
touched.
"""

from __future__ import annotations

import argparse
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from meshcharts import tools


def timed_build(build: tools.Build, flag: str, with_flag: bool, scratch: Path) -> tuple[float, float]:
    """(wall s, cpu s) of one `go build` of `build` into `scratch` with an empty build cache there, with or without
    `flag`."""
    out = scratch / "bin"
    out.mkdir()
    argv = [a for a in tools.go_build_argv(tools._go(), build, out) if a != flag]
    if with_flag:
        argv.insert(2, flag)  # after `go build`
    env = dict(tools.go_build_env(), GOCACHE=str(scratch / "gocache"))
    module_dir = tools.package_data("toolchain") / build.module
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=module_dir, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{shlex.join(argv)} failed in {module_dir}:\n{done.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--build", default="helm3", help="a build's module directory name (the `module` of one of tools.builds())"
    )
    parser.add_argument("--runs", type=int, default=2, help="builds of each kind, alternating")
    parser.add_argument("--flag", default="-gcflags=all=-dwarf=false", help="the one `go build` flag compared")
    args = parser.parse_args()
    builds = [b for b in tools.builds() if b.module == args.build]
    if not builds:
        sys.exit(f"--build {args.build}: no such build; one of {', '.join(sorted(b.module for b in tools.builds()))}")
    figures: dict[str, list[tuple[float, float]]] = {"without": [], "with": []}
    for run in range(args.runs):
        for kind in figures:
            with tempfile.TemporaryDirectory(prefix="go-build-flags-") as tmp:
                wall, cpu = timed_build(builds[0], args.flag, kind == "with", Path(tmp))
            figures[kind].append((wall, cpu))
            print(f"run {run + 1} {kind:7} {args.flag}: {wall:.1f} s, {cpu:.1f} cpu-s")
    medians = {
        kind: (statistics.median(w for w, _ in f), statistics.median(c for _, c in f)) for kind, f in figures.items()
    }
    for kind, (wall, cpu) in medians.items():
        print(f"median {kind:7}: {wall:.1f} s, {cpu:.1f} cpu-s")
    print(
        f"ratio with / without: wall {medians['with'][0] / medians['without'][0]:.2f}, "
        f"cpu {medians['with'][1] / medians['without'][1]:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
