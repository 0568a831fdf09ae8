"""The Istio 1.31 line with a real istiod of the same version: no skew adaptation at all.

The istiod the toolchain builds (pilot-discovery from the istio.io/istio module the proxy serves) is Istio 1.31,
the version lines/1.31 reproduces. So here, unlike with the 1.12/1.13 charts (tests/e2e/test_real_istiod.py and
the README's "Version skew" table), nothing of the harness stands between the chart and istiod: the chart's own
arguments, environment, ConfigMaps and RBAC, and istiod reads its configuration from the CRDs the line's base
chart installs.

The line's base chart serves its own CRDs (v1 served and stored) under a release of its own, which cannot share
a cluster with the session's base from charts/: this module brings a cluster of its own up (same provider, same
Kubernetes release), installs base and istiod from lines/1.31 with default values (istio-system, the default
revision), and has a real istiod answer them: on the local provider the chart's Deployment run on this host, on
kind its pod. Every test here holds on both.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from meshcharts import cluster as cluster_mod
from meshcharts import controlplane, tools, waits
from meshcharts.cluster import Cluster
from meshcharts.cluster.local import istiod as host_istiod
from meshcharts.errors import ToolError
from meshcharts.helm import Helm
from meshcharts.kube import Kube, kube_for
from tests import REPO
from tests.cluster_fixtures import absent_as_none, host_process, istiod_ca_root
from tests.oracle.injection import differences, inject, injected_view, render_injector

LINE = REPO / "lines" / "1.31"
ISTIO_NS = "istio-system"
# Under pytest-xdist each worker that gets tests of this module brings a cluster up for them (a few seconds on the
# local provider); .ci/test keeps xdist's default distribution for every other test's sake.


def _chart(name: str) -> dict[str, Any]:
    chart: dict[str, Any] = yaml.safe_load((LINE / name / "Chart.yaml").read_text())
    return chart


ISTIOD_VERSION = str(_chart("istiod")["version"])
PROXY_IMAGE = f"docker.io/istio/proxyv2:{_chart('istiod')['appVersion']}"


def _minimum_kubernetes() -> tuple[int, int]:
    """The lowest Kubernetes minor the line's charts accept, from their kubeVersion (`>=1.32.0-0`)."""
    found = re.fullmatch(r">=\s*v?(\d+)\.(\d+)\.\d+(-0)?", str(_chart("istiod").get("kubeVersion", "")))
    if not found:
        raise AssertionError(f"lines/1.31/istiod's kubeVersion is not a lower bound: {_chart('istiod')!r}")
    return int(found.group(1)), int(found.group(2))


@dataclass
class LineCluster:
    """The module's cluster with base and istiod of the 1.31 line, and the istiod answering them."""

    cluster: Cluster
    helm: Helm
    kube: Kube
    answering: Any

    @property
    def host(self) -> Any:
        """The host istiod (local provider), or None where the chart's pod answers."""
        return host_process(self.answering)


@pytest.fixture(scope="module")
def line_cluster(
    pytestconfig: pytest.Config, mesh_cluster: Cluster, mesh_helm: Helm, kube: Kube
) -> Iterator[LineCluster]:
    version = client.VersionApi(kube.api_client).get_code()
    running = (int(version.major), int(re.match(r"\d+", version.minor).group()))  # type: ignore[union-attr]
    minimum = _minimum_kubernetes()
    if running < minimum:
        pytest.skip(
            f"the 1.31 line's charts need Kubernetes >={minimum[0]}.{minimum[1]} (their kubeVersion, Istio 1.31's "
            f"minimum); this run's clusters are {version.git_version}"
        )
    if not mesh_cluster.capabilities.owns_clusters:
        pytest.skip(
            "the 1.31 line needs a cluster of its own (its base chart's CRDs belong to another release than the "
            f"session's base), and the {mesh_cluster.provider} provider does not bring clusters up"
        )
    name = f"line131-{uuid.uuid4().hex[:6]}"
    own = cluster_mod.up(
        name,
        provider=mesh_cluster.provider,
        k8s_version=pytestconfig.getoption("--k8s-version"),
        timeout=180,
        owner=os.getpid(),
    )
    answering = None
    try:
        helm = Helm(major=mesh_helm.major, kubeconfig=own.kubeconfig)
        own_kube = kube_for(own.kubeconfig)
        plane = controlplane.install(
            helm, own_kube, charts=str(LINE), version=None, values={}, timeout=180,
            runner=own.backend.istiod_runner(own.name),
        )  # fmt: skip
        answering = plane.istiod
        yield LineCluster(own, helm, own_kube, answering)
    finally:
        if answering is not None:
            answering.stop()
        cluster_mod.down(name, provider=mesh_cluster.provider, timeout=120)


