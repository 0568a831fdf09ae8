"""The gateway chart on a real API server, injected by a real istiod: Deployment and DaemonSet become ready, the
Service gets its address and ports, HPA and PDB are accepted, and the restricted Pod Security Standard admits
the injected pods.

Each gateway is installed for revision `real` (tests/cluster_fixtures.py `real_istiod`: the chart's istiod, run
on the host on the local provider, its own pod elsewhere), so istiod's injector for that revision answers."""

from __future__ import annotations

from typing import Any

import pytest

from meshcharts import waits
from meshcharts.testing.plugin import Kube
from meshcharts.testing.releases import ReleaseFactory
from tests.cluster_fixtures import RealIstiod
from tests.e2e.conftest import CHARTS

# The Helm 3 subset of the e2e layer (`.ci/test` runs it with `--helm 3 -m helm3`).
pytestmark = pytest.mark.helm3

GATEWAY = CHARTS / "gateway"
PROXY = "docker.io/istio/proxyv2:1.12.2"


def values(istiod: RealIstiod, **more: Any) -> dict[str, Any]:
    return {"revision": istiod.revision, **more}


def assert_injected_by(istiod: RealIstiod, kube: Kube, namespace: str, release: str) -> None:
    """Every pod of the release carries istiod's injection of that revision: its proxy image, its status."""
    pods = kube.core.list_namespaced_pod(namespace, label_selector=f"app={release}").items
    assert pods, f"no pod of {release}"
    for pod in pods:
        assert {c.name: c.image for c in pod.spec.containers} == {"istio-proxy": PROXY}, pod.metadata.name
        status = (pod.metadata.annotations or {}).get("sidecar.istio.io/status", "")
        assert f'"revision":"{istiod.revision}"' in status, (pod.metadata.name, status)


def test_deployment_gateway_becomes_available_injected_by_istiod_with_its_service_address(
    real_istiod: RealIstiod, releases: ReleaseFactory, kube: Kube, mesh_namespace: str
) -> None:
    releases.install("istio-ingressgateway", GATEWAY, values=values(real_istiod, podDisruptionBudget={"enabled": True}))
    deployment = waits.deployment_available(kube.apps, mesh_namespace, "istio-ingressgateway")
    assert deployment.spec.selector.match_labels == {"app": "istio-ingressgateway", "istio": "ingressgateway"}
    assert_injected_by(real_istiod, kube, mesh_namespace, "istio-ingressgateway")
    address = waits.service_address(kube.core, mesh_namespace, "istio-ingressgateway")
    service = kube.core.read_namespaced_service("istio-ingressgateway", mesh_namespace)
    assert address and [(p.name, p.port) for p in service.spec.ports] == [
        ("status-port", 15021),
        ("http2", 80),
        ("https", 443),
    ]
    hpa = kube.autoscaling.read_namespaced_horizontal_pod_autoscaler("istio-ingressgateway", mesh_namespace)
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (1, 5)
    pdb = kube.policy.read_namespaced_pod_disruption_budget("istio-ingressgateway", mesh_namespace)
    assert pdb.spec.min_available == 1


def test_daemonset_gateway_runs_a_ready_pod_per_node(
    real_istiod: RealIstiod, releases: ReleaseFactory, kube: Kube, mesh_namespace: str
) -> None:
    releases.install("edge", GATEWAY, values=values(real_istiod, kind="DaemonSet", service={"type": "ClusterIP"}))
    daemonset = waits.daemonset_ready(kube.apps, mesh_namespace, "edge")
    assert daemonset.status.number_ready == len(kube.core.list_node().items) == 2
    assert_injected_by(real_istiod, kube, mesh_namespace, "edge")


@pytest.mark.namespace_labels({"pod-security.kubernetes.io/enforce": "restricted"})
def test_gateway_pods_pass_the_restricted_pod_security_standard(
    real_istiod: RealIstiod, releases: ReleaseFactory, kube: Kube, mesh_namespace: str
) -> None:
    """Pod Security admission sees the pod after istiod's injection: the injected proxy must pass too."""
    releases.install("secure", GATEWAY, values=values(real_istiod, service={"type": "ClusterIP"}))
    waits.deployment_available(kube.apps, mesh_namespace, "secure")
    assert_injected_by(real_istiod, kube, mesh_namespace, "secure")


@pytest.mark.namespace_labels({"pod-security.kubernetes.io/enforce": "restricted"})
def test_the_restricted_standard_really_is_enforced_here(
    real_istiod: RealIstiod, releases: ReleaseFactory, kube: Kube, mesh_namespace: str
) -> None:
    """The control for the test above: a privileged container security context is refused."""
    releases.install(
        "loose",
        GATEWAY,
        values=values(real_istiod, service={"type": "ClusterIP"}, containerSecurityContext={"privileged": True}),
        wait=False,
    )
    waits.wait_until(
        lambda: any("forbidden" in (e.message or "") for e in kube.core.list_namespaced_event(mesh_namespace).items),
        condition="a FailedCreate event naming the violated standard",
        timeout=30,
    )
    assert kube.apps.read_namespaced_deployment("loose", mesh_namespace).status.ready_replicas is None


def test_in_place_upgrade_keeps_the_service_address_cluster_ip_and_node_ports(
    real_istiod: RealIstiod, releases: ReleaseFactory, kube: Kube, mesh_namespace: str
) -> None:
    releases.install("istio-ingressgateway", GATEWAY, values=values(real_istiod))
    address = waits.service_address(kube.core, mesh_namespace, "istio-ingressgateway")
    before = kube.core.read_namespaced_service("istio-ingressgateway", mesh_namespace)
    releases.upgrade(
        "istio-ingressgateway",
        GATEWAY,
        values=values(real_istiod, service={"annotations": {"lb": "internal"}}, autoscaling={"maxReplicas": 7}),
    )
    after = kube.core.read_namespaced_service("istio-ingressgateway", mesh_namespace)
    assert after.metadata.annotations["lb"] == "internal"
    assert after.spec.cluster_ip == before.spec.cluster_ip
    assert [p.node_port for p in after.spec.ports] == [p.node_port for p in before.spec.ports]
    assert waits.service_address(kube.core, mesh_namespace, "istio-ingressgateway") == address
