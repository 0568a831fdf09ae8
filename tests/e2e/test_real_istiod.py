"""A real istiod answers the charts' webhooks: its CA, its validation verdicts, its injection.

istiod here is the chart's own: installed from charts/ as revision `real` in its own namespace, with default
values otherwise. On kind or an existing cluster its pod runs it; on the local provider the same Deployment
runs on this host as pilot-discovery (meshcharts.cluster.local.istiod), with a token of the chart's ServiceAccount,
reached through the chart's Service. Every test but those marked local_only holds on both.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from meshcharts import cluster as cluster_mod
from meshcharts import controlplane, tools, waits
from meshcharts._yaml import parse_all
from meshcharts.cluster import Cluster
from meshcharts.cluster.local import Local
from meshcharts.cluster.local import istiod as host_istiod
from meshcharts.errors import ClusterError, HelmError, ToolError
from meshcharts.helm import Helm
from meshcharts.kube import kube_for
from meshcharts.testing.plugin import Kube
from meshcharts.waits import wait_for
from tests.cluster_fixtures import (
    CHARTS,
    REPO,
    RealIstiod,
    absent_as_none,
    install_real_istiod,
    istiod_ca_root,
    remove_real_istiod,
    run_istiod,
)
from tests.oracle.injection import differences, inject, injected_view, render_injector

# Under Helm 3 too (`helm3`): only the tests in which Helm's client acts on what istiod wrote or answers (installs
# whose webhooks istiod then patches, upgrades, tag moves, rollbacks, drift against `helm template`). The rest test
# istiod and the harness that runs it; Helm only installs the shared istiod for them, the same objects either way.

# What istiod answers for each invalid resource (Istio's validation of that kind; the same text in 1.12's and
# in this istiod's validation code for these fields).
INVALID = {
    "VirtualService": (
        "networking.istio.io/v1alpha3",
        "virtualservices",
        {"hosts": ["web"], "http": [{"route": [{"destination": {"host": ""}}]}]},
        "empty domain name not allowed",
    ),
    "DestinationRule": (
        "networking.istio.io/v1alpha3",
        "destinationrules",
        {
            "host": "web",
            "trafficPolicy": {
                "loadBalancer": {"simple": "ROUND_ROBIN"},
                "connectionPool": {"tcp": {"maxConnections": -1}},
            },
        },
        "max connections must be non-negative",
    ),
    "Gateway": (
        "networking.istio.io/v1alpha3",
        "gateways",
        {"servers": []},
        "gateway must have at least one server",
    ),
}
VALID = {
    "VirtualService": {"hosts": ["web"], "http": [{"route": [{"destination": {"host": "web"}}]}]},
    "DestinationRule": {"host": "web", "trafficPolicy": {"loadBalancer": {"simple": "ROUND_ROBIN"}}},
    "Gateway": {
        "selector": {"istio": "ingressgateway"},
        "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}],
    },
}


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def namespace(kube: Kube, request: pytest.FixtureRequest) -> Iterator[Any]:
    made: list[str] = []

    def make(labels: dict[str, str]) -> str:
        name = _unique("real")
        kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))
        made.append(name)
        return name

    yield make
    for name in made:
        with contextlib.suppress(ApiException):
            kube.core.delete_namespace(name)


def _istio_object(kind: str, name: str, spec: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    group_version = INVALID[kind][0]
    return {"apiVersion": group_version, "kind": kind, "metadata": {"name": name, "labels": labels}, "spec": spec}


def _create(kube: Kube, namespace: str, kind: str, body: dict[str, Any]) -> Any:
    group_version, plural = INVALID[kind][0], INVALID[kind][1]
    group, version = group_version.split("/")
    return kube.custom.create_namespaced_custom_object(group, version, namespace, plural, body)


@pytest.mark.helm3
def test_istiod_writes_its_ca_into_every_webhook_of_its_revision_and_fails_its_validator_closed(
    real_istiod: RealIstiod, kube: Kube
) -> None:
    trusted = controlplane.wait_webhooks_trusted(kube, real_istiod.revision, timeout=120)
    assert trusted == {
        f"MutatingWebhookConfiguration istio-sidecar-injector-{real_istiod.revision}-{real_istiod.namespace}": True,
        f"ValidatingWebhookConfiguration istio-validator-{real_istiod.revision}-{real_istiod.namespace}": True,
    }
    root = istiod_ca_root(kube, real_istiod.namespace)
    selector = f"istio.io/rev={real_istiod.revision}"
    for config in kube.admission.list_mutating_webhook_configuration(label_selector=selector).items:
        for hook in config.webhooks:
            assert base64.b64decode(hook.client_config.ca_bundle).strip() == root, hook.name
    validators = kube.admission.list_validating_webhook_configuration(label_selector=selector).items
    for config in validators:
        for hook in config.webhooks:
            assert base64.b64decode(hook.client_config.ca_bundle).strip() == root, hook.name
    # The chart renders Ignore; istiod sets Fail once it answers (a validator that cannot be reached then refuses).
    waits.wait_until(
        lambda: all(
            h.failure_policy == "Fail"
            for c in kube.admission.list_validating_webhook_configuration(label_selector=selector).items
            for h in c.webhooks
        ),
        condition="istiod to set failurePolicy Fail on its validator",
        timeout=120,
    )


@pytest.mark.parametrize("kind", sorted(INVALID))
def test_an_invalid_resource_of_the_revision_is_refused_with_istiods_reason(
    real_istiod: RealIstiod, no_default_validator: tuple[str, str], kube: Kube, namespace: Any, kind: str
) -> None:
    controlplane.wait_webhooks_trusted(kube, real_istiod.revision, timeout=120)
    ns = namespace({})
    labels = {"istio.io/rev": real_istiod.revision}
    spec, reason = INVALID[kind][2], INVALID[kind][3]
    with pytest.raises(ApiException) as refused:
        _create(kube, ns, kind, _istio_object(kind, "bad", spec, labels))
    body = refused.value.body.decode() if isinstance(refused.value.body, bytes) else str(refused.value.body)
    assert 'admission webhook \\"rev.validation.istio.io\\" denied the request' in body or (
        'admission webhook "rev.validation.istio.io" denied the request' in body
    ), body
    assert reason in body, body
    created = _create(kube, ns, kind, _istio_object(kind, "good", VALID[kind], labels))
    assert created["metadata"]["name"] == "good"


def _pod(name: str) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app": name}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="busybox:1.36")]),
    )


def test_a_pod_in_a_namespace_of_the_revision_is_injected_by_istiod(
    real_istiod: RealIstiod, kube: Kube, namespace: Any
) -> None:
    controlplane.wait_webhooks_trusted(kube, real_istiod.revision, timeout=120)
    ns = namespace({"istio.io/rev": real_istiod.revision})
    kube.core.create_namespaced_pod(ns, _pod("web"))
    pod = kube.core.read_namespaced_pod("web", ns)
    containers = {c.name: c.image for c in pod.spec.containers}
    inits = {c.name: c.image for c in pod.spec.init_containers or []}
    assert containers["istio-proxy"] == "docker.io/istio/proxyv2:1.12.2", containers
    assert inits == {"istio-init": "docker.io/istio/proxyv2:1.12.2"}
    status = yaml.safe_load(pod.metadata.annotations["sidecar.istio.io/status"])
    assert status["containers"] == ["istio-proxy"] and status["revision"] == real_istiod.revision


@pytest.mark.helm3
def test_the_gateway_charts_pod_is_injected_by_istiod_and_runs(
    real_istiod: RealIstiod, kube: Kube, mesh_helm: Helm, namespace: Any
) -> None:
    controlplane.wait_webhooks_trusted(kube, real_istiod.revision, timeout=120)
    ns = namespace({})
    mesh_helm.install(
        "gw",
        CHARTS / "gateway",
        namespace=ns,
        set_values={"revision": real_istiod.revision, "service.type": "ClusterIP"},
        wait=False,
        timeout=120,
    )
    try:
        waits.deployment_available(kube.apps, ns, "gw", timeout=120)
        pods = kube.core.list_namespaced_pod(ns, label_selector="app=gw").items
        assert pods
        for pod in pods:
            images = {c.name: c.image for c in pod.spec.containers}
            assert images == {"istio-proxy": "docker.io/istio/proxyv2:1.12.2"}, images
            assert "sidecar.istio.io/status" in (pod.metadata.annotations or {})
    finally:
        mesh_helm.uninstall("gw", namespace=ns, wait=True, timeout=120)


@pytest.mark.local_only("the host istiod and its listeners exist only on the local provider")
def test_the_host_istiod_listens_on_loopback_only_and_runs_with_the_charts_service_account(
    real_istiod: RealIstiod, kube: Kube
) -> None:
    assert real_istiod.host is not None
    listening = host_istiod.listening_addresses(real_istiod.host.pid)
    assert {port for _, port in listening} >= {8080, 15010, 15012, 15014, 15017}
    assert all(ipaddress.ip_address(address).is_loopback for address, _ in listening), listening
    config = yaml.safe_load((real_istiod.host.istiod.directory / "kubeconfig.yaml").read_text())
    token = config["users"][0]["user"]["token"]
    review = (
        client.AuthenticationV1Api(kube.api_client)
        .create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token)))
        .to_dict()
    )
    assert review["status"]["authenticated"] is True
    assert (
        review["status"]["user"]["username"]
        == f"system:serviceaccount:{real_istiod.namespace}:istiod-{real_istiod.revision}"
    )


@pytest.mark.any_kubernetes("what RBAC v1 forbids istiod is the same on every API server this suite supports")
@pytest.mark.local_only("runs the chart's istiod Deployment on the host, which only the local provider does")
def test_istiod_without_the_charts_rbac_for_webhooks_never_trusts_them_and_its_log_names_what_was_forbidden(
    istio_base: tuple[str, str], mesh_cluster: Cluster, mesh_helm: Helm, kube: Kube, tmp_path: Path
) -> None:
    """The chart's RBAC is exactly what istiod has: without the ClusterRole rule on mutatingwebhookconfigurations,
    istiod cannot patch its injector's CA in, and says why."""
    chart = tmp_path / "istiod"
    shutil.copytree(CHARTS / "istiod", chart)
    clusterrole = chart / "templates" / "clusterrole.yaml"
    text = clusterrole.read_text()
    rule = '  - apiGroups: ["admissionregistration.k8s.io"]\n    resources: ["mutatingwebhookconfigurations"]\n'
    assert rule in text, "the chart's ClusterRole no longer has the rule this test removes"
    start = text.index(rule)
    end = text.index("  - apiGroups", start + len(rule))
    clusterrole.write_text(text[:start] + text[end:])
    revision = _unique("norbac").replace("-", "")[:12]
    namespace = f"istio-{revision}"
    try:
        with pytest.raises(ClusterError) as failed:
            install_real_istiod(
                mesh_cluster, mesh_helm, kube, chart, namespace=namespace, revision=revision, timeout=30
            )
        # istiod cannot list the injector's webhook configurations, so it never becomes ready, and the error says why:
        # the wait gives up once that list has kept failing (host_istiod.stuck_lists), not at the 30 s bound.
        message = str(failed.value)
        assert re.match(r"gave up after \d+s waiting for istiod at \S+ to be ready", message), message
        assert "\n  list failing: *v1.MutatingWebhookConfiguration: mutatingwebhookconfigurations" in message, message
        user = f"system:serviceaccount:{namespace}:istiod-{revision}"
        refused = (
            r"refused by the API server: mutatingwebhookconfigurations\.admissionregistration\.k8s\.io is forbidden"
        )
        assert re.search(rf'{refused}: User "{user}" cannot (list|watch|get)', message), message
        assert "validatingwebhookconfigurations" not in message.split("; last lines of its log")[0], message
    finally:
        stale = RealIstiod(f"istiod-{revision}", namespace, revision, None)
        remove_real_istiod(mesh_cluster, mesh_helm, kube, stale)


