"""The base chart on a real API server: CRDs Established and enforcing their schemas, kept on uninstall,
upgraded in place, and adoptable from a crds/-style install."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from meshcharts import adopt, crds, waits
from meshcharts.errors import HelmError
from meshcharts.helm import Helm
from meshcharts.testing.plugin import Kube
from tests.e2e.conftest import BASE_RELEASE, CHARTS
from tests.e2e.slate import API_TYPES, CRD_NAMES, crd_exists, uninstall_base_and_crds


def create(kube: Kube, obj: dict[str, Any], namespace: str) -> dict[str, Any]:
    group, version = obj["apiVersion"].split("/")
    api = next(t for t in API_TYPES if t.group == group and t.kind == obj["kind"])
    plural = api.name.split(".", 1)[0]
    body = copy.deepcopy(obj)
    body["metadata"] = {**body.get("metadata", {}), "namespace": namespace}
    return kube.custom.create_namespaced_custom_object(
        group,
        version,
        namespace,
        plural,
        body,  # type: ignore[no-any-return]
        field_validation="Strict",
    )


@pytest.fixture
def fresh_base(mesh_helm: Helm, kube: Kube) -> Any:
    uninstall_base_and_crds(mesh_helm, kube)
    yield
    uninstall_base_and_crds(mesh_helm, kube)


def test_all_crds_are_established_after_install(fresh_base: None, mesh_helm: Helm, kube: Kube) -> None:
    """How fast is bench/'s to say; here each CRD must become Established, with a deadline that names it."""
    mesh_helm.install(BASE_RELEASE[0], CHARTS / "base", namespace=BASE_RELEASE[1], wait=False)
    for name in CRD_NAMES:
        waits.crd_established(kube.ext, name, timeout=120)
    assert len(CRD_NAMES) == 14
    for api in API_TYPES:
        crd = kube.ext.read_custom_resource_definition(api.name)
        assert [v.name for v in crd.spec.versions] == [v.name for v in api.versions]
        assert crd.metadata.annotations["helm.sh/resource-policy"] == "keep"


def test_a_valid_resource_of_every_kind_is_accepted(istio_base: Any, kube: Kube, mesh_namespace: str) -> None:
    created = []
    for api in API_TYPES:
        obj = crds.examples(api)
        created.append(create(kube, obj, mesh_namespace)["kind"])
    assert sorted(created) == sorted(t.kind for t in API_TYPES)


