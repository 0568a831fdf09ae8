"""istiod on a real API server: Available, its Service, and exactly Istio 1.12's injection and validation
routing, answered by a real istiod (the shared default-revision control plane, `control_plane`): a pod istiod
injected carries its `sidecar.istio.io/status` (with the revision that injected it), a refusal names the webhook
that refused and istiod's reason."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from meshcharts import controlplane, waits
from meshcharts.cluster import Cluster
from meshcharts.helm import Helm
from meshcharts.testing.plugin import Kube
from tests.e2e.conftest import CHARTS, ISTIO_NS, ControlPlane, deployed, run_istiod, stop_istiod

# The Helm 3 subset of the e2e layer (`.ci/test` runs it with `--helm 3 -m helm3`).
pytestmark = pytest.mark.helm3


def make_namespace(kube: Kube, name: str, labels: dict[str, str]) -> str:
    kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))
    return name


def make_pod(kube: Kube, namespace: str, name: str, labels: dict[str, str] | None = None) -> None:
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels or {}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="busybox:1.36")]),
    )
    kube.core.create_namespaced_pod(namespace, pod)


@pytest.fixture
def namespaces(kube: Kube, request: pytest.FixtureRequest) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for name in made:
        with contextlib.suppress(ApiException):
            kube.core.delete_namespace(name)


def injected_pods(kube: Kube, namespaces: list[str]) -> dict[str, str]:
    """Pod -> the revision whose istiod injected it (from the `sidecar.istio.io/status` istiod writes)."""
    found = {}
    for ns in namespaces:
        for pod in kube.core.list_namespaced_pod(ns).items:
            status = (pod.metadata.annotations or {}).get(controlplane.INJECTED)
            if status:
                found[f"{ns}/{pod.metadata.name}"] = str(json.loads(status).get("revision"))
    return found


def refusal(err: ApiException) -> str:
    return err.body.decode() if isinstance(err.body, bytes) else str(err.body)


def test_istiod_becomes_available_with_its_service_ports(control_plane: ControlPlane, kube: Kube) -> None:
    deployment = waits.deployment_available(kube.apps, ISTIO_NS, "istiod")
    assert deployment.spec.selector.match_labels == {"istio": "pilot"}
    service = kube.core.read_namespaced_service("istiod", ISTIO_NS)
    ports = {(p.name, p.port, p.target_port) for p in service.spec.ports}
    assert {(port, str(target)) for _, port, target in ports} == {
        (15010, "15010"),
        (15012, "15012"),
        (443, "15017"),
        (15014, "15014"),
    }


def test_exactly_the_pods_istio_1_12_selects_reach_the_injector(
    control_plane: ControlPlane, kube: Kube, namespaces: list[str]
) -> None:
    suffix = "inj"
    enabled = make_namespace(kube, f"{suffix}-enabled", {"istio-injection": "enabled"})
    disabled = make_namespace(kube, f"{suffix}-disabled", {"istio-injection": "disabled"})
    by_rev = make_namespace(kube, f"{suffix}-rev-default", {"istio.io/rev": "default"})
    other_rev = make_namespace(kube, f"{suffix}-rev-canary", {"istio.io/rev": "canary"})
    plain = make_namespace(kube, f"{suffix}-plain", {})
    namespaces.extend([enabled, disabled, by_rev, other_rev, plain])
    cases = {
        (enabled, "plain"): ({}, True),
        (enabled, "opted-out"): ({"sidecar.istio.io/inject": "false"}, False),
        (disabled, "opted-in"): ({"sidecar.istio.io/inject": "true"}, False),
        (by_rev, "plain"): ({}, True),
        (by_rev, "opted-out"): ({"sidecar.istio.io/inject": "false"}, False),
        (other_rev, "plain"): ({}, False),
        (plain, "plain"): ({}, False),
        (plain, "opted-in"): ({"sidecar.istio.io/inject": "true"}, True),
        (plain, "rev-label"): ({"istio.io/rev": "default"}, True),
        (plain, "other-rev-label"): ({"istio.io/rev": "canary"}, False),
    }
    for (ns, name), (labels, _) in cases.items():
        make_pod(kube, ns, name, labels)
    expected = {f"{ns}/{name}": "default" for (ns, name), (_, selected) in cases.items() if selected}
    assert injected_pods(kube, namespaces) == expected


def test_default_validator_routes_istio_resources_and_its_verdict_is_enforced(
    control_plane: ControlPlane, kube: Kube, mesh_namespace: str
) -> None:
    """Every Istio resource goes to base's default validator (webhook `validation.istio.io`); one labelled with the
    revision also to istiod's own (`rev.validation.istio.io`). istiod admits the valid and refuses the invalid."""

    def virtual_service(name: str, host: str, labels: dict[str, str]) -> dict[str, Any]:
        return {
            "apiVersion": "networking.istio.io/v1beta1",
            "kind": "VirtualService",
            "metadata": {"name": name, "labels": labels},
            "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": host}}]}]},
        }

    def create(body: dict[str, Any]) -> Any:
        return kube.custom.create_namespaced_custom_object(
            "networking.istio.io", "v1beta1", mesh_namespace, "virtualservices", body
        )

    validator = kube.admission.read_validating_webhook_configuration("istiod-default-validator")
    assert {h.failure_policy for h in validator.webhooks} == {"Fail"}  # istiod answers it: it fails closed
    assert create(virtual_service("reviews", "reviews", {}))["metadata"]["name"] == "reviews"
    with pytest.raises(ApiException) as unlabelled:
        create(virtual_service("bad", "", {}))
    body = refusal(unlabelled.value)
    assert "empty domain name not allowed" in body, body
    assert '\\"validation.istio.io\\" denied' in body or '"validation.istio.io" denied' in body, body

    # istiod's own validator selects resources labelled with its revision (the revision tests of test_real_istiod show
    # it answering on its own, where no default validator routes them).
    labelled = {"istio.io/rev": "default"}
    assert create(virtual_service("revisioned", "reviews", labelled))["metadata"]["name"] == "revisioned"
    with pytest.raises(ApiException) as by_revision:
        create(virtual_service("bad-revisioned", "", labelled))
    assert "empty domain name not allowed" in refusal(by_revision.value)
    revision_validator = kube.admission.read_validating_webhook_configuration("istio-validator-istio-system")
    selects = [
        (e.key, e.operator, e.values) for h in revision_validator.webhooks for e in h.object_selector.match_expressions
    ]
    assert selects == [("istio.io/rev", "In", ["default"])]