def test_a_missing_pilot_discovery_is_a_clear_error_naming_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match=r"meshcharts tools install pilot-discovery"):
        host_istiod.start(tmp_path / "kubeconfig", None, tmp_path, cache=tmp_path / "empty-cache")  # type: ignore[arg-type]


def test_an_istiod_that_exits_fails_with_its_log_tail(tmp_path: Path) -> None:
    istiod = host_istiod.HostIstiod(tmp_path / "istiod")
    istiod.directory.mkdir()
    istiod.log.write_text("")
    with istiod.log.open("ab") as log:
        process = subprocess.Popen(["sh", "-c", "echo 'fatal: cannot start: the reason' >&2; exit 3"], stderr=log)
    with pytest.raises(
        ClusterError, match=r"(?s)istiod exited \(3\) before it was ready.*fatal: cannot start: the reason"
    ):
        host_istiod._wait_ready(istiod, process, "127.0.0.1", timeout=60)


# --- the version skew between this istiod (1.31) and the 1.12 charts: each adaptation needed, none more ------


def test_the_skew_adaptations_are_exactly_the_readmes_table_and_istiod_runs_with_nothing_else(
    real_istiod: RealIstiod, kube: Kube, mesh_cluster: Cluster
) -> None:
    assert [a.name for a in host_istiod.SKEW_1_12] == [
        "configDir",
        "EstimatedConcurrency",
        "PILOT_ENABLE_IP_AUTOALLOCATE",
    ]
    assert host_istiod.skew_for("1.12.2") == host_istiod.SKEW_1_12 == host_istiod.skew_for("1.13.0")
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("### Version skew") :].split("\n\n")[2]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| adaptation")]
    assert [row.split("|")[1].strip() for row in rows] == [
        "`--configDir` an empty directory",
        "the injector ConfigMap's `config` given as a file with `.EstimatedConcurrency` replaced by 0",
        "`PILOT_ENABLE_IP_AUTOALLOCATE=false`",
    ]
    if real_istiod.host is None:
        return  # elsewhere the chart's own pod runs, with nothing of the harness
    record = real_istiod.host.istiod.record()
    deployment = kube.apps.read_namespaced_deployment(real_istiod.deployment, real_istiod.namespace)
    own = deployment.spec.template.spec.containers[0].args
    argv = record["argv"][1:]
    assert argv[: len(own)] == own, "the chart's own arguments come first, unchanged"
    added = [arg for arg in argv[len(own) :] if not arg.startswith(str(real_istiod.host.istiod.directory))]
    listeners = [f"{flag}={real_istiod.host.address}:{port}" for flag, port in host_istiod.LISTENERS.items()]
    assert added == [
        *listeners,
        "--ctrlz_address", real_istiod.host.address, "--ctrlz_port", "9876", "--kubeconfig",
        "--shutdownDuration", "1s",
        "--configDir",
    ]  # fmt: skip
    injected = (real_istiod.host.istiod.workdir / host_istiod.INJECT_DIR / "config").read_text()
    live = kube.core.read_namespaced_config_map(f"istio-sidecar-injector-{real_istiod.revision}", real_istiod.namespace)
    assert ".EstimatedConcurrency" in live.data["config"]
    assert injected == live.data["config"].replace(".EstimatedConcurrency", "0")
    environ = Path(f"/proc/{real_istiod.host.pid}/environ").read_bytes().split(b"\0")
    assert b"PILOT_ENABLE_IP_AUTOALLOCATE=false" in environ


