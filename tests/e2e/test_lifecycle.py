"""All three charts in a namespace other than istio-system: what `helm template` renders is what the
cluster holds, and uninstalling leaves nothing behind but the kept CRDs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from meshcharts.errors import HelmError
from meshcharts.helm import Helm
from meshcharts.testing import waits
from meshcharts.testing.admission import AdmissionRecorder
from meshcharts.testing.plugin import Kube
from tests.e2e.conftest import CHARTS, ISTIO_NS, istiod_values, trust_recorder
from tests.e2e.test_base import uninstall_base_and_crds

# The Helm 3 subset of the e2e layer (`.ci/test` runs it with `--helm 3 -m helm3`).
pytestmark = pytest.mark.helm3

# Written by controllers or the API server as things happen, not by any chart.
TRANSIENT = {"Event", "Lease", "Endpoints", "EndpointSlice", "ControllerRevision", "ReplicaSet", "Pod"}
MESH, GATEWAYS = "mesh", "mesh-gateways"


def listing(kube: Kube) -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of every object of every listable kind, but the transient ones and those in
    namespaces being deleted (other tests' namespaces go away while this one runs)."""
    dyn = DynamicClient(kube.api_client)
    going = {n.metadata.name for n in kube.core.list_namespace().items if n.metadata.deletion_timestamp}
    seen: set[tuple[str, str, str]] = set()
    for resource in dyn.resources.search():
        if "list" not in (resource.verbs or []) or resource.kind in TRANSIENT or resource.kind.endswith("List"):
            continue
        if "/" in resource.name:  # subresources
            continue
        try:
            items = resource.get().items
        except (ApiException, ValueError):
            continue
        for item in items:
            namespace = item.metadata.namespace or ""
            if namespace in going or (resource.kind == "Namespace" and item.metadata.name in going):
                continue
            seen.add((resource.kind, namespace, item.metadata.name))
    return seen


def subset_problems(rendered: Any, live: Any, path: str = "") -> list[str]:
    """Where a rendered value is not in the live object (the API server may add fields, never drop ours)."""
    if isinstance(rendered, dict):
        if not isinstance(live, dict):
            return [f"{path}: rendered a mapping, live has {live!r}"]
        problems = []
        for key, value in rendered.items():
            if key not in live:
                problems.append(f"{path}.{key}: rendered but missing in the cluster")
            else:
                problems.extend(subset_problems(value, live[key], f"{path}.{key}"))
        return problems
    if isinstance(rendered, list):
        if not isinstance(live, list) or len(live) != len(rendered):
            return [f"{path}: rendered {len(rendered)} items, live has {live!r}"]
        return [
            p
            for i, (r, v) in enumerate(zip(rendered, live, strict=True))
            for p in subset_problems(r, v, f"{path}[{i}]")
        ]
    if rendered != live and str(rendered) != str(live) and not same_quantity(path, rendered, live):
        return [f"{path}: rendered {rendered!r}, live {live!r}"]
    return []


def same_quantity(path: str, rendered: Any, live: Any) -> bool:
    """The API server writes resource quantities in canonical form (2048Mi becomes 2Gi)."""
    if ".resources." not in path:
        return False
    from kubernetes.utils import parse_quantity

    try:
        return bool(parse_quantity(rendered) == parse_quantity(live))
    except ValueError:
        return False


def compare_with_cluster(kube: Kube, rendered: list[dict[str, Any]], namespace: str) -> list[str]:
    dyn = DynamicClient(kube.api_client)
    problems = []
    for obj in rendered:
        api = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        ns = obj["metadata"].get("namespace", namespace) if api.namespaced else None
        live = api.get(name=obj["metadata"]["name"], namespace=ns).to_dict()
        body = {k: v for k, v in obj.items() if k not in ("status",)}
        problems += [f"{obj['kind']}/{obj['metadata']['name']}{p}" for p in subset_problems(body, live)]
    return problems


@pytest.fixture
def empty_cluster(mesh_helm: Helm, kube: Kube) -> None:
    """No Istio release and no Istio CRD: the shared installs of other tests are removed (they come back)."""
    for release, namespace in (("istiod-canary", ISTIO_NS), ("istiod", ISTIO_NS)):
        try:
            mesh_helm.uninstall(release, namespace=namespace, wait=True)
        except HelmError as err:
            if "not found" not in err.stderr:
                raise
    uninstall_base_and_crds(mesh_helm, kube)
    for name in (MESH, GATEWAYS):
        try:
            kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        except ApiException as err:
            if err.status != 409:
                raise
        # Controllers give every namespace a default ServiceAccount and the root CA ConfigMap; let them
        # finish before the "before" listing is taken.
        waits.wait_until(
            lambda name=name: _populated(kube, name), condition=f"namespace {name} to be populated", timeout=30
        )


def _populated(kube: Kube, namespace: str) -> bool:
    try:
        kube.core.read_namespaced_service_account("default", namespace)
        kube.core.read_namespaced_config_map("kube-root-ca.crt", namespace)
    except ApiException:
        return False
    return True


def test_three_charts_outside_istio_system_match_their_templates_and_uninstall_cleanly(
    empty_cluster: None, mesh_helm: Helm, kube: Kube, recorder: AdmissionRecorder, tmp_path: Path
) -> None:
    before = listing(kube)
    installs = [
        (
            "mesh-base",
            MESH,
            CHARTS / "base",
            {"global": {"istioNamespace": MESH}, "base": {"validationURL": recorder.url("/validate/base")}},
        ),
        ("istiod", MESH, CHARTS / "istiod", {"global": {"istioNamespace": MESH}, **istiod_values(recorder)}),
        ("ingress", GATEWAYS, CHARTS / "gateway", {}),
    ]
    for release, namespace, chart, values in installs:
        path = tmp_path / f"{release}-values.yaml"
        path.write_text(yaml.safe_dump(values))
        rendered = [
            d for d in yaml.safe_load_all(mesh_helm.template(release, chart, namespace=namespace, values=[path])) if d
        ]
        mesh_helm.install(release, chart, namespace=namespace, values=[path], wait=True, timeout=120)
        if release == "istiod":
            trust_recorder(kube, recorder, "MutatingWebhookConfiguration", f"istio-sidecar-injector-{MESH}")
        assert compare_with_cluster(kube, rendered, namespace) == [], release
    waits.deployment_available(kube.apps, GATEWAYS, "ingress")

    for release, namespace, _, _ in reversed(installs):
        mesh_helm.uninstall(release, namespace=namespace, wait=True)
    kept = [c for c in kube.ext.list_custom_resource_definition().items if c.metadata.name.endswith("istio.io")]
    assert len(kept) == 14
    # The API server registers an APIService per served group version of a CRD; they go with the CRDs.
    crds = {("CustomResourceDefinition", "", c.metadata.name) for c in kept} | {
        ("APIService", "", f"{v.name}.{c.spec.group}") for c in kept for v in c.spec.versions
    }
    waits.wait_until(
        lambda: listing(kube) - before == crds,
        condition="only the kept CRDs to remain",
        timeout=60,
        describe=lambda: f"left: {sorted(listing(kube) - before - crds)}",
    )
    after = listing(kube)
    going = {n.metadata.name for n in kube.core.list_namespace().items if n.metadata.deletion_timestamp}
    assert {o for o in before - after if o[1] not in going and not (o[0] == "Namespace" and o[2] in going)} == set()
    # Later tests get the shared base back through the istio_base fixture.
    uninstall_base_and_crds(mesh_helm, kube)
