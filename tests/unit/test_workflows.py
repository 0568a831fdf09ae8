"""The GitHub workflows users copy: checked by the real actionlint, and for what they promise to run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcharts import tools
from meshcharts.errors import ToolError
from tests import REPO

WORKFLOWS = REPO / "ci" / "github" / "workflows"
NAMES = ("lint.yml", "test.yml", "release.yml")


def _actionlint() -> Path:
    try:
        return tools.path("actionlint")
    except ToolError as err:
        pytest.skip(f"requires actionlint v1.7.12 ({err})")


def _load(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(loaded, dict)
    return loaded


def _run_steps(workflow: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for job in workflow["jobs"].values() for step in job["steps"])


def test_workflows_pass_actionlint() -> None:
    actionlint = _actionlint()
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert [Path(f).name for f in files] == sorted(NAMES)
    done = subprocess.run(
        [str(actionlint), "-verbose", *files], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    print(f"$ actionlint -verbose {' '.join(Path(f).name for f in files)}  (exit {done.returncode})")
    print(done.stdout + done.stderr)
    assert done.returncode == 0, done.stdout + done.stderr
    if shutil.which("shellcheck") is None:
        print("note: shellcheck is not on PATH, so actionlint did not check the run: scripts")


def test_actionlint_rejects_a_broken_workflow(tmp_path: Path) -> None:
    """The check above can fail: an unknown runner label and an undefined matrix key are reported."""
    actionlint = _actionlint()
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-nonexistent\n    steps:\n      - run: echo ${{ matrix.helm }}\n"
    )
    done = subprocess.run(
        [str(actionlint), str(broken)], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "matrix" in done.stdout


def test_test_workflow_runs_pytest_on_kind_for_three_minors_from_1_30_to_1_36_and_both_helm_majors() -> None:
    workflow = _load("test.yml")
    matrix = workflow["jobs"]["kind"]["strategy"]["matrix"]
    minors = [tuple(int(x) for x in m.split(".")) for m in matrix["kubernetes"]]
    assert len(set(minors)) == 3
    assert min(minors) == (1, 30) and max(minors) == (1, 36)
    assert sorted(matrix["helm"]) == ["3", "4"]
    images = yaml.safe_load((REPO / "generator" / "meshcharts" / "data" / "kind" / "node-images.yaml").read_text())
    assert set(matrix["kubernetes"]) <= set(images), "every matrix minor needs a kindest/node image"
    runs = _run_steps(workflow)
    assert "python -m pytest" in runs
    assert "--cluster-provider kind" in runs
    assert '--helm "${{ matrix.helm }}"' in runs
    assert '--k8s-version "${{ matrix.kubernetes }}"' in runs
    assert "cloud-provider-kind" in runs
    # Everything the suite needs is installed, and a test skipped for anything missing fails the job.
    assert "bash .ci/setup" in runs
    assert "--allowed-skips ci/allowed-skips.yaml" in runs
    assert "--junitxml" in runs
    # Each cell is split into shards (pytest-split) and merged in a job of its own into one report per cell.
    assert matrix["shard"] == [1, 2, 3] and '--splits 3 --group "${{ matrix.shard }}"' in runs
    merge = workflow["jobs"]["merge"]
    assert merge["needs"] == "kind" and merge["strategy"]["matrix"]["kubernetes"] == matrix["kubernetes"]
    assert "meshcharts merge-results --out" in _run_steps({"jobs": {"merge": merge}})


def test_lint_workflow_runs_every_check_it_names() -> None:
    runs = _run_steps(_load("lint.yml"))
    for command in (
        "meshcharts generate --check",
        "meshcharts lint",
        '"$ct" lint --config ci/ct.yaml',
        "ah lint --kind helm --path charts",
        "yamllint --strict --config-file ci/yamllint.yaml",
    ):
        assert command in runs, command


def test_release_workflow_packages_signs_indexes_and_publishes_to_pages_and_oci() -> None:
    workflow = _load("release.yml")
    runs = _run_steps(workflow)
    for command in ("meshcharts release", "meshcharts index --verify", 'meshcharts push "oci://', "registry login"):
        assert command in runs, command
    assert "meshcharts tools install helm cosign" in runs
    assert '"$cosign" login ghcr.io' in runs
    push = next(line for line in runs.splitlines() if "meshcharts push" in line)
    assert push.rstrip().endswith("--keyless"), "the OCI charts are signed keyless with the workflow's OIDC token"
    uses = [step.get("uses", "") for step in workflow["jobs"]["release"]["steps"]]
    assert any(u.startswith("actions/upload-pages-artifact@") for u in uses)
    assert any(u.startswith("actions/deploy-pages@") for u in uses)
    assert {"pages", "id-token", "packages"} <= set(workflow["permissions"])
