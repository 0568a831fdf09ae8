"""All three charts in a namespace other than istio-system: what `helm template` renders is what the
cluster holds (but for what istiod writes into its webhooks), istiod of that namespace answers them, and
uninstalling leaves nothing behind but the kept CRDs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from meshcharts import controlplane, waits
from meshcharts.cluster import Cluster
from meshcharts.helm import Helm
from meshcharts.testing.plugin import Kube
from tests.cluster_fixtures import ISTIOD_WRITES_EVERYWHERE, Shared, drop_shared_istiod
from tests.e2e.conftest import CHARTS, ISTIO_NS, run_istiod, stop_istiod
from tests.e2e.slate import uninstall_base_and_crds

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


ISTIOD_WRITES_AT_HOME = {
    ("ConfigMap", "istio-leader"),
    ("ConfigMap", "istio-namespace-controller-election"),
    ("Secret", "istio-ca-secret"),
}


def runtime_write_of_istiod(obj: tuple[str, str, str]) -> bool:
    """What istiod creates as it runs, not the charts, and Istio leaves at uninstall: its root certificate (and,
    this istiod being 1.31, its CRL) in each namespace; its leader-election records and its self-signed CA's key
    pair in its own."""
    kind, namespace, name = obj
    if kind == "ConfigMap" and name in ISTIOD_WRITES_EVERYWHERE:
        return True
    return namespace == MESH and (kind, name) in ISTIOD_WRITES_AT_HOME


def compare_with_cluster(kube: Kube, rendered: list[dict[str, Any]], namespace: str) -> list[str]:
    dyn = DynamicClient(kube.api_client)
    problems = []
    for obj in rendered:
        api = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        ns = obj["metadata"].get("namespace", namespace) if api.namespaced else None
        live = api.get(name=obj["metadata"]["name"], namespace=ns).to_dict()
        body = {k: v for k, v in obj.items() if k not in ("status",)}
        problems += [
            f"{obj['kind']}/{obj['metadata']['name']}{p}"
            for p in subset_problems(body, live)
            if not written_by_istiod(obj["kind"], p)
        ]
    return problems


def written_by_istiod(kind: str, problem: str) -> bool:
    """istiod sets its validators to fail closed once it answers them (the charts render Ignore; the GitOps ignore
    lists of the charts' READMEs name the same field); its caBundle is not rendered, so never compared."""
    return kind == "ValidatingWebhookConfiguration" and ".failurePolicy: rendered 'Ignore', live 'Fail'" in problem


@pytest.fixture
def empty_cluster(mesh_helm: Helm, kube: Kube, mesh_cluster: Cluster, shared_installs: Shared, tmp_path: Path) -> None:
    """No Istio release and no Istio CRD: the shared installs of other tests are removed (they come back)."""
    drop_shared_istiod(mesh_cluster, mesh_helm, shared_installs, tmp_path)
    for release in ("istiod-canary", "istiod"):
        mesh_helm.uninstall(release, namespace=ISTIO_NS, wait=True, ignore_not_found=True)
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
    request: pytest.FixtureRequest,
    empty_cluster: None,
    mesh_helm: Helm,
    kube: Kube,
    mesh_cluster: Cluster,
    tmp_path: Path,
) -> None:
    if not mesh_cluster.capabilities.simulated_pods:
        request.getfixturevalue("mesh_real_pods")
    before = listing(kube)
    installs = [
        ("mesh-base", MESH, CHARTS / "base", {"global": {"istioNamespace": MESH}}),
        ("istiod", MESH, CHARTS / "istiod", {"global": {"istioNamespace": MESH}}),
        ("ingress", GATEWAYS, CHARTS / "gateway", {}),
    ]
    host = None
    try:
        for release, namespace, chart, values in installs:
            path = tmp_path / f"{release}-values.yaml"
            path.write_text(yaml.safe_dump(values))
            rendered = [
                d
                for d in yaml.safe_load_all(mesh_helm.template(release, chart, namespace=namespace, values=[path]))
                if d
            ]
            mesh_helm.install(release, chart, namespace=namespace, values=[path], wait=True, timeout=120)
            if release == "istiod":
                host = run_istiod(mesh_cluster, kube, MESH, "istiod")
                # Its own webhooks and base's default validator (which points at istiod in this namespace): every
                # webhook configuration of the default revision.
                controlplane.wait_webhooks_trusted(kube, "", timeout=120)
            assert compare_with_cluster(kube, rendered, namespace) == [], release
        waits.deployment_available(kube.apps, GATEWAYS, "ingress")
        pods = kube.core.list_namespaced_pod(GATEWAYS, label_selector="app=ingress").items
        assert pods and all(controlplane.INJECTED in (p.metadata.annotations or {}) for p in pods)
    finally:
        for release, namespace, _, _ in reversed(installs):
            mesh_helm.uninstall(release, namespace=namespace, wait=True, ignore_not_found=True)
        stop_istiod(mesh_cluster, host)

    kept = [c for c in kube.ext.list_custom_resource_definition().items if c.metadata.name.endswith("istio.io")]
    assert len(kept) == 14
    # The API server registers an APIService per served group version of a CRD; they go with the CRDs.
    crds = {("CustomResourceDefinition", "", c.metadata.name) for c in kept} | {
        ("APIService", "", f"{v.name}.{c.spec.group}") for c in kept for v in c.spec.versions
    }
    waits.wait_until(
        lambda: {o for o in listing(kube) - before if not runtime_write_of_istiod(o)} == crds,
        condition="only the kept CRDs (and what istiod wrote as it ran) to remain",
        timeout=60,
        describe=lambda: f"left: {sorted(listing(kube) - before - crds)}",
    )
    after = listing(kube)
    going = {n.metadata.name for n in kube.core.list_namespace().items if n.metadata.deletion_timestamp}
    assert {o for o in before - after if o[1] not in going and not (o[0] == "Namespace" and o[2] in going)} == set()
    # Later tests get the shared base back through the istio_base fixture.
    uninstall_base_and_crds(mesh_helm, kube)