@pytest.fixture
def namespace(line_cluster: LineCluster) -> Iterator[Any]:
    made: list[str] = []

    def make(labels: dict[str, str]) -> str:
        name = f"app-{uuid.uuid4().hex[:6]}"
        line_cluster.kube.core.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
        )
        made.append(name)
        return name

    yield make
    for name in made:
        with contextlib.suppress(ApiException):
            line_cluster.kube.core.delete_namespace(name)


def _pod(name: str) -> dict[str, Any]:
    """A workload as the API server hands it to the webhook (ports with their protocol)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name, "version": "v1"}},
        "spec": {
            "containers": [
                {"name": "app", "image": "busybox:1.36", "ports": [{"containerPort": 8080, "protocol": "TCP"}]}
            ]
        },
    }


def _injected_revision(kube: Kube, namespace: str, name: str) -> str | None:
    kube.core.create_namespaced_pod(namespace, _pod(name))
    annotations = kube.core.read_namespaced_pod(name, namespace).metadata.annotations or {}
    status = annotations.get("sidecar.istio.io/status")
    return None if status is None else str(json.loads(status)["revision"])


# --- the skew ------------------------------------------------------------------------------------------


def test_the_skew_table_is_empty_for_this_line_and_istiod_runs_as_the_chart_says(
    line_cluster: LineCluster, tmp_path: Path
) -> None:
    """No adaptation for a chart of istiod's own version; where istiod runs on the host, its argv is the chart's
    arguments plus only where to listen, how to reach the API server and how fast to shut down, and its
    environment is the container's."""
    assert host_istiod.skew_for(ISTIOD_VERSION) == ()
    assert host_istiod.skew_for("1.12.2") != (), "the base line's skew must still be there: the check can fail"
    host = line_cluster.host
    if host is None:
        return  # the chart's own pod runs istiod: nothing of the harness is there at all
    record = host.istiod.record()
    assert record["skew"] == [] and record["chart_version"] == ISTIOD_VERSION, record
    deployment = line_cluster.kube.apps.read_namespaced_deployment("istiod", ISTIO_NS)
    container = deployment.spec.template.spec.containers[0]
    argv = record["argv"][1:]
    assert argv[: len(container.args)] == container.args
    added = [arg for arg in argv[len(container.args) :] if not arg.startswith(str(host.istiod.directory))]
    listeners = [f"{flag}={host.address}:{port}" for flag, port in host_istiod.LISTENERS.items()]
    assert added == [
        *listeners, "--ctrlz_address", host.address, "--ctrlz_port", "9876", "--kubeconfig", "--shutdownDuration", "1s"
    ]  # fmt: skip
    environ = dict(
        entry.split(b"=", 1) for entry in Path(f"/proc/{host.pid}/environ").read_bytes().split(b"\0") if b"=" in entry
    )
    # KUBECONFIG is the one exception: in a pod it names the optional remote-cluster secret and, that file
    # missing, istiod uses the pod's ServiceAccount token; on the host it names a kubeconfig with that token.
    assert environ[b"KUBECONFIG"].decode() == str(host.istiod.directory / "kubeconfig.yaml")
    for entry in container.env or []:
        if entry.value is not None and entry.name != "KUBECONFIG":
            assert environ.get(entry.name.encode()) == entry.value.encode(), entry.name
    assert b"PILOT_ENABLE_IP_AUTOALLOCATE" not in environ
    assert not (host.istiod.workdir / host_istiod.INJECT_DIR).exists(), "istiod reads the chart's injector itself"


# --- what istiod does with the chart ------------------------------------------------------------------------