@pytest.mark.any_kubernetes("the adaptations bridge this istiod and the 1.12 chart; the API server is not in it")
@pytest.mark.local_only("drops an adaptation of the host istiod, which only the local provider runs")
@pytest.mark.parametrize("dropped", ["configDir", "EstimatedConcurrency"])
def test_without_each_adaptation_this_istiod_fails_the_1_12_chart(
    dropped: str, istio_base: tuple[str, str], mesh_cluster: Cluster, mesh_helm: Helm, kube: Kube, namespace: Any
) -> None:
    """If a later istiod no longer needs an adaptation, this fails: the table must shrink with it."""
    revision = f"skew{uuid.uuid4().hex[:6]}"
    ns = f"istio-{revision}"
    keep = [a for a in host_istiod.SKEW_1_12 if a.name != dropped]
    mesh_helm.upgrade(
        f"istiod-{revision}", CHARTS / "istiod", namespace=ns, install=True, wait=True, timeout=120,
        set_values={"revision": revision}, extra=("--create-namespace",),
    )  # fmt: skip
    local = Local(tools.cache_root())
    istiod = RealIstiod(f"istiod-{revision}", ns, revision, None)
    try:
        if dropped == "configDir":
            # Without it istiod lists its kinds at v1, which the 1.12 CRDs do not serve; those lists keep failing and
            # it never becomes ready. The wait gives up once they have (host_istiod.stuck_lists), naming them.
            not_served = (
                r"\n  list failing: \*v1\.\w+: the server could not find the requested resource "
                r"\(get \w+\.(networking|security|telemetry)\.istio\.io\)"
            )
            with pytest.raises(ClusterError, match=rf"^gave up after \d+s waiting for istiod (?s:.*){not_served}"):
                host_istiod.start(
                    local.kubeconfig(mesh_cluster.name), local.egress(mesh_cluster.name),
                    local.istiod_root(mesh_cluster.name), namespace=ns, deployment=f"istiod-{revision}",
                    timeout=30, skew=keep,
                )  # fmt: skip
            return
        start = dict(namespace=ns, deployment=f"istiod-{revision}", skew=keep)
        root = local.istiod_root(mesh_cluster.name)
        kubeconfig, egress = local.kubeconfig(mesh_cluster.name), local.egress(mesh_cluster.name)
        istiod.answering = host_istiod.start(kubeconfig, egress, root, timeout=120, **start)  # type: ignore[arg-type]
        controlplane.wait_webhooks_trusted(kube, revision, timeout=120)
        apps = namespace({"istio.io/rev": revision})
        with pytest.raises(ApiException) as refused:
            kube.core.create_namespaced_pod(apps, _pod("web"))
        assert "EstimatedConcurrency" in str(refused.value.body), refused.value.body
    finally:
        remove_real_istiod(mesh_cluster, mesh_helm, kube, istiod)
        for left in local.istiods(mesh_cluster.name):
            if left.directory.name == f"{ns}.istiod-{revision}":
                left.stop(local.egress(mesh_cluster.name))