def test_istio_1_12_new_apis_and_failover_priority_are_accepted(
    istio_base: Any, kube: Kube, mesh_namespace: str
) -> None:
    wasm = {
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": {"name": "auth"},
        "spec": {
            "selector": {"matchLabels": {"app": "gw"}},
            "url": "oci://example.com/filters/auth:v1",
            "sha256": "a" * 64,
            "imagePullPolicy": "IfNotPresent",
            "phase": "AUTHN",
            "priority": 10,
            "pluginConfig": {"header": "x-auth", "nested": {"any": ["thing", 1]}},
        },
    }
    telemetry = {
        "apiVersion": "telemetry.istio.io/v1alpha1",
        "kind": "Telemetry",
        "metadata": {"name": "mesh"},
        "spec": {
            "metrics": [
                {
                    "providers": [{"name": "prometheus"}],
                    "overrides": [
                        {
                            "match": {"metric": "REQUEST_COUNT", "mode": "CLIENT"},
                            "tagOverrides": {"response_code": {"operation": "REMOVE"}},
                        }
                    ],
                }
            ],
            "accessLogging": [{"providers": [{"name": "envoy"}], "disabled": False}],
        },
    }
    rule = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "DestinationRule",
        "metadata": {"name": "reviews"},
        "spec": {
            "host": "reviews.default.svc.cluster.local",
            "trafficPolicy": {
                "loadBalancer": {
                    "localityLbSetting": {
                        "enabled": True,
                        "failoverPriority": ["topology.istio.io/network", "topology.kubernetes.io/region"],
                    }
                },
                "outlierDetection": {"consecutive5xxErrors": 3, "interval": "10s", "baseEjectionTime": "30s"},
            },
        },
    }
    for obj in (wasm, telemetry, rule):
        assert create(kube, obj, mesh_namespace)["metadata"]["name"] == obj["metadata"]["name"]


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("networking.istio.io/v1beta1", {"kind": "DestinationRule", "spec": {"host": 5}}, "spec.host"),
    (
        "networking.istio.io/v1beta1",
        {"kind": "DestinationRule", "spec": {"host": "a", "subsets": {"name": "x"}}},
        "spec.subsets",
    ),
    (
        "networking.istio.io/v1beta1",
        {"kind": "DestinationRule", "spec": {"host": "a", "trafficPolicy": {"loadBalancer": {"simple": "FASTEST"}}}},
        "spec.trafficPolicy.loadBalancer.simple",
    ),
    ("networking.istio.io/v1beta1", {"kind": "DestinationRule", "spec": {"host": "a", "color": "red"}}, "color"),
    (
        "networking.istio.io/v1beta1",
        {
            "kind": "DestinationRule",
            "spec": {"host": "a", "trafficPolicy": {"connectionPool": {"tcp": {"maxConnections": "many"}}}},
        },
        "spec.trafficPolicy.connectionPool.tcp.maxConnections",
    ),
    ("networking.istio.io/v1beta1", {"kind": "VirtualService", "spec": {"hosts": "reviews"}}, "spec.hosts"),
    (
        "networking.istio.io/v1beta1",
        {"kind": "VirtualService", "spec": {"hosts": ["r"], "http": [{"timeout": 5}]}},
        "spec.http[0].timeout",
    ),
    (
        "networking.istio.io/v1beta1",
        {"kind": "VirtualService", "spec": {"hosts": ["r"], "http": [{"retries": {"attempts": "three"}}]}},
        "spec.http[0].retries.attempts",
    ),
    (
        "networking.istio.io/v1beta1",
        {"kind": "Gateway", "spec": {"servers": [{"port": {"number": "eighty"}}]}},
        "spec.servers[0].port.number",
    ),
    (
        "networking.istio.io/v1beta1",
        {"kind": "Gateway", "spec": {"servers": [{"tls": {"mode": "LOOSE"}}]}},
        "spec.servers[0].tls.mode",
    ),
    (
        "networking.istio.io/v1beta1",
        {"kind": "ServiceEntry", "spec": {"hosts": ["a"], "resolution": "MAGIC"}},
        "spec.resolution",
    ),
    (
        "networking.istio.io/v1beta1",
        {"kind": "ServiceEntry", "spec": {"hosts": ["a"], "location": "INSIDE"}},
        "spec.location",
    ),
    (
        "networking.istio.io/v1beta1",
        {"kind": "Sidecar", "spec": {"outboundTrafficPolicy": {"mode": "OPEN"}}},
        "spec.outboundTrafficPolicy.mode",
    ),
    ("networking.istio.io/v1beta1", {"kind": "WorkloadEntry", "spec": {"address": ["1.2.3.4"]}}, "spec.address"),
    (
        "networking.istio.io/v1alpha3",
        {"kind": "EnvoyFilter", "spec": {"configPatches": [{"applyTo": "EVERYTHING"}]}},
        "spec.configPatches[0].applyTo",
    ),
    ("security.istio.io/v1beta1", {"kind": "AuthorizationPolicy", "spec": {"action": "PERMIT"}}, "spec.action"),
    (
        "security.istio.io/v1beta1",
        {"kind": "PeerAuthentication", "spec": {"mtls": {"mode": "ALWAYS"}}},
        "spec.mtls.mode",
    ),
    (
        "security.istio.io/v1beta1",
        {"kind": "RequestAuthentication", "spec": {"jwtRules": [{"issuer": ["a"]}]}},
        "spec.jwtRules[0].issuer",
    ),
    ("extensions.istio.io/v1alpha1", {"kind": "WasmPlugin", "spec": {"phase": "FIRST"}}, "spec.phase"),
    ("extensions.istio.io/v1alpha1", {"kind": "WasmPlugin", "spec": {"priority": "high"}}, "spec.priority"),
    (
        "telemetry.istio.io/v1alpha1",
        {"kind": "Telemetry", "spec": {"tracing": [{"randomSamplingPercentage": "all"}]}},
        "spec.tracing[0].randomSamplingPercentage",
    ),
    (
        "telemetry.istio.io/v1alpha1",
        {"kind": "Telemetry", "spec": {"metrics": [{"overrides": [{"match": {"mode": "BOTH"}}]}]}},
        "spec.metrics[0].overrides[0].match.mode",
    ),
    (
        "networking.istio.io/v1alpha3",
        {"kind": "WorkloadGroup", "spec": {"template": {"ports": {"http": "80"}}}},
        "spec.template.ports.http",
    ),
]


@pytest.mark.parametrize(("api_version", "obj", "field"), INVALID, ids=[f"{o['kind']}-{f}" for _, o, f in INVALID])
def test_an_invalid_resource_is_rejected_naming_the_field(
    istio_base: Any, kube: Kube, mesh_namespace: str, api_version: str, obj: dict[str, Any], field: str
) -> None:
    body = {"apiVersion": api_version, "metadata": {"name": "invalid"}, **obj}
    with pytest.raises(ApiException) as caught:
        create(kube, body, mesh_namespace)
    assert caught.value.status in (400, 422), caught.value.body
    assert field in caught.value.body, caught.value.body


