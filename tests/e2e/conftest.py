"""e2e layer: every test here runs on the session cluster of the meshcharts plugin."""

from __future__ import annotations

import pytest

from meshcharts import tools
from meshcharts.cluster import get_provider
from meshcharts.errors import ToolError

HELMS = ("helm", "helm3")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Cluster tests skip, naming what to build, when the toolchain lacks what the provider's clusters need
    (the provider says: the local one its Kubernetes binaries, kwok and pilot-discovery) or a Helm."""
    missing = []
    provider = get_provider(config.getoption("--cluster-provider"))
    # A --k8s-version picks a toolchain release only where the cluster runs from the toolchain (kind: a minor).
    own_binaries = any(name in tools.KUBERNETES_COMPONENTS for name in provider.needs)
    k8s_version = config.getoption("--k8s-version") if own_binaries else tools.DEFAULT_KUBERNETES
    for name in (*provider.needs, *HELMS):
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
