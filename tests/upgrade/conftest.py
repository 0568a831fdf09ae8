"""Upgrade layer: paths from the published versions in index.yaml to the working tree, on the session cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meshcharts import index, package, repo, upgrade
from meshcharts.paths import Layout
from tests.e2e.conftest import pytest_collection_modifyitems as _mark_cluster_tests

REPO = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every upgrade path runs under Helm 3 too: the whole layer is in the `helm3` selection."""
    _mark_cluster_tests(config, items)
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.helm3)


def current_versions() -> dict[str, str]:
    layout = Layout(REPO)
    return {d.name: str(package.load_metadata(d)["version"]) for d in repo.chart_dirs(layout)}


def published_matrix() -> list[upgrade.UpgradePath]:
    return upgrade.matrix(index.load(REPO / "index.yaml"), current_versions())


@pytest.fixture(scope="session")
def chart_repo() -> Iterator[str]:
    """The repository served over HTTP on loopback, as `helm repo add` users see it."""
    server = repo.serve(REPO, port=0, background=True)
    try:
        yield server.url
    finally:
        server.stop()