def _own_cluster_with_base_and_istiod(local: Local, name: str) -> Cluster:
    """A local cluster of the test's own with base and istiod from charts/ (default values) installed; taken down
    here if the installs fail, else by the test."""
    own = cluster_mod.up(name, timeout=180, k8s_version=local.k8s_version)
    try:
        helm = Helm(kubeconfig=own.kubeconfig)
        for release, chart in (("istio-base", "base"), ("istiod", "istiod")):
            helm.upgrade(
                release, CHARTS / chart, namespace="istio-system", install=True, wait=True, timeout=180,
                extra=("--create-namespace",),
            )  # fmt: skip
    except BaseException:
        cluster_mod.down(name, timeout=120)
        raise
    return own


@pytest.mark.any_kubernetes("an unserved CRD version is refused alike by every API server this suite supports")
@pytest.mark.local_only("a local cluster of its own, with the host istiod only the local provider runs")
def test_without_the_allocator_switch_istiod_lists_v1_serviceentries_the_charts_crds_do_not_serve(
    pytestconfig: pytest.Config,
) -> None:
    """PILOT_ENABLE_IP_AUTOALLOCATE=false is needed: without it this istiod starts 1.31's ServiceEntry address
    allocator, whose informer lists networking.istio.io/v1 ServiceEntries; the 1.12 chart's CRD does not serve v1,
    so the list fails (the API server: "could not find the requested resource") and the allocator waits for a sync
    that never comes, which can stall istiod's readiness or its publishing of istio-ca-root-cert (whether it does
    varies between runs: CI once saw the certificate published anyway, so that is not asserted). With the switch,
    nothing lists v1 ServiceEntries and istiod publishes its certificate at once. On a cluster of its own, where no
    other istiod of the run publishes."""
    name = _unique("istiod-alloc")
    local = Local(tools.cache_root(), k8s_version=pytestconfig.getoption("--k8s-version"))
    own = _own_cluster_with_base_and_istiod(local, name)
    v1_list_failed = "failed to list *v1.ServiceEntry: the server could not find the requested resource"
    try:
        kube = kube_for(own.kubeconfig)
        kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="probe")))
        without = [a for a in host_istiod.SKEW_1_12 if a.name != "PILOT_ENABLE_IP_AUTOALLOCATE"]
        files = host_istiod.HostIstiod(local.istiod_root(name) / "istio-system.istiod")
        try:
            # 30 s: with every adaptation this istiod is ready within a second here (bench/istiod.py), and the
            # allocator's failed list, which is what is asserted, comes before readiness.
            started = host_istiod.start(
                own.kubeconfig, local.egress(name), local.istiod_root(name), timeout=30, skew=without
            )
        except ClusterError as err:
            # One way it shows: its start never completes (readiness waits for the allocator's sync), and the wait
            # gives up once the v1 list has kept failing (host_istiod.stuck_lists), naming it.
            assert re.match(r"gave up after \d+s waiting for istiod", str(err)), err
            assert "\n  list failing: *v1.ServiceEntry: the server could not find the requested resource" in str(err)
        else:
            wait_for(
                lambda: v1_list_failed in files.log.read_text(errors="replace"),
                what="istiod's allocator to fail listing v1 ServiceEntries",
                timeout=60,
                describe=lambda: files.log_tail(20),
            )
            started.stop()
        log = files.log.read_text(errors="replace")
        assert v1_list_failed in log, log[-3000:]
        control_from = len(files.log.read_bytes())
        local.start_istiod(name, timeout=120)  # every adaptation: the control
        waits.wait_until(
            lambda: absent_as_none(kube.core.read_namespaced_config_map, "istio-ca-root-cert", "probe"),
            condition="istiod to publish istio-ca-root-cert in probe",
            timeout=60,
        )
        control = files.log.read_bytes()[control_from:].decode(errors="replace")
        assert "IP Autoallocator" not in control and "v1.ServiceEntry" not in control, control[-3000:]
    finally:
        cluster_mod.down(name, timeout=120)


