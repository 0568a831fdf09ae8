"""e2e layer: every test here runs on the session cluster of the meshcharts plugin."""

from __future__ import annotations

import pytest

from meshcharts import tools
from meshcharts.errors import ToolError

NEEDED = ("kwokctl", "kwok", "etcd", *tools.KUBERNETES_COMPONENTS, "helm", "helm3")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    missing = []
    for name in NEEDED:
        try:
            tools.path(name)
        except ToolError:
            missing.append(name)
    for item in items:
        if "tests/e2e/" in str(item.fspath) or "tests/upgrade/" in str(item.fspath):
            item.add_marker(pytest.mark.cluster)
            if missing:
                item.add_marker(
                    pytest.mark.skip(
                        reason=f"requires the built toolchain ({', '.join(missing)}): run `meshcharts tools install`"
                    )
                )


# --- shared installs -------------------------------------------------------------------------------

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

from meshcharts.errors import HelmError  # noqa: E402
from meshcharts.helm import Helm  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CHARTS = REPO / "charts"
BASE_RELEASE = ("istio-base", "istio-system")


def base_installed(helm: Helm) -> bool:
    try:
        return "STATUS: deployed" in helm.run(["status", BASE_RELEASE[0], "--namespace", BASE_RELEASE[1]])
    except HelmError:
        return False


@pytest.fixture
def istio_base(mesh_helm: Helm) -> Iterator[tuple[str, str]]:
    """The base chart from charts/ installed as istio-base in istio-system (installed once, shared)."""
    if not base_installed(mesh_helm):
        mesh_helm.upgrade(
            BASE_RELEASE[0],
            CHARTS / "base",
            namespace=BASE_RELEASE[1],
            install=True,
            wait=True,
            timeout=120,
            extra=("--create-namespace",),
        )
    yield BASE_RELEASE
