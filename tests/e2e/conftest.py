"""e2e layer: every test here runs on the session cluster of the meshcharts plugin."""

from __future__ import annotations

import pytest
import yaml

from meshcharts import tools
from meshcharts.errors import ToolError

NEEDED = ("kwokctl", "kwok", "etcd", *tools.KUBERNETES_COMPONENTS, "helm", "helm3")
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


# --- shared installs -------------------------------------------------------------------------------

from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

from meshcharts.errors import HelmError  # noqa: E402
from meshcharts.helm import Helm  # noqa: E402
from meshcharts.testing import waits  # noqa: E402
from meshcharts.testing.admission import AdmissionRecorder, adopt_stale_webhooks, patch_ca_bundle  # noqa: E402
from meshcharts.testing.plugin import Kube  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CHARTS = REPO / "charts"
BASE_RELEASE = ("istio-base", "istio-system")
ISTIO_NS = "istio-system"


@pytest.fixture(scope="session")
def recorder(kube: Kube) -> Iterator[AdmissionRecorder]:
    """Stands in for istiod's webhook server: the charts' webhooks point at it through their URL values.

    On a kept cluster, webhooks of the earlier run's recorder are re-pointed at this one first: the
    shared releases' upgrade would otherwise be refused by their own stale validator.
    """
    with AdmissionRecorder() as rec:
        adopt_stale_webhooks(kube.api_client, rec)
        yield rec


def deployed(helm: Helm, release: str, namespace: str) -> bool:
    try:
        return "STATUS: deployed" in helm.run(["status", release, "--namespace", namespace])
    except HelmError:
        return False


def base_values(recorder: AdmissionRecorder) -> dict[str, object]:
    return {"base": {"validationURL": recorder.url("/validate/base")}}


def istiod_values(recorder: AdmissionRecorder, revision: str = "", **extra: object) -> dict[str, object]:
    rev = revision or "default"
    values: dict[str, object] = {
        "revision": revision,
        "istiodRemote": {"injectionURL": recorder.url(f"/inject/{rev}")},
        "base": {"validationURL": recorder.url(f"/validate/{rev}")},
    }
    values.update(extra)
    return values


def trust_recorder(kube: Kube, recorder: AdmissionRecorder, kind: str, name: str) -> None:
    """What istiod does once it serves: put its CA into the webhook configuration."""
    patch_ca_bundle(kube.api_client, kind, name, recorder)


@pytest.fixture(scope="session")
def current_installs() -> set[str]:
    """Shared releases installed or upgraded by this test run. On a kept cluster they exist from an earlier
    run with webhooks pointing at that run's recorder (another port, another CA): each is brought up to date
    once per run."""
    return set()


@pytest.fixture
def istio_base(
    mesh_helm: Helm, kube: Kube, recorder: AdmissionRecorder, tmp_path: Path, current_installs: set[str]
) -> tuple[str, str]:
    """The base chart from charts/ installed as istio-base in istio-system (installed once, shared)."""
    if BASE_RELEASE[0] not in current_installs or not deployed(mesh_helm, *BASE_RELEASE):
        values = tmp_path / "base-values.yaml"
        values.write_text(yaml.safe_dump(base_values(recorder)))
        mesh_helm.upgrade(
            BASE_RELEASE[0],
            CHARTS / "base",
            namespace=BASE_RELEASE[1],
            install=True,
            wait=True,
            timeout=120,
            values=[values],
            extra=("--create-namespace",),
        )
        trust_recorder(kube, recorder, "ValidatingWebhookConfiguration", "istiod-default-validator")
        current_installs.add(BASE_RELEASE[0])
    return BASE_RELEASE


@dataclass(frozen=True)
class ControlPlane:
    release: str
    namespace: str
    revision: str


@pytest.fixture
def control_plane(
    istio_base: tuple[str, str],
    mesh_helm: Helm,
    kube: Kube,
    recorder: AdmissionRecorder,
    tmp_path: Path,
    current_installs: set[str],
) -> ControlPlane:
    """istiod (default revision) from charts/ in istio-system, its webhooks answered by the recorder."""
    if "istiod" not in current_installs or not deployed(mesh_helm, "istiod", ISTIO_NS):
        values = tmp_path / "istiod-values.yaml"
        values.write_text(yaml.safe_dump(istiod_values(recorder)))
        mesh_helm.upgrade(
            "istiod", CHARTS / "istiod", namespace=ISTIO_NS, install=True, wait=True, timeout=120, values=[values]
        )
        trust_recorder(kube, recorder, "MutatingWebhookConfiguration", "istio-sidecar-injector")
        trust_recorder(kube, recorder, "ValidatingWebhookConfiguration", "istio-validator-istio-system")
        current_installs.add("istiod")
    waits.deployment_available(kube.apps, ISTIO_NS, "istiod", timeout=60)
    return ControlPlane("istiod", ISTIO_NS, "")
