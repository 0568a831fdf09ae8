"""The upgrade matrix split across shards, run one after another here, merges into the unsharded run's report.

Real upgrade paths (base's from 1.12.1 in two upgrade modes) run on a local cluster of this test's own: once
unsharded, then in two shards (pytest-split `--splits 2 --group K`), each with its upgrade report and JUnit XML;
`meshcharts merge-results` merges the shards. The merged report must hold the same paths with the same results and
matrix cells, and the same test cases, and no path may run twice or never. A subset of the matrix
keeps the cost down (base's paths need no istiod, so no run installs a control plane first); which paths a shard
gets does not depend on them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from meshcharts import cluster as cluster_mod
from meshcharts import tools
from tests import REPO
from tests.shard_reports import report_of

# Two paths in two shards: the least that shows a split and a merge. Merging more shards is the same code
# (tests/unit/test_shards.py merges three shards of a made-up matrix); each path more costs a base path twice.
SELECTION = ["tests/upgrade/test_upgrade_paths.py", "-k", "test_upgrade_path and base-1.12.1-to and not reset"]
SPLITS = 2

pytestmark = [
    pytest.mark.local_only("runs the matrix three times in a local cluster of its own, with the local provider"),
    pytest.mark.any_kubernetes("how shards split and merge does not depend on the cluster; it runs on the default"),
    pytest.mark.slow,
]


def test_the_upgrade_matrix_in_shards_merges_into_the_unsharded_report(
    pytestconfig: pytest.Config, tmp_path: Path
) -> None:
    k8s_version = pytestconfig.getoption("--k8s-version")
    if k8s_version != tools.DEFAULT_KUBERNETES:
        pytest.skip(f"the sharded matrix runs once per .ci/test, on Kubernetes {tools.DEFAULT_KUBERNETES}")
    name = f"shards-{uuid.uuid4().hex[:8]}"
    cluster_mod.up(name, provider="local", k8s_version=k8s_version, timeout=180, owner=os.getpid())
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_XDIST")}
    common = [
        "-p", "no:cacheprovider", "-q", "--cluster-name", name,
        "--k8s-version", k8s_version, "--helm", pytestconfig.getoption("--helm"),
    ]  # fmt: skip

    def run(directory: Path, *extra: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", *common, *extra, "--upgrade-report", str(directory),
             "--junitxml", str(directory / "junit.xml"), *SELECTION],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=1200, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"{extra}: exit {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
        return done.stdout

    try:
        whole = tmp_path / "whole"
        run(whole)
        shards = []
        for group in range(1, SPLITS + 1):
            shard = tmp_path / f"shard-{group}"
            run(shard, "--splits", str(SPLITS), "--group", str(group))
            shards.append(shard)
    finally:
        cluster_mod.down(name, provider="local")

    merged = tmp_path / "merged"
    done = subprocess.run(
        [sys.executable, "-m", "meshcharts.cli", "merge-results", "--out", str(merged), *map(str, shards)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    paths, matrix, cases = report_of(whole)
    assert len(paths) == 2, paths
    each = [report_of(shard)[0] for shard in shards]
    assert all(each), f"a shard ran no path: {[len(p) for p in each]}"
    assert sorted(p for shard in each for p in shard) == paths, "a path ran twice or never"
    assert report_of(merged) == (paths, matrix, cases)
