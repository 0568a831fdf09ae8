"""The steps of an upgrade path and what each checks, shared by the upgrade tests (same-line, cross-minor, canary)."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from meshcharts import controlplane, lint, waits
from meshcharts._yaml import parse_all
from meshcharts.cluster import Cluster
from meshcharts.controlplane import INJECTED
from meshcharts.helm import Helm
from meshcharts.testing.plugin import Kube
from tests import REPO
from tests.cluster_fixtures import BASE_RELEASE, istiod_deployment, run_istiod, stop_istiod

WORKLOADS = ("Deployment", "DaemonSet")


WEBHOOK_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


def scenario_values(chart: str, scenario: str, namespace: str) -> dict[str, Any]:
    """The scenario's values (ci/values/<chart>/<scenario>.yaml); istiod's namespace is the path's own."""
    values: dict[str, Any] = yaml.safe_load((REPO / "ci" / "values" / chart / f"{scenario}.yaml").read_text()) or {}
    if chart == "istiod":
        values.setdefault("global", {})["istioNamespace"] = namespace
    return values


def manifest_objects(helm: Helm, release: str, namespace: str) -> list[dict[str, Any]]:
    """The objects of the release's current revision, read back with `helm get manifest` (after a rollback,
    which prints no release)."""
    return [d for d in parse_all(helm.run(["get", "manifest", release, "--namespace", namespace])) if d]


# `helm install` and `helm upgrade` print the release they stored with `-o json`: its manifest is what
# `helm get manifest` would read back, without another Helm process listing the release's secrets (issue 25).
AS_JSON = ("-o", "json")


def printed_objects(output: str) -> list[dict[str, Any]]:
    """The objects of the release that `helm install/upgrade -o json` printed (hooks are not in it, as in
    `helm get manifest`)."""
    try:
        manifest = json.loads(output)["manifest"]
    except (ValueError, KeyError, TypeError) as err:
        raise AssertionError(f"helm -o json printed no release with a manifest: {err}\n{output[:2000]}") from err
    return [d for d in parse_all(manifest) if d]


def live_selectors(kube: Kube, objects: list[dict[str, Any]], namespace: str) -> dict[str, Any]:
    selectors: dict[str, Any] = {}
    for obj in objects:
        name, kind = obj["metadata"]["name"], obj["kind"]
        if kind == "Deployment":
            selectors[f"{kind}/{name}"] = kube.apps.read_namespaced_deployment(name, namespace).spec.selector.to_dict()
        elif kind == "DaemonSet":
            selectors[f"{kind}/{name}"] = kube.apps.read_namespaced_daemon_set(name, namespace).spec.selector.to_dict()
        elif kind == "Service":
            selectors[f"{kind}/{name}"] = kube.core.read_namespaced_service(name, namespace).spec.selector
    return selectors


def release_webhooks(kube: Kube, release: str, namespace: str) -> set[tuple[str, str]]:
    """Webhook configurations in the cluster that carry this release's ownership annotations."""
    found = set()
    for kind, items in (
        ("MutatingWebhookConfiguration", kube.admission.list_mutating_webhook_configuration().items),
        ("ValidatingWebhookConfiguration", kube.admission.list_validating_webhook_configuration().items),
    ):
        for item in items:
            ann = item.metadata.annotations or {}
            if (
                ann.get("meta.helm.sh/release-name") == release
                and ann.get("meta.helm.sh/release-namespace") == namespace
            ):
                found.add((kind, item.metadata.name))
    return found


INVALID_FOR_ISTIOD = (
    "empty domain name not allowed",
    {"hosts": ["web"], "http": [{"route": [{"destination": {"host": ""}}]}]},
)


