"""The linters the Helm ecosystem trusts, run from their real code on charts/ and every release line's
lines/<line>/: ct lint and ah lint."""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

from meshcharts import tools
from meshcharts.errors import ToolError
from tests import REPO

CHARTS = ("base", "gateway", "istiod")
AH_MISSING = (
    "requires ah (artifacthub/hub cmd/ah) on PATH: the Go module proxy refuses github.com/artifacthub/hub "
    "(403 for its version list and v1.20.0-v1.22.0), so the toolchain cannot build it here"
)


def _tool(name: str) -> Path:
    try:
        return tools.path(name)
    except ToolError as err:
        pytest.skip(f"requires {name} ({err})")


def _ct_env(tmp_path: Path) -> dict[str, str]:
    """ct calls helm, yamllint and yamale from PATH: the pinned Helm 4 first, then this Python's scripts."""
    scripts = sysconfig.get_path("scripts")
    path = os.pathsep.join([str(_tool("helm").parent), scripts, os.environ.get("PATH", "")])
    for needed in ("yamllint", "yamale"):
        if shutil.which(needed, path=path) is None:
            pytest.skip(f"requires {needed} from PyPI (pip install {needed}); ct lint runs it")
    return {
        **os.environ,
        "PATH": path,
        "HELM_CACHE_HOME": str(tmp_path / "helm-cache"),
        "HELM_CONFIG_HOME": str(tmp_path / "helm-config"),
        "HELM_DATA_HOME": str(tmp_path / "helm-data"),
    }


def _ct_lint(root: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    ct = _tool("ct")
    schema = tools.data_path("ct", "chart_schema.yaml")
    argv = [str(ct), "lint", "--config", "ci/ct.yaml", "--chart-yaml-schema", str(schema)]
    done = subprocess.run(
        argv, cwd=root, env=_ct_env(tmp_path), capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL
    )
    print(f"$ {' '.join(argv)}  (in {root}, exit {done.returncode})")
    print(done.stdout)
    print(done.stderr)
    return done


def _trees() -> list[str]:
    """charts and lines/<line> for every release line: what ships, so what the outside linters must read."""
    from meshcharts.paths import Layout

    return [layout.charts_label.rstrip("/") for layout in Layout(REPO).every_line()]


def _version(tree: str, chart: str = "base") -> str:
    import yaml

    return str(yaml.safe_load((REPO / tree / chart / "Chart.yaml").read_text())["version"])


def test_ct_lint_config_names_every_release_lines_tree() -> None:
    import yaml

    config = yaml.safe_load((REPO / "ci" / "ct.yaml").read_text())
    assert config["chart-dirs"] == _trees(), "add the new line's lines/<line> to chart-dirs in ci/ct.yaml"


def test_ct_lint_passes_on_every_chart(tmp_path: Path) -> None:
    done = _ct_lint(REPO, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "All charts linted successfully" in done.stdout
    for tree in _trees():
        for chart in CHARTS:
            version = _version(tree, chart)
            assert f'✔︎ {chart} => (version: "{version}", path: "{tree}/{chart}")' in done.stdout, (tree, chart)
    assert "Version increment checking disabled." in done.stderr


def test_ct_lint_fails_a_chart_whose_chart_yaml_breaks_its_schema(tmp_path: Path) -> None:
    """The test above can fail: the same config on a copy where one Chart.yaml, of the 1.13 line's tree, is one
    ct's schema refuses; the line's tree is linted like charts/."""
    root = tmp_path / "tree"
    for tree in _trees():
        shutil.copytree(REPO / tree / "base", root / tree / "base")
    shutil.copytree(REPO / "ci", root / "ci", ignore=shutil.ignore_patterns("toolchain", "crdcheck"))
    chart_yaml = root / "lines" / "1.13" / "base" / "Chart.yaml"
    chart_yaml.write_text(chart_yaml.read_text().replace("apiVersion: v2", "apiVersion: v9", 1))
    done = _ct_lint(root, tmp_path)
    assert done.returncode != 0
    assert f' ✔︎ base => (version: "{_version("charts")}", path: "charts/base")' in done.stdout
    # ct's verdict names the chart and the step that failed: the `helm lint` it ran for that chart exited 1.
    failed = f' ✖︎ base => (version: "{_version("lines/1.13")}", path: "lines/1.13/base")'
    assert f"{failed} > failed waiting for process: exit status 1" in done.stdout
    # Helm's reason is not reliably in ct's output: ct v3.14.0 (pkg/exec RunProcess) copies the child's output
    # from a goroutine while it calls cmd.Wait, which closes the pipes once the child exits, so lines that
    # goroutine has not read yet are lost at random. The reason comes from the same `helm lint` ct ran.
    env = _ct_env(tmp_path)
    lint = subprocess.run(
        [str(_tool("helm")), "lint", "lines/1.13/base"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    assert lint.returncode != 0
    assert "apiVersion 'v9' is not valid" in lint.stdout + lint.stderr


def test_ah_lint_passes_on_the_repository_layout() -> None:
    ah = shutil.which("ah")
    if ah is None:
        pytest.skip(AH_MISSING)
    for tree in _trees():
        argv = [ah, "lint", "--kind", "helm", "--path", tree]
        done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        print(f"$ {' '.join(argv)}  (exit {done.returncode})")
        print(done.stdout + done.stderr)
        assert done.returncode == 0, done.stdout + done.stderr
        for chart in CHARTS:
            assert chart in done.stdout


def test_yamllint_passes_on_ci_inputs_workflows_and_chart_metadata() -> None:
    """The lint workflow's yamllint step, run here the same way."""
    yamllint = shutil.which("yamllint", path=os.pathsep.join([sysconfig.get_path("scripts"), os.environ["PATH"]]))
    if yamllint is None:
        pytest.skip("requires yamllint from PyPI (pip install yamllint)")
    targets = ["ci/ct.yaml", "ci/yamllint.yaml", "generator/meshcharts/data/kind", "ci/github", "artifacthub-repo.yml"]
    targets += [f"{tree}/{chart}/Chart.yaml" for tree in _trees() for chart in CHARTS]
    argv = [yamllint, "--strict", "--config-file", "ci/yamllint.yaml", *targets]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