def _chart_with_new_field(tmp_path: Path, version: str) -> Path:
    """charts/base copied with one more WasmPlugin field and another version: what a later release ships."""
    chart = tmp_path / "base"
    shutil.copytree(CHARTS / "base", chart)
    meta = chart / "Chart.yaml"
    meta.write_text(meta.read_text().replace("\nversion: ", f"\nversion: {version}\n# was: ", 1))
    crd_file = chart / "templates" / "customresourcedefinition.yaml"
    text = crd_file.read_text()
    marker = "  name: wasmplugins.extensions.istio.io\n"
    head, tail = text.split(marker, 1)
    indent = next(line[: len(line) - len(line.lstrip())] for line in tail.splitlines() if line.strip() == "pluginName:")
    spec_props = f"{indent}pluginName:\n"
    tail = tail.replace(spec_props, f"{indent}failStrategy:\n{indent}  type: string\n" + spec_props, 1)
    crd_file.write_text(head + marker + tail)
    return chart


def test_upgrade_updates_a_crd_and_uninstall_keeps_crds_and_resources(
    fresh_base: None, mesh_helm: Helm, kube: Kube, mesh_namespace: str, tmp_path: Path
) -> None:
    # No default validator here: after an upgrade its failurePolicy is istiod's to set (Fail by default),
    # and this test runs no istiod to answer it.
    no_validator = {"defaultRevision": ""}
    mesh_helm.install(
        BASE_RELEASE[0], CHARTS / "base", namespace=BASE_RELEASE[1], wait=True, timeout=60, set_values=no_validator
    )
    waits.crd_established(kube.ext, "wasmplugins.extensions.istio.io")
    plugin = {
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": {"name": "p1"},
        "spec": {"url": "oci://example.com/p:1"},
    }
    create(kube, plugin, mesh_namespace)
    newer = {
        **plugin,
        "metadata": {"name": "p2"},
        "spec": {"url": "oci://example.com/p:1", "failStrategy": "FAIL_OPEN"},
    }
    with pytest.raises(ApiException) as caught:
        create(kube, newer, mesh_namespace)
    assert "failStrategy" in caught.value.body

    mesh_helm.upgrade(
        BASE_RELEASE[0],
        _chart_with_new_field(tmp_path, "1.12.99"),
        namespace=BASE_RELEASE[1],
        wait=True,
        set_values=no_validator,
    )
    waits.wait_until(
        lambda: _accepts(kube, newer, mesh_namespace), condition="WasmPlugin to accept failStrategy", timeout=10
    )

    mesh_helm.uninstall(BASE_RELEASE[0], namespace=BASE_RELEASE[1], wait=True)
    assert all(crd_exists(kube, name) for name in CRD_NAMES)
    names = [
        i["metadata"]["name"]
        for i in kube.custom.list_namespaced_custom_object(
            "extensions.istio.io", "v1alpha1", mesh_namespace, "wasmplugins"
        )["items"]
    ]
    assert sorted(names) == ["p1", "p2"]


def _accepts(kube: Kube, obj: dict[str, Any], namespace: str) -> bool:
    try:
        create(kube, obj, namespace)
    except ApiException as err:
        if "failStrategy" in str(err.body):
            return False
        raise
    return True


def test_crds_from_a_crds_folder_install_are_adopted_with_one_command(
    fresh_base: None, mesh_helm: Helm, kube: Kube, tmp_path: Path
) -> None:
    rendered = mesh_helm.template(
        "old",
        CHARTS / "base",
        namespace=BASE_RELEASE[1],
        extra=("--show-only", "templates/customresourcedefinition.yaml"),
    )
    for doc in yaml.safe_load_all(rendered):
        if doc:  # as Istio 1.12's crds/ folder left them: no Helm ownership metadata
            doc["metadata"].pop("labels", None)
            doc["metadata"].pop("annotations", None)
            kube.ext.create_custom_resource_definition(doc)
    with pytest.raises(HelmError) as caught:
        mesh_helm.install(BASE_RELEASE[0], CHARTS / "base", namespace=BASE_RELEASE[1], wait=True)
    assert "exists and cannot be imported" in caught.value.stderr

    result = adopt.adopt_crds(kube.ext, CRD_NAMES, release=BASE_RELEASE[0], namespace=BASE_RELEASE[1])
    assert sorted(result.adopted) == CRD_NAMES and result.absent == []
    mesh_helm.install(BASE_RELEASE[0], CHARTS / "base", namespace=BASE_RELEASE[1], wait=True)
    crd = kube.ext.read_custom_resource_definition("telemetries.telemetry.istio.io")
    assert crd.metadata.labels["app.kubernetes.io/managed-by"] == "Helm"
    assert crd.metadata.annotations["helm.sh/resource-policy"] == "keep"
    again = adopt.adopt_crds(kube.ext, CRD_NAMES, release=BASE_RELEASE[0], namespace=BASE_RELEASE[1])
    assert sorted(again.already) == CRD_NAMES
