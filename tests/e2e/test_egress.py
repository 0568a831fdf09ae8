"""The local cluster sends nothing beyond loopback: its API server dials Services only through the egress proxy.

A Service's ClusterIP (10.0.0.0/24 here) routes off this machine through the default route, and nothing
of ours is there. The proxy refuses such a dial at once, naming the Service, unless the harness routed
that Service to a server on loopback; so the charts install at default values (Service webhooks, as
users install them) and a real istiod on loopback answers them through the chart's Service.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from meshcharts import cluster, controlplane
from meshcharts.cluster.local import Local
from meshcharts.cluster.local.egress import Egress
from meshcharts.helm import Helm
from meshcharts.testing.plugin import Kube, kube_for
from meshcharts.waits import wait_for
from tests.e2e.conftest import CHARTS, ISTIO_NS

pytestmark = pytest.mark.local_only("the egress proxy is how the local provider confines its API server")


def service_webhook(name: str, namespace: str, service: str, *, failure_policy: str) -> dict[str, Any]:
    """A ValidatingWebhookConfiguration calling `service` for ConfigMaps created in `namespace` only."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "offsite.meshcharts.test",
                "clientConfig": {
                    "service": {"namespace": namespace, "name": service, "path": "/validate", "port": 443}
                },
                "rules": [
                    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"]}
                ],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "failurePolicy": failure_policy,
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 10,
            }
        ],
    }


def make_configmap(kube: Kube, namespace: str) -> str:
    name = f"cm-{uuid.uuid4().hex[:6]}"
    kube.core.create_namespaced_config_map(namespace, {"metadata": {"name": name}, "data": {"k": "v"}})
    return name


def routes_off_this_machine(ip: str) -> bool:
    """What the host's routing table does with `ip` (asked of the kernel; no packet is sent)."""
    done = subprocess.run(["ip", "-j", "route", "get", ip], capture_output=True, text=True, check=True)
    return str(json.loads(done.stdout)[0].get("dev")) != "lo"


@pytest.fixture
def offsite_service(kube: Kube, mesh_namespace: str) -> Iterator[tuple[str, str]]:
    """A Service with no pods behind it: its ClusterIP leads nowhere of ours."""
    kube.core.create_namespaced_service(
        mesh_namespace,
        {"metadata": {"name": "offsite"}, "spec": {"ports": [{"port": 443, "targetPort": 8443}]}},
    )
    ip = kube.core.read_namespaced_service("offsite", mesh_namespace).spec.cluster_ip
    webhook = f"offsite-{mesh_namespace}"
    kube.admission.create_validating_webhook_configuration(
        service_webhook(webhook, mesh_namespace, "offsite", failure_policy="Fail")
    )
    try:
        yield webhook, ip
    finally:
        with contextlib.suppress(ApiException):
            kube.admission.delete_validating_webhook_configuration(webhook)


def test_a_service_webhook_whose_cluster_ip_routes_off_the_machine_fails_locally_naming_the_service(
    kube: Kube, mesh_namespace: str, mesh_egress: Egress, offsite_service: tuple[str, str]
) -> None:
    webhook, ip = offsite_service
    if shutil.which("ip"):
        assert routes_off_this_machine(ip), f"{ip} routes to loopback here; the scenario needs an off-machine route"

    with pytest.raises(ApiException) as refused:
        make_configmap(kube, mesh_namespace)
    message = json.loads(refused.value.body)["message"]
    assert 'failed calling webhook "offsite.meshcharts.test"' in message
    assert f"proxy error from {mesh_egress.socket} while dialing {ip}:443, code 503" in message
    assert f"Service {mesh_namespace}/offsite port 443 (ClusterIP {ip}) has no backend on this machine" in message
    refusals = [d for d in mesh_egress.decisions() if d["verdict"] == "refused" and d["target"] == f"{ip}:443"]
    assert refusals and refusals[-1]["service"] == f"{mesh_namespace}/offsite"
    assert not [d for d in mesh_egress.decisions() if d["verdict"] == "connected" and d["target"] == f"{ip}:443"]

    # failurePolicy Ignore: the same refusal, and the object is admitted. The API server reads webhook
    # configurations through an informer, so it applies the patch a moment later (under load, seconds later):
    # until then a create still fails closed, with the same refusal.
    kube.admission.patch_validating_webhook_configuration(
        webhook, [{"op": "replace", "path": "/webhooks/0/failurePolicy", "value": "Ignore"}]
    )
    still_closed: list[str] = []

    def admitted() -> str | None:
        try:
            return make_configmap(kube, mesh_namespace)
        except ApiException as err:
            # The body is JSON: the webhook's name sits in it with its quotes escaped, so read the message.
            message = json.loads(err.body).get("message", "") if err.status == 500 and err.body else ""
            if 'failed calling webhook "offsite.meshcharts.test"' not in message:
                raise
            still_closed.append(message)
            return None

    name = wait_for(admitted, what="the API server to apply failurePolicy Ignore", timeout=60, interval=0.5)
    assert kube.core.read_namespaced_config_map(name, mesh_namespace).data == {"k": "v"}
    assert all("has no backend on this machine" in m for m in still_closed), still_closed