def answered(
    mesh_cluster: Cluster, kube: Kube, chart: str, objects: list[dict[str, Any]], namespace: str, user_namespace: str
) -> Any:
    """For an istiod release: run (restart, on the host) the real istiod of its Deployment, wait until its CA is in
    every webhook of the release again, and have it refuse an invalid VirtualService of its revision (a dry run).
    Returns the host istiod started, if any. For the gateway: its pods were injected by istiod."""
    if chart == "gateway":
        for obj in objects:
            if obj["kind"] == "Deployment":
                selector = kube.apps.read_namespaced_deployment(obj["metadata"]["name"], namespace).spec.selector
                labels = ",".join(f"{k}={v}" for k, v in selector.match_labels.items())
                pods = kube.core.list_namespaced_pod(namespace, label_selector=labels).items
                assert pods, f"no pod of {obj['metadata']['name']}"
                uninjected = [p.metadata.name for p in pods if INJECTED not in (p.metadata.annotations or {})]
                assert not uninjected, f"pods istiod did not inject: {uninjected}"
        return None
    if chart != "istiod":
        return None
    deployment = istiod_deployment(objects)
    host = run_istiod(mesh_cluster, kube, namespace, deployment)
    revision = kube.apps.read_namespaced_deployment(deployment, namespace).spec.template.metadata.labels["istio.io/rev"]
    # The path's istiod is the only one of its revision here (sole_default_istiod): these are its webhooks.
    controlplane.wait_webhooks_trusted(kube, revision, timeout=120)
    reason, spec = INVALID_FOR_ISTIOD
    body = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": "refused", "labels": {"istio.io/rev": revision}},
        "spec": spec,
    }
    try:
        kube.custom.create_namespaced_custom_object(
            "networking.istio.io", "v1beta1", user_namespace, "virtualservices", body, dry_run="All"
        )
    except ApiException as err:
        assert reason in str(err.body), err.body
    else:
        raise AssertionError(f"istiod of revision {revision} admitted an invalid VirtualService")
    return host


def wait_workloads(kube: Kube, objects: list[dict[str, Any]], namespace: str) -> None:
    for obj in objects:
        if obj["kind"] == "Deployment":
            waits.deployment_available(kube.apps, namespace, obj["metadata"]["name"], timeout=60)
        elif obj["kind"] == "DaemonSet":
            waits.daemonset_ready(kube.apps, namespace, obj["metadata"]["name"], timeout=60)


USER_KINDS = {
    "virtualservices": ("networking.istio.io", "v1beta1"),
    "wasmplugins": ("extensions.istio.io", "v1alpha1"),
}


def create_user_resources(kube: Kube, chart: str, namespace: str) -> dict[tuple[str, str], dict[str, Any]]:
    """What users have in the cluster while they upgrade: Istio resources; each as the API server stored it."""
    bodies = [
        (
            "virtualservices",
            {
                "apiVersion": "networking.istio.io/v1beta1",
                "kind": "VirtualService",
                "metadata": {"name": "users-vs"},
                "spec": {"hosts": ["reviews"], "http": [{"route": [{"destination": {"host": "reviews"}}]}]},
            },
        )
    ]
    if chart == "base":
        bodies.append(
            (
                "wasmplugins",
                {
                    "apiVersion": "extensions.istio.io/v1alpha1",
                    "kind": "WasmPlugin",
                    "metadata": {"name": "users-wasm"},
                    "spec": {"url": "oci://example.com/filter:1", "phase": "AUTHN"},
                },
            )
        )
    made = {}
    for plural, body in bodies:
        group, version = USER_KINDS[plural]
        stored = kube.custom.create_namespaced_custom_object(group, version, namespace, plural, body)
        made[(plural, body["metadata"]["name"])] = stored
    return made


def user_resources_intact(kube: Kube, namespace: str, made: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Each user object is the same object (uid) with the same spec as when it was created."""
    for (plural, name), before in made.items():
        group, version = USER_KINDS[plural]
        now = kube.custom.get_namespaced_custom_object(group, version, namespace, plural, name)
        assert now["metadata"]["uid"] == before["metadata"]["uid"], f"{plural}/{name} was deleted and re-created"
        assert now["spec"] == before["spec"], f"{plural}/{name} changed: {before['spec']} -> {now['spec']}"


def workloads_kept(before: dict[str, Any], now: dict[str, Any]) -> None:
    """Every Deployment, DaemonSet and Service the old version had is still there, with the same selector."""
    dropped = sorted(set(before) - set(now))
    assert not dropped, f"the upgrade dropped {dropped}: what users route to them stops"
    changed = {key: (before[key], now[key]) for key in before if before[key] != now[key]}
    assert not changed, f"selectors changed: {changed}"


def live_crds(kube: Kube, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions of a release as the API server holds them."""
    return [
        kube.api_client.sanitize_for_serialization(kube.ext.read_custom_resource_definition(o["metadata"]["name"]))
        for o in objects
        if o["kind"] == "CustomResourceDefinition"
    ]


def crds_kept_what_was_served(kube: Kube, before: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
    """Every CRD, served version and schema field the cluster had before the upgrade is still there and no
    narrower (lint's rules, on the live objects): users' stored objects keep their fields."""
    broken = lint.compare_crds(before, live_crds(kube, new))
    assert not broken, "the upgrade took away what users' objects use:\n" + "\n".join(broken)


def rollback_flags(helm: Helm) -> tuple[str, ...]:
    """What the README tells Helm 4 users to roll back with while istiod runs: the revision rolled back to was an
    install, whose validators render `failurePolicy: Ignore`, a field istiod owns once it set it to Fail (a
    server-side apply conflict otherwise; test_real_istiod shows it). Helm 3 merges client-side: no flag."""
    return ("--force-conflicts",) if helm.major >= 4 else ()


def path_slot(
    request: pytest.FixtureRequest, chart: str, mesh_cluster: Cluster, mesh_namespace: str
) -> tuple[str, str]:
    """The release and namespace a path of `chart` uses, and what must be in the cluster first: a clean slate for
    base; for istiod base and no other default-revision istiod (its own will answer); for the gateway the shared
    control plane, whose istiod injects its pods. Where no pod runs (and not local), istiod cannot answer: skips."""
    if chart == "base":
        request.getfixturevalue("base_slate")
        return BASE_RELEASE
    if not mesh_cluster.capabilities.simulated_pods:
        request.getfixturevalue("mesh_real_pods")
    request.getfixturevalue("control_plane" if chart == "gateway" else "sole_default_istiod")
    # The release names users have: the gateway's name is what its selector derives from.
    return {"gateway": "istio-ingressgateway", "istiod": "istiod"}[chart], mesh_namespace


def pod(kube: Kube, namespace: str, name: str) -> None:
    kube.core.create_namespaced_pod(
        namespace,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="busybox:1.36")]),
        ),
    )