@pytest.fixture
def canary(
    control_plane: ControlPlane, mesh_helm: Helm, kube: Kube, mesh_cluster: Cluster, tmp_path: Path
) -> Iterator[str]:
    """A second istiod, revision canary with tag prod, beside the default one, with a real istiod of its own."""
    values = tmp_path / "canary.yaml"
    values.write_text(yaml.safe_dump({"revision": "canary", "revisionTags": ["prod"]}))
    mesh_helm.install("istiod-canary", CHARTS / "istiod", namespace=ISTIO_NS, wait=True, timeout=120, values=[values])
    host = None
    try:
        host = run_istiod(mesh_cluster, kube, ISTIO_NS, "istiod-canary")
        trusted = controlplane.wait_webhooks_trusted(kube, "canary", timeout=120)
        assert set(trusted) == {
            "MutatingWebhookConfiguration istio-sidecar-injector-canary",
            "MutatingWebhookConfiguration istio-revision-tag-prod",
            "ValidatingWebhookConfiguration istio-validator-canary-istio-system",
        }
        yield "canary"
    finally:
        mesh_helm.uninstall("istiod-canary", namespace=ISTIO_NS, wait=True)
        stop_istiod(mesh_cluster, host)


def test_two_revisions_and_a_tag_inject_their_own_namespaces(
    canary: str, kube: Kube, namespaces: list[str], mesh_helm: Helm
) -> None:
    assert deployed(mesh_helm, "istiod", ISTIO_NS)
    waits.deployment_available(kube.apps, ISTIO_NS, "istiod-canary")
    waits.deployment_available(kube.apps, ISTIO_NS, "istiod")
    legacy = make_namespace(kube, "rev-legacy", {"istio-injection": "enabled"})
    canary_ns = make_namespace(kube, "rev-canary", {"istio.io/rev": "canary"})
    tagged = make_namespace(kube, "rev-tag-prod", {"istio.io/rev": "prod"})
    namespaces.extend([legacy, canary_ns, tagged])
    for ns in (legacy, canary_ns, tagged):
        make_pod(kube, ns, "app")
    assert injected_pods(kube, namespaces) == {
        f"{legacy}/app": "default",
        f"{canary_ns}/app": "canary",
        f"{tagged}/app": "canary",
    }


def test_removing_a_revision_leaves_no_webhook_behind(canary: str, mesh_helm: Helm, kube: Kube) -> None:
    def webhook_names() -> set[str]:
        mutating = {w.metadata.name for w in kube.admission.list_mutating_webhook_configuration().items}
        validating = {w.metadata.name for w in kube.admission.list_validating_webhook_configuration().items}
        return mutating | validating

    assert {
        "istio-sidecar-injector-canary",
        "istio-revision-tag-prod",
        "istio-validator-canary-istio-system",
    } <= webhook_names()
    mesh_helm.uninstall("istiod-canary", namespace=ISTIO_NS, wait=True)
    mesh_helm.install(
        "istiod-canary", CHARTS / "istiod", namespace=ISTIO_NS, wait=False, set_values={"revision": "canary"}
    )  # re-created so the fixture's teardown has it to remove
    mesh_helm.uninstall("istiod-canary", namespace=ISTIO_NS, wait=True)
    left = {n for n in webhook_names() if "canary" in n or "prod" in n}
    assert left == set()
    assert {"istio-sidecar-injector", "istio-validator-istio-system", "istiod-default-validator"} <= webhook_names()
    mesh_helm.install(
        "istiod-canary", CHARTS / "istiod", namespace=ISTIO_NS, wait=False, set_values={"revision": "canary"}
    )


def _objects_of(kube: Kube, rendered: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return sorted((o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in rendered)


def test_installed_objects_are_exactly_the_rendered_ones(
    control_plane: ControlPlane, mesh_helm: Helm, kube: Kube
) -> None:
    manifest = mesh_helm.run(["get", "manifest", "istiod", "--namespace", ISTIO_NS])
    rendered = [d for d in yaml.safe_load_all(manifest) if d]
    from kubernetes.dynamic import DynamicClient

    dyn = DynamicClient(kube.api_client)
    for obj in rendered:
        api = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        live = api.get(
            name=obj["metadata"]["name"],
            namespace=obj["metadata"].get("namespace", ISTIO_NS) if api.namespaced else None,
        ).to_dict()
        for key, value in (obj["metadata"].get("labels") or {}).items():
            assert live["metadata"]["labels"].get(key) == value, (obj["kind"], obj["metadata"]["name"], key)
        if obj["kind"] in ("ConfigMap",):
            assert live["data"] == obj["data"], obj["metadata"]["name"]
        if obj["kind"] == "Deployment":
            assert live["spec"]["selector"] == obj["spec"]["selector"]
            assert (
                live["spec"]["template"]["spec"]["containers"][0]["image"]
                == obj["spec"]["template"]["spec"]["containers"][0]["image"]
            )
    assert len(rendered) >= 15