def test_a_pod_injected_through_the_webhook_equals_what_the_offline_oracle_computes(
    real_istiod: RealIstiod, kube: Kube, namespace: Any
) -> None:
    """The same pod and the same values: istiod's answer through the chart's webhook, and istioctl kube-inject over
    the ConfigMaps `helm template` renders for that revision (tests/oracle), decide the same injection. The pod
    is written as the API server hands it to the webhook (ports with their protocol); the ServiceAccount token
    volume the API server adds before any webhook is left out."""
    try:
        istioctl = tools.path("istioctl")
    except ToolError as err:
        pytest.skip(f"requires istioctl, which runs the offline oracle: {err}")
    controlplane.wait_webhooks_trusted(kube, real_istiod.revision, timeout=120)
    ns = namespace({"istio.io/rev": real_istiod.revision})
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": ns, "labels": {"app": "web", "version": "v1"}},
        "spec": {
            "containers": [
                {"name": "app", "image": "busybox:1.36", "ports": [{"containerPort": 8080, "protocol": "TCP"}]}
            ]
        },
    }
    kube.core.create_namespaced_pod(ns, manifest)
    live = kube.api_client.sanitize_for_serialization(kube.core.read_namespaced_pod("web", ns))
    injector = render_injector(
        tools.path("helm"),
        CHARTS / "istiod",
        {"revision": real_istiod.revision},
        namespace=real_istiod.namespace,
        release=real_istiod.release,
    )
    offline = inject(istioctl, injector, yaml.safe_dump(manifest))["web"]
    ours, oracle = injected_view(live), injected_view(offline)
    assert set(ours["containers"]) == {"app", "istio-proxy"} and set(ours["initContainers"]) == {"istio-init"}
    # Tuples become lists, so that `differences` compares them element by element and names each path.
    found = [f"{d.path}: offline {d.istio!r}, through the webhook {d.ours!r}" for d in differences(
        json.loads(json.dumps(oracle)), json.loads(json.dumps(ours))
    )]  # fmt: skip
    assert not found, "\n".join(found)