def test_istiod_writes_its_ca_into_every_webhook_and_fails_its_validators_closed(line_cluster: LineCluster) -> None:
    kube = line_cluster.kube
    trusted = controlplane.wait_webhooks_trusted(kube, "", timeout=120)
    assert trusted and all(trusted.values()), trusted
    assert {name.split(" ", 1)[1] for name in trusted} >= {"istio-sidecar-injector", "istio-validator-istio-system"}
    root = istiod_ca_root(kube, ISTIO_NS)
    configs = [
        *kube.admission.list_mutating_webhook_configuration(label_selector="app=sidecar-injector").items,
        *kube.admission.list_validating_webhook_configuration(label_selector="app=istiod").items,
    ]
    names = {c.metadata.name for c in configs}
    assert {"istio-sidecar-injector", "istio-validator-istio-system", "istiod-default-validator"} <= names, names
    for config in configs:
        for hook in config.webhooks:
            assert base64.b64decode(hook.client_config.ca_bundle).strip() == root, (config.metadata.name, hook.name)
    waits.wait_until(
        lambda: all(
            hook.failure_policy == "Fail"
            for config in kube.admission.list_validating_webhook_configuration(label_selector="app=istiod").items
            for hook in config.webhooks
        ),
        condition="istiod to set failurePolicy Fail on its validators",
        timeout=120,
    )


INVALID = {
    "VirtualService": (
        "virtualservices",
        {"hosts": ["web"], "http": [{"route": [{"destination": {"host": ""}}]}]},
        {"hosts": ["web"], "http": [{"route": [{"destination": {"host": "web"}}]}]},
        "empty domain name not allowed",
    ),
    "DestinationRule": (
        "destinationrules",
        {"host": "web", "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": -1}}}},
        {"host": "web", "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": 10}}}},
        "max connections must be non-negative",
    ),
    "Gateway": (
        "gateways",
        {"servers": []},
        {"servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]},
        "gateway must have at least one server",
    ),
}