class OutputCounter:
    """Counts this host's outgoing IPv4 packets per destination with a table of its own in nftables.

    Deleting the table removes every rule it added; the host's other rules are never touched.
    """

    def __init__(self, destinations: dict[str, str]) -> None:
        self.table = f"meshcharts_probe_{uuid.uuid4().hex[:8]}"
        self.destinations = destinations

    def __enter__(self) -> OutputCounter:
        nft = shutil.which("nft")
        if nft is None:
            pytest.skip("requires nft (Debian's nftables) to count outgoing packets")
        self.nft = nft
        chain = "{ type filter hook output priority 0; policy accept; }"
        commands = [["add", "table", "inet", self.table], ["add", "chain", "inet", self.table, "out", chain]]
        for match in self.destinations.values():
            commands.append(["add", "rule", "inet", self.table, "out", *match.split(), "counter"])
        for argv in commands:
            done = subprocess.run([nft, *argv], capture_output=True, text=True)
            if done.returncode != 0:
                self.__exit__()
                pytest.skip(f"requires CAP_NET_ADMIN to count packets with nft: `nft {' '.join(argv)}`: {done.stderr}")
        return self

    def packets(self) -> dict[str, int]:
        listing = json.loads(
            subprocess.run(
                [self.nft, "-j", "list", "table", "inet", self.table], capture_output=True, text=True, check=True
            ).stdout
        )
        counts = [
            next(e["counter"]["packets"] for e in item["rule"]["expr"] if "counter" in e)
            for item in listing["nftables"]
            if "rule" in item
        ]
        return dict(zip(self.destinations, counts, strict=True))

    def __exit__(self, *_: object) -> None:
        subprocess.run([self.nft, "delete", "table", "inet", self.table], capture_output=True)


def test_no_packet_leaves_for_the_cluster_ip_while_its_webhook_is_refused(
    kube: Kube, mesh_cluster: cluster.Cluster, mesh_namespace: str, offsite_service: tuple[str, str]
) -> None:
    _, ip = offsite_service
    api_port = urlparse(kube.api_client.configuration.host).port
    with OutputCounter(
        {"cluster-ip": f"ip daddr {ip}", "api-server (control)": f"ip daddr 127.0.0.1 tcp dport {api_port}"}
    ) as counter:
        with pytest.raises(ApiException, match="has no backend on this machine"):
            make_configmap(kube, mesh_namespace)
        packets = counter.packets()
    assert packets["api-server (control)"] > 0, "the counter saw none of this test's own API requests"
    assert packets["cluster-ip"] == 0


# --- the charts at default values, as users install them ------------------------------------------------


@pytest.fixture(scope="module")
def own_cluster(mesh_cluster: cluster.Cluster, pytestconfig: pytest.Config) -> Iterator[cluster.Cluster]:
    """A local cluster of this module's own: base installs cluster-wide objects the shared releases also own."""
    name = f"egress-{uuid.uuid4().hex[:8]}"
    try:
        own = cluster.up(name, k8s_version=pytestconfig.getoption("--k8s-version"), timeout=180)
    except Exception:
        cluster.down(name)
        raise
    try:
        yield own
    finally:
        cluster.down(name)


def test_base_and_istiod_at_default_values_reach_the_real_istiod_through_their_services(
    own_cluster: cluster.Cluster, pytestconfig: pytest.Config, tmp_path: Path
) -> None:
    kube = kube_for(own_cluster.kubeconfig)
    helm = Helm(major=int(pytestconfig.getoption("--helm")), kubeconfig=own_cluster.kubeconfig)
    local = Local()
    egress = local.egress(own_cluster.name)
    for release, chart in (("istio-base", "base"), ("istiod", "istiod")):
        helm.upgrade(
            release, CHARTS / chart, namespace=ISTIO_NS, install=True, wait=True, timeout=120,
            extra=("--create-namespace",),
        )  # fmt: skip
    rendered = yaml.safe_load_all(helm.run(["get", "manifest", "istiod", "--namespace", ISTIO_NS]))
    assert not [d for d in rendered if d and "url" in json.dumps(d.get("webhooks", []))], "a webhook has a URL"
    started = local.start_istiod(own_cluster.name, timeout=180)
    try:
        controlplane.wait_webhooks_trusted(kube, "", timeout=120)
        app = f"app-{uuid.uuid4().hex[:6]}"
        kube.core.create_namespace({"metadata": {"name": app, "labels": {"istio-injection": "enabled"}}})
        kube.core.create_namespaced_pod(
            app, {"metadata": {"name": "web"}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}
        )
        pod = kube.core.read_namespaced_pod("web", app)
        assert controlplane.INJECTED in (pod.metadata.annotations or {}), "the injection webhook did not reach istiod"
        with pytest.raises(ApiException) as refused:
            kube.custom.create_namespaced_custom_object(
                "networking.istio.io",
                "v1beta1",
                app,
                "virtualservices",
                {
                    "apiVersion": "networking.istio.io/v1beta1",
                    "kind": "VirtualService",
                    "metadata": {"name": "web"},
                    "spec": {"hosts": ["web"], "http": [{"route": [{"destination": {"host": ""}}]}]},
                },
            )
        assert "empty domain name not allowed" in str(refused.value.body), "the validation webhook did not reach istiod"
    finally:
        started.istiod.stop(egress)
    connected = [d for d in egress.decisions() if d["verdict"] == "connected"]
    assert {d["service"] for d in connected} == {f"{ISTIO_NS}/istiod"}
    assert {d["to"] for d in connected} == {f"{started.address}:15017"}