@pytest.mark.any_kubernetes("stopping the host istiod is the harness's; test_local_cluster runs `down` per version")
@pytest.mark.local_only("a local cluster of its own, with the host istiod only the local provider runs")
def test_cluster_down_stops_the_host_istiod_by_pid_and_leaves_nothing_of_it(pytestconfig: pytest.Config) -> None:
    name = _unique("istiod-down")
    local = Local(tools.cache_root(), k8s_version=pytestconfig.getoption("--k8s-version"))
    said: list[str] = []
    pid = None
    _own_cluster_with_base_and_istiod(local, name)
    try:
        started = local.start_istiod(name, timeout=180)
        pid = started.pid
        assert started.istiod.pid() == pid
    finally:
        cluster_mod.down(name, timeout=120, say=said.append)
    assert pid is not None
    assert f"istiod istio-system.istiod (pid {pid}) stopped" in said, said
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1][:3]
    assert not local.istiod_root(name).exists()
    assert said[-1].endswith("none of its 7 processes and 6 ports is left"), said


def _revision_of_injection(kube: Kube, namespace: str, pod: str) -> str:
    kube.core.create_namespaced_pod(namespace, _pod(pod))
    annotations = kube.core.read_namespaced_pod(pod, namespace).metadata.annotations or {}
    assert "sidecar.istio.io/status" in annotations, f"{namespace}/{pod} was not injected"
    return str(json.loads(annotations["sidecar.istio.io/status"])["revision"])


@pytest.mark.helm3
def test_a_tagged_namespace_is_injected_by_the_revision_its_tag_points_to_before_and_after_the_tag_moves(
    istio_base: tuple[str, str], mesh_cluster: Cluster, mesh_helm: Helm, kube: Kube, namespace: Any, request: Any
) -> None:
    """A canary: two revisions, each with a real istiod; the tag `stable` moves from the first to the second."""
    if not mesh_cluster.capabilities.simulated_pods:
        request.getfixturevalue("mesh_real_pods")
    suffix = uuid.uuid4().hex[:5]
    tag = f"stable{suffix}"
    blue, green = f"blue{suffix}", f"green{suffix}"
    made: list[RealIstiod] = []
    try:
        for revision in (blue, green):
            made.append(
                install_real_istiod(
                    mesh_cluster, mesh_helm, kube, CHARTS / "istiod", namespace=f"istio-{revision}", revision=revision
                )
            )

        def point_tag(revision: str, tags: list[str]) -> None:
            mesh_helm.upgrade(
                f"istiod-{revision}", CHARTS / "istiod", namespace=f"istio-{revision}", wait=True, timeout=180,
                values=[_values_file(request, {"revision": revision, "revisionTags": tags})],
            )  # fmt: skip
            controlplane.wait_webhooks_trusted(kube, revision, timeout=120)

        point_tag(blue, [tag])
        tagged = namespace({"istio.io/rev": tag})
        assert _revision_of_injection(kube, tagged, "before") == blue
        point_tag(blue, [])
        point_tag(green, [tag])
        assert _revision_of_injection(kube, tagged, "after") == green
        # Each revision's own namespace label still selects that revision.
        for revision in (blue, green):
            assert _revision_of_injection(kube, namespace({"istio.io/rev": revision}), "own") == revision
    finally:
        for istiod in made:
            remove_real_istiod(mesh_cluster, mesh_helm, kube, istiod)


def _values_file(request: Any, values: dict[str, Any]) -> Path:
    path = Path(request.getfixturevalue("tmp_path")) / f"values-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