@dataclass
class RevisionIstiods:
    mesh_cluster: Cluster
    kube: Kube
    hosts: list[Any] = field(default_factory=list)

    def run(self, revision: str, namespace: str = BASE_RELEASE[1]) -> None:
        """Run the real istiod of `istiod-<revision>` (restart it, on the host, after its Deployment changed) and
        wait until its CA is in every webhook configuration of the revision."""
        self.hosts.append(run_istiod(self.mesh_cluster, self.kube, namespace, f"istiod-{revision}"))
        controlplane.wait_webhooks_trusted(self.kube, revision, timeout=120)

    def stop(self) -> None:
        for host in self.hosts:
            with contextlib.suppress(Exception):
                stop_istiod(self.mesh_cluster, host)


def _dry_run_revision(kube: Kube, namespace: str) -> str | None:
    """The revision whose istiod injects a pod created now in `namespace` (a dry run: no side effects)."""
    made = kube.core.create_namespaced_pod(
        namespace,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name=f"probe-{time.monotonic_ns()}"),
            spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="busybox:1.36")]),
        ),
        dry_run="All",
    )
    status = (made.metadata.annotations or {}).get(controlplane.INJECTED)
    return str(json.loads(status)["revision"]) if status else None


def wait_injected_by(kube: Kube, namespace: str, revision: str) -> None:
    """The API server matches namespaceSelectors against its namespace cache, which follows a relabel a moment
    later; dry-run pods show when it has."""
    waits.wait_until(
        lambda: _dry_run_revision(kube, namespace) == revision,
        condition=f"the API server to route namespace {namespace} to revision {revision}'s istiod",
        timeout=30,
        describe=lambda: f"injected by: {_dry_run_revision(kube, namespace)}",
    )


def injected_by(kube: Kube, namespace: str) -> dict[str, str | None]:
    """Each pod of `namespace` -> the revision whose istiod injected it (None: not injected)."""
    found: dict[str, str | None] = {}
    for item in kube.core.list_namespaced_pod(namespace).items:
        status = (item.metadata.annotations or {}).get(controlplane.INJECTED)
        found[item.metadata.name] = str(json.loads(status)["revision"]) if status else None
    return found


def labelled_objects(kube: Kube) -> list[tuple[str, str]]:
    found = [
        ("MutatingWebhookConfiguration", w.metadata.name)
        for w in kube.admission.list_mutating_webhook_configuration().items
    ]
    found += [
        ("ValidatingWebhookConfiguration", w.metadata.name)
        for w in kube.admission.list_validating_webhook_configuration().items
    ]
    found += [("ClusterRole", r.metadata.name) for r in kube.rbac.list_cluster_role().items]
    found += [("ClusterRoleBinding", r.metadata.name) for r in kube.rbac.list_cluster_role_binding().items]
    found += [
        (kind, o.metadata.name)
        for kind, items in (
            ("ConfigMap", kube.core.list_config_map_for_all_namespaces().items),
            ("Service", kube.core.list_service_for_all_namespaces().items),
            ("ServiceAccount", kube.core.list_service_account_for_all_namespaces().items),
            ("Deployment", kube.apps.list_deployment_for_all_namespaces().items),
        )
        for o in items
    ]
    return found
