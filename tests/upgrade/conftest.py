"""Upgrade layer: paths from the published versions in index.yaml to the working tree, on the session cluster."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from meshcharts import index, package, repo, spec, upgrade
from meshcharts.cluster import Cluster
from meshcharts.helm import Helm
from meshcharts.paths import Layout
from meshcharts.testing.plugin import Kube
from tests import REPO
from tests.cluster_fixtures import BASE_RELEASE
from tests.e2e.conftest import pytest_collection_modifyitems as _mark_cluster_tests
from tests.e2e.slate import uninstall_base_and_crds
from tests.upgrade.steps import RevisionIstiods


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every upgrade path runs under Helm 3 too: the whole layer is in the `helm3` selection. With
    `--matrix each-choice` only the paths `each_choice_items` keeps are selected."""
    _mark_cluster_tests(config, items)
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.helm3)
    if config.getoption("--matrix") == "each-choice":
        kept = each_choice_items(items)
        dropped = [item for item in items if item not in kept]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = [item for item in items if item in kept]


def path_choices(params: dict[str, object]) -> set[tuple[str, ...]] | None:
    """What an upgrade test's case chooses, or None for a test that is not an upgrade path: for its chart, the
    line and start version and the values scenario; across charts, the upgrade mode."""
    path = params.get("path")
    if not isinstance(path, upgrade.UpgradePath):
        return None
    chart = path.chart
    choices = {(chart, "line", path.line or ""), (chart, "from", path.from_version)}
    if "scenario" in params:
        choices.add((chart, "scenario", str(params["scenario"])))
    if "mode" in params:
        choices.add(("mode", str(params["mode"])))
    return choices


def each_choice_items(items: list[pytest.Item]) -> set[pytest.Item]:
    """The items a run with `--matrix each-choice` keeps: every test that is not an upgrade path, and of each
    upgrade test function's paths a subset in which each choice (`path_choices`) appears at least once
    (`upgrade.each_choice`). The full matrix is the default and what the sharded workflow runs in every cell."""
    groups: dict[tuple[str, str], list[tuple[pytest.Item, set[tuple[str, ...]]]]] = {}
    kept = set()
    for item in items:
        callspec = getattr(item, "callspec", None)
        choices = path_choices(callspec.params) if callspec is not None else None
        if choices is None:
            kept.add(item)
        else:
            groups.setdefault((str(item.path), item.originalname), []).append((item, choices))
    for cases in groups.values():
        kept.update(cases[i][0] for i in upgrade.each_choice([choices for _, choices in cases]))
    return kept


def current_versions(line: str | None = None) -> dict[str, str]:
    layout = Layout(REPO, line)
    return {d.name: str(package.load_metadata(d)["version"]) for d in repo.chart_dirs(layout)}


def base_line() -> str:
    """The base line's name (`1.12`): the minor of generator/specs/suite.yaml's version, whose tree is charts/."""
    version = str(yaml.safe_load((Layout(REPO).specs / "suite.yaml").read_text())["version"])
    return ".".join(version.split(".")[:2])


def release_lines() -> dict[str, dict[str, str]]:
    """Every release line the repository declares, name -> its working tree's charts (name -> version from the
    generated Chart.yaml, in spec.CHART_NAMES order): the base line (charts/) and each generator/lines/<line>/."""
    trees = {base_line(): current_versions(), **{line: current_versions(line) for line in Layout(REPO).lines()}}
    return {
        line: {chart: versions[chart] for chart in spec.CHART_NAMES if chart in versions}
        for line, versions in trees.items()
    }


def cross_minor_moves() -> list[upgrade.LineMove]:
    """The move into each release line from the line one minor below it: its paths from the published index,
    or why it has none (test_cross_minor.py runs the paths; the report shows the reasons)."""
    return upgrade.cross_minor(index.load(REPO / "index.yaml"), release_lines(), base_line=base_line())


def published_matrix() -> list[upgrade.UpgradePath]:
    """Each line's own published patches to its tree: 1.12.x to charts/, 1.13.x to lines/1.13/. The moves
    from one line to the next (1.12 to lines/1.13/) are test_cross_minor.py's (`cross_minor_moves`); nothing goes
    from 1.13 down to charts/."""
    published = index.load(REPO / "index.yaml")
    paths = upgrade.matrix(published, current_versions())
    for line in Layout(REPO).lines():
        paths += upgrade.matrix(published, current_versions(line), line=line, within_line=True)
    return paths


def target_tree(path: upgrade.UpgradePath) -> Path:
    """The working tree a path upgrades to: charts/<chart> or lines/<line>/<chart>."""
    return Layout(REPO, path.line).charts / path.chart


@contextlib.contextmanager
def recorded(
    results: list[upgrade.PathResult], path: upgrade.UpgradePath, scenario: str, mode: str, helm_major: int
) -> Iterator[None]:
    """Appends the path's PathResult for the report: passed if the block finished, failed otherwise, and its time."""
    start = time.monotonic()
    outcome = "failed"
    try:
        yield
        outcome = "passed"
    finally:
        results.append(
            upgrade.PathResult(
                path.chart,
                path.from_version,
                path.to_version,
                scenario,
                mode,
                f"helm{helm_major}",
                outcome,
                time.monotonic() - start,
            )
        )


@pytest.fixture
def base_slate(mesh_helm: Helm, kube: Kube) -> Iterator[None]:
    uninstall_base_and_crds(mesh_helm, kube)
    yield
    uninstall_base_and_crds(mesh_helm, kube)


@pytest.fixture
def canary_slate(mesh_helm: Helm, kube: Kube) -> Iterator[None]:
    uninstall_base_and_crds(mesh_helm, kube)
    yield
    for release in ("istiod-a", "istiod-b"):
        mesh_helm.run(["uninstall", release, "--namespace", BASE_RELEASE[1], "--ignore-not-found", "--wait"])
    uninstall_base_and_crds(mesh_helm, kube)


@pytest.fixture
def revision_istiods(mesh_cluster: Cluster, kube: Kube, request: pytest.FixtureRequest) -> Iterator[RevisionIstiods]:
    """Real istiods for the revisions a test installs in istio-system, stopped when it ends."""
    if not mesh_cluster.capabilities.simulated_pods:
        request.getfixturevalue("mesh_real_pods")
    istiods = RevisionIstiods(mesh_cluster, kube)
    yield istiods
    istiods.stop()