KeyPath = tuple[Any, ...]


def _leaves(value: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, Any]]:
    """(path, value) of every leaf: a path is the keys and list indexes leading to it."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


_MISSING = object()


def _at(value: Any, path: KeyPath) -> Any:
    for part in path:
        if isinstance(part, int):
            if not isinstance(value, list) or part >= len(value):
                return _MISSING
        elif not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _jq(path: KeyPath) -> str:
    """The path as Argo CD's jqPathExpressions write it: list items as `[]?`."""
    return "".join("[]?" if isinstance(part, int) else f".{part}" for part in path)


def _same(rendered: Any, live: Any) -> bool:
    """Equal, or the same Kubernetes quantity written another way (the API server writes 2048Mi as 2Gi)."""
    if str(rendered) == str(live):
        return True
    try:
        return bool(host_istiod._quantity(str(rendered)) == host_istiod._quantity(str(live)))
    except ClusterError:
        return False


@pytest.mark.helm3
def test_after_istiod_ran_the_live_objects_differ_from_helm_template_only_where_the_gitops_ignore_lists_say(
    real_istiod: RealIstiod, kube: Kube, mesh_helm: Helm
) -> None:
    """What Argo CD / Flux would report as drift, derived: every field `helm template` sets whose live value differs,
    and what istiod added to the webhooks' client configuration. It must be exactly charts/istiod/README.md's
    ignoreDifferences (kind, jq path) list: nothing missing from it, nothing in it that never drifts."""
    controlplane.wait_webhooks_trusted(kube, real_istiod.revision, timeout=120)
    rendered = parse_all(
        mesh_helm.run(
            ["template", real_istiod.release, str(CHARTS / "istiod"), "--namespace", real_istiod.namespace,
             "--set", f"revision={real_istiod.revision}"]
        )
    )  # fmt: skip
    drift: set[tuple[str, str]] = set()
    for doc in rendered:
        if not isinstance(doc, dict) or not doc.get("kind"):
            continue
        group_version = doc["apiVersion"]
        group, _, version = group_version.rpartition("/")
        plural = {"EnvoyFilter": "envoyfilters"}.get(doc["kind"])
        namespace = doc["metadata"].get("namespace") or (
            None
            if doc["kind"].endswith("Configuration") or doc["kind"].startswith("Cluster")
            else real_istiod.namespace
        )
        if plural:
            live = kube.custom.get_namespaced_custom_object(group, version, namespace, plural, doc["metadata"]["name"])
        else:
            live = _read_live(kube, doc["kind"], doc["metadata"]["name"], namespace)
        for path, value in _leaves(doc):
            if path[0] in ("metadata", "status"):
                continue
            got = _at(live, path)
            if got is _MISSING or not _same(value, got):
                drift.add((doc["kind"], _jq(path)))
        if doc["kind"].endswith("WebhookConfiguration"):
            for index, hook in enumerate(live.get("webhooks") or []):
                for path, _ in _leaves(hook.get("clientConfig") or {}, ("webhooks", index, "clientConfig")):
                    if _at(doc, path) is _MISSING:
                        drift.add((doc["kind"], _jq(path)))
    readme = (CHARTS / "istiod" / "README.md").read_text()
    block = yaml.safe_load(readme.split("# Argo CD Application\n", 1)[1].split("```", 1)[0])
    ignored = {
        (entry["kind"], path) for entry in block["spec"]["ignoreDifferences"] for path in entry["jqPathExpressions"]
    }
    assert drift == ignored


def _read_live(kube: Kube, kind: str, name: str, namespace: str | None) -> dict[str, Any]:
    readers = {
        "ServiceAccount": lambda: kube.core.read_namespaced_service_account(name, namespace),
        "ConfigMap": lambda: kube.core.read_namespaced_config_map(name, namespace),
        "Service": lambda: kube.core.read_namespaced_service(name, namespace),
        "Deployment": lambda: kube.apps.read_namespaced_deployment(name, namespace),
        "Role": lambda: kube.rbac.read_namespaced_role(name, namespace),
        "RoleBinding": lambda: kube.rbac.read_namespaced_role_binding(name, namespace),
        "ClusterRole": lambda: kube.rbac.read_cluster_role(name),
        "ClusterRoleBinding": lambda: kube.rbac.read_cluster_role_binding(name),
        "PodDisruptionBudget": lambda: kube.policy.read_namespaced_pod_disruption_budget(name, namespace),
        "HorizontalPodAutoscaler": lambda: kube.autoscaling.read_namespaced_horizontal_pod_autoscaler(name, namespace),
        "MutatingWebhookConfiguration": lambda: kube.admission.read_mutating_webhook_configuration(name),
        "ValidatingWebhookConfiguration": lambda: kube.admission.read_validating_webhook_configuration(name),
    }
    if kind not in readers:
        raise AssertionError(f"the istiod chart renders a {kind}, which this test cannot read yet")
    result: dict[str, Any] = kube.api_client.sanitize_for_serialization(readers[kind]())
    return result


