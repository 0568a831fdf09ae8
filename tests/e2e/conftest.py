"""e2e layer: every test here runs on the session cluster of the meshcharts plugin."""

from __future__ import annotations

import pytest

from meshcharts import tools
from meshcharts.errors import ToolError

NEEDED = (*tools.LOCAL_CLUSTER_TOOLS, "helm", "helm3")
NEEDED_ELSEWHERE = ("helm", "helm3")
"""On kind or an existing cluster only Helm comes from the toolchain (--k8s-version is then a kind minor)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = []
    local = config.getoption("--cluster-provider") == "local"
    k8s_version = config.getoption("--k8s-version") if local else tools.DEFAULT_KUBERNETES
    for name in NEEDED if local else NEEDED_ELSEWHERE:
        try:
            tools.path(name, k8s_version=k8s_version)
        except ToolError:
            missing.append(name)
    for item in items:
        if "tests/e2e/" in str(item.fspath) or "tests/upgrade/" in str(item.fspath):
            item.add_marker(pytest.mark.cluster)
            if missing:
                item.add_marker(
                    pytest.mark.skip(
                        reason=f"requires the built toolchain ({', '.join(missing)}): run "
                        f"`meshcharts tools install --k8s-version {k8s_version}`"
                    )
                )


# Helpers the tests import from here; the fixtures themselves live in tests/cluster_fixtures.py.
from tests.cluster_fixtures import (  # noqa: E402
    BASE_RELEASE,
    CHARTS,
    ISTIO_NS,
    REPO,
    ControlPlane,
    deployed,
    run_istiod,
    stop_istiod,
)

__all__ = [
    "BASE_RELEASE",
    "CHARTS",
    "ISTIO_NS",
    "REPO",
    "ControlPlane",
    "deployed",
    "run_istiod",
    "stop_istiod",
]
