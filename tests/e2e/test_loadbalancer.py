"""LoadBalancer Services get an address on the local cluster (meshcharts/data/kwok's stage): `helm --wait` returns."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from meshcharts import cluster
from meshcharts.helm import Helm
from meshcharts.paths import Layout
from meshcharts.waits import wait_for
from tests.cluster_fixtures import ControlPlane

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

# Seconds a LoadBalancer Service may wait for its address: kwok applies the stage as soon as it sees the Service.
ADDRESS_DEADLINE = 5.0


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# Until the meshcharts plugin offers a session cluster, this module brings up its own local cluster.
@pytest.fixture(scope="module")
def local_cluster(mesh_cluster: cluster.Cluster) -> cluster.Cluster:
    """The plugin's session cluster; LoadBalancer addresses exist only on the local provider."""
    if mesh_cluster.provider != "local":
        pytest.skip(f"the kwok LoadBalancer stage is part of the local provider, not {mesh_cluster.provider}")
    return mesh_cluster


@pytest.fixture(scope="module")
def kube_api(local_cluster: cluster.Cluster) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(local_cluster.kubeconfig))
    yield api
    api.close()


@pytest.fixture
def namespace(kube_api: client.ApiClient) -> Iterator[str]:
    core = client.CoreV1Api(kube_api)
    name = _unique("lb")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def _service(name: str, kind: str) -> client.V1Service:
    return client.V1Service(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1ServiceSpec(
            type=kind,
            selector={"app": name},
            ports=[client.V1ServicePort(name="http2", port=80, target_port=8080)],
        ),
    )


def _ingress_ips(core: client.CoreV1Api, namespace: str, name: str) -> list[str]:
    status: Any = core.read_namespaced_service_status(name, namespace).status
    ingress = (status.load_balancer.ingress if status and status.load_balancer else None) or []
    return [i.ip for i in ingress]


def _address_of(core: client.CoreV1Api, namespace: str, name: str) -> str:
    wait_for(
        what=f"Service {namespace}/{name} has status.loadBalancer.ingress[0].ip",
        condition=lambda: bool(_ingress_ips(core, namespace, name)),
        timeout=ADDRESS_DEADLINE,
    )
    return _ingress_ips(core, namespace, name)[0]


def _expected_address(core: client.CoreV1Api, namespace: str, name: str) -> str:
    cluster_ip = core.read_namespaced_service(name, namespace).spec.cluster_ip
    _, _, third, fourth = cluster_ip.split(".")
    return f"127.1.{third}.{fourth}"