@pytest.mark.helm3
def test_an_upgrade_of_istiod_leaves_its_webhooks_trusted_again_and_istiod_still_answers(
    real_istiod: RealIstiod, kube: Kube, mesh_helm: Helm, namespace: Any
) -> None:
    """helm upgrade over the fields istiod wrote: Helm 4 applies server-side without a field-manager conflict and
    keeps istiod's caBundle; Helm 3 writes the rendered webhooks back without it, and istiod puts it back."""
    controlplane.wait_webhooks_trusted(kube, real_istiod.revision, timeout=120)
    mesh_helm.upgrade(
        real_istiod.release, CHARTS / "istiod", namespace=real_istiod.namespace, wait=True, timeout=180,
        set_values={"revision": real_istiod.revision},
    )  # fmt: skip
    controlplane.wait_webhooks_trusted(kube, real_istiod.revision, timeout=120)
    ns = namespace({})
    kind = "VirtualService"
    with pytest.raises(ApiException) as refused:
        _create(kube, ns, kind, _istio_object(kind, "bad", INVALID[kind][2], {"istio.io/rev": real_istiod.revision}))
    assert INVALID[kind][3] in str(refused.value.body)


@pytest.mark.helm3
def test_a_helm_4_rollback_to_the_install_revision_conflicts_only_on_the_failure_policy_istiod_owns(
    istio_base: tuple[str, str], mesh_cluster: Cluster, mesh_helm: Helm, kube: Kube, request: Any
) -> None:
    """The validators render `failurePolicy: Ignore` at install only (a deviation: upgrades leave istiod's Fail).
    A rollback re-applies the install's manifest: Helm 4 (server-side apply) then conflicts with the manager
    that set Fail, pilot-discovery, on exactly that field, and the README's `--force-conflicts` rolls back; istiod
    sets Fail again. Helm 3 merges client-side and rolls back without it."""
    if not mesh_cluster.capabilities.simulated_pods:
        request.getfixturevalue("mesh_real_pods")
    revision = f"rb{uuid.uuid4().hex[:5]}"
    istiod = install_real_istiod(
        mesh_cluster, mesh_helm, kube, CHARTS / "istiod", namespace=f"istio-{revision}", revision=revision
    )
    selector = f"istio.io/rev={revision}"

    def fails_closed() -> bool:
        hooks = [
            h for c in kube.admission.list_validating_webhook_configuration(label_selector=selector).items
            for h in c.webhooks
        ]  # fmt: skip
        return bool(hooks) and all(h.failure_policy == "Fail" for h in hooks)

    try:
        waits.wait_until(fails_closed, condition="istiod to set its validator to Fail", timeout=120)
        mesh_helm.upgrade(
            istiod.release, CHARTS / "istiod", namespace=istiod.namespace, wait=True, timeout=180,
            set_values={"revision": revision, "pilot.traceSampling": "2"},
        )  # fmt: skip
        istiod.answering = install_host(mesh_cluster, kube, istiod)
        waits.wait_until(fails_closed, condition="istiod's Fail kept by the upgrade", timeout=120)
        if mesh_helm.major >= 4:
            with pytest.raises(HelmError) as conflicted:
                mesh_helm.rollback(istiod.release, 1, namespace=istiod.namespace, wait=True, timeout=120)
            conflicts = re.findall(r'conflict with "([^"]+)" using [^:]+: (\S+)', conflicted.value.stderr)
            assert conflicts and set(conflicts) == {
                ("pilot-discovery", '.webhooks[name="rev.validation.istio.io"].failurePolicy')
            }, conflicted.value.stderr
            mesh_helm.rollback(
                istiod.release, 1, namespace=istiod.namespace, wait=True, timeout=120, extra=("--force-conflicts",)
            )
        else:
            mesh_helm.rollback(istiod.release, 1, namespace=istiod.namespace, wait=True, timeout=120)
        istiod.answering = install_host(mesh_cluster, kube, istiod)
        waits.wait_until(fails_closed, condition="istiod to set Fail again after the rollback", timeout=120)
    finally:
        remove_real_istiod(mesh_cluster, mesh_helm, kube, istiod)


def install_host(mesh_cluster: Cluster, kube: Kube, istiod: RealIstiod) -> Any:
    """The Deployment changed: on the host its istiod restarts, as a kubelet rolls the pod."""
    return run_istiod(mesh_cluster, kube, istiod.namespace, istiod.deployment)