@pytest.mark.parametrize("kind", sorted(INVALID))
def test_an_invalid_v1_resource_is_refused_with_istiods_reason_and_a_valid_one_is_stored(
    line_cluster: LineCluster, namespace: Any, kind: str
) -> None:
    """istiod validates networking.istio.io/v1, which the line's CRDs serve and store (1.12's serve no v1)."""
    kube = line_cluster.kube
    controlplane.wait_webhooks_trusted(kube, "", timeout=120)
    ns = namespace({})
    plural, bad, good, reason = INVALID[kind]

    def create(name: str, spec: dict[str, Any]) -> Any:
        body = {"apiVersion": "networking.istio.io/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}
        return kube.custom.create_namespaced_custom_object("networking.istio.io", "v1", ns, plural, body)

    with pytest.raises(ApiException) as refused:
        create("bad", bad)
    text = refused.value.body.decode() if isinstance(refused.value.body, bytes) else str(refused.value.body)
    assert re.search(r'admission webhook \\?"(rev\.)?validation\.istio\.io\\?" denied the request', text), text
    assert reason in text, text
    assert create("good", good)["metadata"]["name"] == "good"


def test_every_namespace_gets_istiods_root_certificate(line_cluster: LineCluster, namespace: Any) -> None:
    kube = line_cluster.kube
    ns = namespace({})

    config_map = waits.wait_until(
        lambda: absent_as_none(kube.core.read_namespaced_config_map, "istio-ca-root-cert", ns),
        condition=f"istiod to publish istio-ca-root-cert in {ns}",
        timeout=120,
    )
    assert config_map.data["root-cert.pem"].strip().encode() == istiod_ca_root(kube, ISTIO_NS)


def test_a_pod_is_injected_through_the_webhook_as_istioctl_injects_it_offline(
    line_cluster: LineCluster, namespace: Any
) -> None:
    """The same pod: istiod's answer through the chart's webhook, and istioctl kube-inject (the same module) over the
    ConfigMaps `helm template` renders for lines/1.31/istiod with default values, decide the same injection."""
    try:
        istioctl = tools.path("istioctl")
    except ToolError as err:
        pytest.skip(f"requires istioctl, which runs the offline oracle: {err}")
    kube = line_cluster.kube
    controlplane.wait_webhooks_trusted(kube, "", timeout=120)
    ns = namespace({"istio-injection": "enabled"})
    manifest = _pod("web")
    kube.core.create_namespaced_pod(ns, manifest)
    live = kube.api_client.sanitize_for_serialization(kube.core.read_namespaced_pod("web", ns))
    injector = render_injector(tools.path("helm"), LINE / "istiod", {}, namespace=ISTIO_NS, release="istiod")
    offline = inject(
        istioctl, injector, yaml.safe_dump({**manifest, "metadata": {**manifest["metadata"], "namespace": ns}})
    )
    ours, oracle = injected_view(live), injected_view(offline["web"])
    assert ours["containers"]["istio-proxy"]["image"] == PROXY_IMAGE, ours["containers"]
    assert ours["status"]["revision"] == "default"
    found = [
        f"{d.path}: offline {d.istio!r}, through the webhook {d.ours!r}"
        for d in differences(json.loads(json.dumps(oracle)), json.loads(json.dumps(ours)))
    ]
    assert not found, "\n".join(found)


def test_istiod_holds_its_leader_elections_with_the_charts_rbac(line_cluster: LineCluster) -> None:
    """istiod elects itself with the locks the chart's Role lets it write (Leases and ConfigMaps in its namespace):
    every election object names the istiod that answers."""
    kube = line_cluster.kube
    if line_cluster.host is not None:
        expected = {f"istiod-host-{line_cluster.host.address.replace('.', '-')}"}
    else:
        pods = kube.core.list_namespaced_pod(ISTIO_NS, label_selector="app=istiod").items
        expected = {pod.metadata.name for pod in pods if pod.status.phase == "Running"}

    def holders() -> dict[str, str] | None:
        found = {
            f"Lease {lease.metadata.name}": lease.spec.holder_identity or ""
            for lease in client.CoordinationV1Api(kube.api_client).list_namespaced_lease(ISTIO_NS).items
        }
        for config_map in kube.core.list_namespaced_config_map(ISTIO_NS).items:
            record = (config_map.metadata.annotations or {}).get("control-plane.alpha.kubernetes.io/leader")
            if record:
                found[f"ConfigMap {config_map.metadata.name}"] = json.loads(record).get("holderIdentity", "")
        wanted = {"Lease istio-gateway-deployment-default", "ConfigMap istio-namespace-controller-election"}
        return found if wanted <= set(found) else None

    held = waits.wait_until(holders, condition="istiod's leader elections in istio-system", timeout=120)
    assert set(held.values()) <= expected and all(held.values()), (held, expected)
    role = kube.rbac.read_namespaced_role("istiod", ISTIO_NS)
    granted = {resource for rule in role.rules for resource in rule.resources or []}
    assert {"leases", "configmaps"} <= granted, granted


def test_a_revision_tag_sends_its_namespaces_to_the_revision_it_points_to(
    line_cluster: LineCluster, namespace: Any, tmp_path: Path
) -> None:
    kube, helm = line_cluster.kube, line_cluster.helm
    tag = f"prod{uuid.uuid4().hex[:4]}"
    values = tmp_path / "tags.yaml"
    values.write_text(yaml.safe_dump({"revisionTags": [tag]}))
    tagged = namespace({"istio.io/rev": tag})
    try:
        helm.upgrade("istiod", LINE / "istiod", namespace=ISTIO_NS, values=[values], wait=True, timeout=180)
        trusted = controlplane.wait_webhooks_trusted(kube, "", timeout=120)
        assert f"MutatingWebhookConfiguration istio-revision-tag-{tag}" in trusted, trusted
        assert _injected_revision(kube, tagged, "tagged") == "default"
    finally:
        # Back to the chart's defaults (an upgrade given no values would keep the tag).
        helm.upgrade("istiod", LINE / "istiod", namespace=ISTIO_NS, wait=True, timeout=180, extra=("--reset-values",))
    assert kube.admission.list_mutating_webhook_configuration(label_selector=f"istio.io/tag={tag}").items == []
    assert _injected_revision(kube, tagged, "untagged") is None


def test_the_gateway_charts_pod_is_injected_by_istiod_and_becomes_available(
    line_cluster: LineCluster, namespace: Any
) -> None:
    kube, helm = line_cluster.kube, line_cluster.helm
    controlplane.wait_webhooks_trusted(kube, "", timeout=120)
    ns = namespace({})
    helm.install(
        "gw", LINE / "gateway", namespace=ns, set_values={"service.type": "ClusterIP"}, wait=False, timeout=120
    )
    try:
        waits.deployment_available(kube.apps, ns, "gw", timeout=120)
        pods = kube.core.list_namespaced_pod(ns, label_selector="app=gw").items
        assert pods
        for pod in pods:
            assert {c.name: c.image for c in pod.spec.containers} == {"istio-proxy": PROXY_IMAGE}
            status = json.loads((pod.metadata.annotations or {})["sidecar.istio.io/status"])
            assert status["revision"] == "default", status
    finally:
        helm.uninstall("gw", namespace=ns, wait=True, timeout=120)
