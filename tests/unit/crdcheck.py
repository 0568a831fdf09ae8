"""ci/crdcheck, the API server's own CRD and object validation (k8s.io/apiextensions-apiserver) without a cluster,
objects checked as on create (schema, list maps, the CRDs' CEL rules within the API server's cost budgets):
built once per session (the `crdcheck` fixture of tests/unit/conftest.py), then fed CRDs and objects."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from meshcharts import tools
from tests import REPO as ROOT

OFFLINE_MARKERS = ("module lookup disabled", "dial tcp", "no such host", "connection refused")


def build(directory: Path) -> Path:
    """ci/crdcheck built into `directory`; skips the test without the go toolchain or, offline, its modules."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("requires the go toolchain on PATH to build ci/crdcheck")
    binary = directory / "crdcheck"
    # The toolchain's flags and environment: Go's build cache then holds the k8s.io packages compiled for
    # kubernetes-v1.36.3 (the same module versions), and a cold run does not compile them twice.
    argv = [go, "build", *tools.GO_BUILD_FLAGS, "-o", str(binary), "."]
    result = subprocess.run(
        argv, cwd=ROOT / "ci" / "crdcheck", env=tools.go_build_env(), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        if any(marker in result.stderr for marker in OFFLINE_MARKERS):
            pytest.skip(f"requires the k8s.io modules of ci/crdcheck/go.mod (offline, not cached):\n{result.stderr}")
        pytest.fail(f"{' '.join(argv)} failed:\n{result.stderr}")
    return binary


def check(binary: Path, crds: list[dict[str, Any]], objects: list[dict[str, Any]]) -> dict[str, Any]:
    """crdcheck's report: {"crds": {name: [errors]}, "objects": [{apiVersion, kind, name, errors, paths, pruned}]},
    paths[i] being the field path of errors[i] as the API server reports it ("" for the whole object)."""
    payload = json.dumps({"crds": crds, "objects": objects})
    result = subprocess.run([str(binary)], input=payload, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report
