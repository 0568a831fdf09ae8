"""Benchmark: adding one chart version to a repository of 10,000, meshcharts index vs helm repo index --merge.

Both run as processes on the same files: a directory of N archives already listed in index.yaml plus
one new archive. Wall time and peak RSS (from wait4) of each, and their ratio, from one run. Also times
packaging and indexing the suite's three charts into an empty repository (target: under 1 s).
Targets (issue 6): meshcharts at least 2x faster; the three charts under 1 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from meshcharts import index, package, tools

ROOT = Path(__file__).resolve().parents[1]
MERGE = (
    "import sys; from pathlib import Path; from meshcharts import index; r = Path(sys.argv[1]); "
    "index.merge(r, sorted((r / 'packages').glob('*.tgz')))"
)


def run(argv: list[str], cwd: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS in KiB of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv[0]} failed: {stderr}")
    return elapsed, usage.ru_maxrss


def synthetic_repo(root: Path, count: int) -> Path:
    """`count` archives of a small chart (versions 0.0.1 ...) and an index listing them."""
    chart = root / "src" / "demo"
    (chart / "templates").mkdir(parents=True)
    (chart / "values.yaml").write_text("replicas: 1\n")
    (chart / "templates" / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: demo}\n")
    packages = root / "packages"
    packages.mkdir()
    for i in range(count):
        version = f"{i // 10000}.{(i // 100) % 100}.{i % 100}"
        (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: demo\nversion: {version}\n")
        (packages / f"demo-{version}.tgz").write_bytes(package.archive_bytes(chart))
    index.merge(root, sorted(packages.glob("*.tgz")))
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: demo\nversion: 9.0.0\n")
    (packages / "demo-9.0.0.tgz").write_bytes(package.archive_bytes(chart))
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--versions", type=int, default=10_000)
    args = parser.parse_args()
    helm = str(tools.path("helm"))
    with tempfile.TemporaryDirectory(prefix="meshcharts-bench-") as tmp:
        start = time.perf_counter()
        base = synthetic_repo(Path(tmp) / "base", args.versions)
        print(f"synthetic repository: {args.versions} versions + 1 new ({time.perf_counter() - start:.1f} s to build)")
        ours_root = Path(tmp) / "ours"
        helm_root = Path(tmp) / "helm"
        shutil.copytree(base, ours_root)
        shutil.copytree(base, helm_root)
        ours_t, ours_rss = run([sys.executable, "-c", MERGE, str(ours_root)], ROOT)
        helm_t, helm_rss = run(
            [helm, "repo", "index", str(helm_root / "packages"), "--merge", str(helm_root / "index.yaml")], helm_root
        )
        print(f"meshcharts index:              {ours_t:7.2f} s  peak RSS {ours_rss / 1024:7.1f} MiB")
        print(f"helm repo index --merge (v4):  {helm_t:7.2f} s  peak RSS {helm_rss / 1024:7.1f} MiB")
        print(
            f"speed-up {helm_t / ours_t:.1f}x (target >= 2x: {'meets' if helm_t / ours_t >= 2 else 'MISSES'}); "
            f"memory ratio {helm_rss / ours_rss:.1f}x"
        )

        suite = Path(tmp) / "suite"
        shutil.copytree(ROOT / "charts", suite / "charts")
        (suite / "packages").mkdir()
        start = time.perf_counter()
        for chart in sorted((suite / "charts").glob("*/Chart.yaml")):
            package.package(chart.parent, suite / "packages")
        index.merge(suite, sorted((suite / "packages").glob("*.tgz")))
        took = time.perf_counter() - start
        print(f"package + index the three charts: {took:.2f} s (target < 1 s: {'meets' if took < 1 else 'MISSES'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