def test_a_loadbalancer_service_gets_a_loopback_address_derived_from_its_cluster_ip_within_seconds(
    kube_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_service(namespace, _service("gateway", "LoadBalancer"))
    address = _address_of(core, namespace, "gateway")
    assert address == _expected_address(core, namespace, "gateway")
    ingress = core.read_namespaced_service_status("gateway", namespace).status.load_balancer.ingress
    assert [(i.ip, i.ip_mode) for i in ingress] == [(address, "VIP")]


def test_two_loadbalancer_services_get_distinct_addresses(kube_api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_service(namespace, _service("ingress", "LoadBalancer"))
    core.create_namespaced_service(namespace, _service("eastwest", "LoadBalancer"))
    assert _address_of(core, namespace, "ingress") != _address_of(core, namespace, "eastwest")


def test_a_clusterip_service_gets_no_load_balancer_address(kube_api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_service(namespace, _service("internal", "ClusterIP"))
    # A LoadBalancer Service created after it getting its address shows kwok has seen both.
    core.create_namespaced_service(namespace, _service("witness", "LoadBalancer"))
    _address_of(core, namespace, "witness")
    assert _ingress_ips(core, namespace, "internal") == []


def test_updating_a_loadbalancer_service_keeps_its_address(kube_api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_service(namespace, _service("gateway", "LoadBalancer"))
    before = _address_of(core, namespace, "gateway")
    core.patch_namespaced_service(
        "gateway",
        namespace,
        {
            "metadata": {"labels": {"upgraded": "true"}, "annotations": {"example.com/revision": "2"}},
            "spec": {"ports": [{"name": "http2", "port": 80, "targetPort": 8081}, {"name": "https", "port": 443}]},
        },
    )
    core.create_namespaced_service(namespace, _service("witness", "LoadBalancer"))
    _address_of(core, namespace, "witness")
    assert _ingress_ips(core, namespace, "gateway") == [before]
    assert [p.port for p in core.read_namespaced_service("gateway", namespace).spec.ports] == [80, 443]


def test_kwok_default_stages_still_make_deployments_available_and_daemonset_pods_ready(
    kube_api: client.ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(kube_api)
    labels = {"app": "probe"}
    template = client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels=labels),
        spec=client.V1PodSpec(
            containers=[client.V1Container(name="probe", image="busybox:1.36")],
            tolerations=[client.V1Toleration(operator="Exists")],
        ),
    )
    selector = client.V1LabelSelector(match_labels=labels)
    apps.create_namespaced_deployment(
        namespace,
        client.V1Deployment(
            metadata=client.V1ObjectMeta(name="probe"),
            spec=client.V1DeploymentSpec(replicas=2, selector=selector, template=template),
        ),
    )
    apps.create_namespaced_daemon_set(
        namespace,
        client.V1DaemonSet(
            metadata=client.V1ObjectMeta(name="probe"),
            spec=client.V1DaemonSetSpec(selector=selector, template=template),
        ),
    )

    def deployment_available() -> bool:
        status = apps.read_namespaced_deployment_status("probe", namespace).status
        conditions = {c.type: c.status for c in status.conditions or []}
        return conditions.get("Available") == "True" and status.available_replicas == 2

    def daemonset_ready() -> bool:
        status = apps.read_namespaced_daemon_set_status("probe", namespace).status
        return status.desired_number_scheduled == cluster.DEFAULT_NODES == status.number_ready

    wait_for(what="Deployment probe Available with 2 replicas", condition=deployment_available, timeout=30)
    wait_for(what=f"DaemonSet probe Ready on {cluster.DEFAULT_NODES} nodes", condition=daemonset_ready, timeout=30)


# Helm 3's --wait and Helm 4's --wait=legacy wait for a LoadBalancer's address; Helm 4's default
# (kstatus) watcher counts a Service as ready at once, so it would pass without the stage.
WAITS = {"helm3 --wait": (3, ["--wait"]), "helm4 --wait=legacy": (4, ["--wait=legacy"])}


@pytest.mark.parametrize("wait", sorted(WAITS))
@pytest.mark.parametrize("kind", ["Deployment", "DaemonSet"])
def test_helm_install_wait_of_the_gateway_chart_returns_once_its_service_has_an_address(
    local_cluster: cluster.Cluster,
    kube_api: client.ApiClient,
    layout: Layout,
    tmp_path: Path,
    kind: str,
    wait: str,
    control_plane: ControlPlane,
) -> None:
    """The reason for the stage. The gateway's pods need the injector (their image is `auto`), so istiod is
    installed with a real istiod answering its webhooks; `--timeout 30s` bounds the wait."""
    major, wait_args = WAITS[wait]
    helm = Helm(
        major=major,
        kubeconfig=local_cluster.kubeconfig,
        env={**os.environ, **{f"HELM_{d}_HOME": str(tmp_path / d.lower()) for d in ("CACHE", "CONFIG", "DATA")}},
    )
    namespace = _unique("gw")
    helm.install(
        "ingress",
        layout.charts / "gateway",
        namespace=namespace,
        set_values={"kind": kind},
        extra=[*wait_args, "--timeout", "30s"],
        timeout=60,
    )
    core = client.CoreV1Api(kube_api)
    assert _ingress_ips(core, namespace, "ingress") == [_expected_address(core, namespace, "ingress")]
    helm.uninstall("ingress", namespace=namespace, wait=True, timeout=60)
    core.delete_namespace(namespace)
