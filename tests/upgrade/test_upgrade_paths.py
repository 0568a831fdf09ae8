"""Every published version upgraded to the working tree, the way users upgrade: from the repository,
with their values, then with --reuse-values and --reset-then-reuse-values, and back with rollback.

Paths come from index.yaml (tests/upgrade/conftest.py). Each path asserts that the upgrade succeeds,
no workload selector changed, workloads rolled and are Available, CRDs hold the working tree's
schemas, users' resources survived, the webhook configurations are exactly the release's (none
stale, none missing), and that `helm rollback` to the published version works.

A real istiod answers throughout: an istiod path runs its own (restarted on the host after each upgrade and
rollback on the local provider, as a kubelet rolls the changed Deployment; rolled by the cluster elsewhere); after
each step istiod's CA is back in every webhook of the release within a bounded time (Helm 3 writes the rendered
webhooks back without it) and istiod refuses an invalid resource of its revision. The gateway's pods are injected
by the shared istiod.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import semver
import yaml
from kubernetes.client.exceptions import ApiException

from meshcharts import index, lint, upgrade
from meshcharts.cluster import Cluster
from meshcharts.helm import Helm
from meshcharts.paths import Layout
from meshcharts.testing import controlplane, waits
from meshcharts.testing.controlplane import INJECTED
from meshcharts.testing.plugin import Kube
from tests.cluster_fixtures import istiod_deployment, run_istiod, stop_istiod
from tests.e2e.conftest import BASE_RELEASE
from tests.e2e.test_base import uninstall_base_and_crds
from tests.upgrade.conftest import REPO, current_versions, published_matrix, recorded, target_tree

SCENARIOS = {
    chart: sorted(p.stem for p in (REPO / "ci" / "values" / chart).glob("*.yaml"))
    for chart in ("base", "istiod", "gateway")
}
CASES = [
    pytest.param(path, scenario, mode, id=f"{path.id}-{scenario}-{mode}")
    for path in published_matrix()
    for scenario in SCENARIOS.get(path.chart, ["default"])
    for mode in upgrade.MODES
]
WORKLOADS = ("Deployment", "DaemonSet")
WEBHOOK_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


def scenario_values(chart: str, scenario: str, namespace: str) -> dict[str, Any]:
    """The scenario's values (ci/values/<chart>/<scenario>.yaml); istiod's namespace is the path's own."""
    values: dict[str, Any] = yaml.safe_load((REPO / "ci" / "values" / chart / f"{scenario}.yaml").read_text()) or {}
    if chart == "istiod":
        values.setdefault("global", {})["istioNamespace"] = namespace
    return values


def manifest_objects(helm: Helm, release: str, namespace: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(helm.run(["get", "manifest", release, "--namespace", namespace])) if d]


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


def crds_match_working_tree(helm: Helm, kube: Kube, base: Path) -> None:
    rendered = yaml.safe_load_all(
        helm.template(
            "x",
            base,
            namespace=BASE_RELEASE[1],
            extra=("--show-only", "templates/customresourcedefinition.yaml"),
        )
    )
    for crd in (d for d in rendered if d):
        live = kube.api_client.sanitize_for_serialization(
            kube.ext.read_custom_resource_definition(crd["metadata"]["name"])
        )
        assert [v["name"] for v in live["spec"]["versions"]] == [v["name"] for v in crd["spec"]["versions"]]
        for want, have in zip(crd["spec"]["versions"], live["spec"]["versions"], strict=True):
            assert have["schema"] == want["schema"], f"{crd['metadata']['name']} {want['name']} schema not upgraded"


@pytest.fixture
def base_slate(mesh_helm: Helm, kube: Kube) -> Iterator[None]:
    uninstall_base_and_crds(mesh_helm, kube)
    yield
    uninstall_base_and_crds(mesh_helm, kube)


@pytest.mark.parametrize(("path", "scenario", "mode"), CASES)
def test_upgrade_path(
    request: pytest.FixtureRequest,
    path: upgrade.UpgradePath,
    scenario: str,
    mode: str,
    mesh_helm: Helm,
    kube: Kube,
    mesh_cluster: Cluster,
    chart_repo: str,
    mesh_namespace: str,
    tmp_path: Path,
    upgrade_results: list[upgrade.PathResult],
) -> None:
    with recorded(upgrade_results, path, scenario, mode, mesh_helm.major):
        release, namespace = path_slot(request, path.chart, mesh_cluster, mesh_namespace)
        run_path(
            path,
            scenario,
            mode,
            release,
            namespace,
            mesh_helm,
            kube,
            mesh_cluster,
            chart_repo,
            mesh_namespace,
            tmp_path,
        )


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
    if mesh_cluster.provider != "local":
        request.getfixturevalue("mesh_real_pods")
    request.getfixturevalue("control_plane" if chart == "gateway" else "sole_default_istiod")
    # The release names users have: the gateway's name is what its selector derives from.
    return {"gateway": "istio-ingressgateway", "istiod": "istiod"}[chart], mesh_namespace


def run_path(
    path: upgrade.UpgradePath,
    scenario: str,
    mode: str,
    release: str,
    namespace: str,
    helm: Helm,
    kube: Kube,
    mesh_cluster: Cluster,
    chart_repo: str,
    user_namespace: str,
    tmp_path: Path,
) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(scenario_values(path.chart, scenario, namespace)))
    helm.install(
        release,
        path.chart,
        namespace=namespace,
        version=path.from_version,
        values=[values],
        wait=True,
        timeout=120,
        extra=("--repo", chart_repo),
    )
    host = None
    try:
        old = manifest_objects(helm, release, namespace)
        wait_workloads(kube, old, namespace)
        host = answered(mesh_cluster, kube, path.chart, old, namespace, user_namespace)
        selectors = live_selectors(kube, old, namespace)
        made = create_user_resources(kube, path.chart, user_namespace)
        served = live_crds(kube, old)

        flags = {
            "same-values": ["--values", str(values)],
            "reuse-values": ["--reuse-values"],
            "reset-then-reuse-values": ["--reset-then-reuse-values"],
        }[mode]
        target = target_tree(path)
        helm.upgrade(release, target, namespace=namespace, wait=True, timeout=120, extra=tuple(flags))
        new = manifest_objects(helm, release, namespace)
        workloads_kept(selectors, live_selectors(kube, new, namespace))
        wait_workloads(kube, new, namespace)
        host = answered(mesh_cluster, kube, path.chart, new, namespace, user_namespace) or host
        assert release_webhooks(kube, release, namespace) == {
            (o["kind"], o["metadata"]["name"]) for o in new if o["kind"] in WEBHOOK_KINDS
        }
        user_resources_intact(kube, user_namespace, made)
        if path.chart == "base":
            crds_match_working_tree(helm, kube, target)
            crds_kept_what_was_served(kube, served, new)

        helm.rollback(release, 1, namespace=namespace, wait=True, timeout=120, extra=rollback_flags(helm))
        rolled = manifest_objects(helm, release, namespace)
        wait_workloads(kube, rolled, namespace)
        host = answered(mesh_cluster, kube, path.chart, rolled, namespace, user_namespace) or host
        assert {(o["kind"], o["metadata"]["name"]) for o in rolled} == {(o["kind"], o["metadata"]["name"]) for o in old}
        assert live_selectors(kube, rolled, namespace) == selectors
        assert release_webhooks(kube, release, namespace) == {
            (o["kind"], o["metadata"]["name"]) for o in old if o["kind"] in WEBHOOK_KINDS
        }
        user_resources_intact(kube, user_namespace, made)
    finally:
        helm.uninstall(release, namespace=namespace, wait=True, timeout=120)
        stop_istiod(mesh_cluster, host)


def test_the_matrix_covers_every_published_version_of_every_chart() -> None:
    """Each published version starts a path, unless it is the version a line's tree is at: that tree packs
    byte-for-byte to the published archive (tests/unit/test_generated_tree.py), so there is nothing to upgrade
    to until the line's next version is in the tree. test_cross_minor.py starts from those too."""
    paths = published_matrix()
    published = yaml.safe_load((REPO / "index.yaml").read_text())
    trees = [current_versions(line) for line in (None, *Layout(REPO).lines())]
    for chart, entries in published["entries"].items():
        at_a_tree = {versions[chart] for versions in trees}
        assert {p.from_version for p in paths if p.chart == chart} == {e["version"] for e in entries} - at_a_tree
    assert CASES, "no upgrade path: nothing is published yet"


def _minor(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split(".")[:2])


def test_each_line_upgrades_its_own_patches_to_its_tree_and_nothing_goes_down_a_line() -> None:
    paths = published_matrix()
    for path in paths:
        target = yaml.safe_load((target_tree(path) / "Chart.yaml").read_text())
        assert str(target["version"]) == path.to_version, path
        # Within a line here; from an older minor only to the base line (there are none yet) or in
        # test_cross_minor.py; never from a newer line to an older one.
        assert _minor(path.from_version) <= _minor(path.to_version), path
        if path.line is not None:
            assert _minor(path.from_version) == _minor(path.to_version) == _minor(path.line + ".0"), path
    # A line has paths of its own exactly when it published a patch below the version its tree is at.
    published = index.load(REPO / "index.yaml")
    expected = {
        (chart, line)
        for line in (None, *Layout(REPO).lines())
        for chart, version in current_versions(line).items()
        if any(
            _minor(str(e["version"])) == _minor(version) and semver.Version.parse(str(e["version"])) < version
            for e in published["entries"][chart]
        )
    }
    assert {(p.chart, p.line) for p in paths} == expected
    assert all(p.from_version != p.to_version for p in paths)


def test_a_dropped_workload_fails_the_path_where_it_used_to_pass_unseen() -> None:
    kept = {"Deployment/istiod": {"match_labels": {"istio": "pilot"}}, "Service/istiod": {"istio": "pilot"}}
    workloads_kept(kept, dict(kept))
    with pytest.raises(AssertionError, match=r"dropped \['Service/istiod'\]"):
        workloads_kept(kept, {"Deployment/istiod": kept["Deployment/istiod"]})
    with pytest.raises(AssertionError, match="selectors changed"):
        workloads_kept(kept, {**kept, "Service/istiod": {"istio": "other"}})


def test_a_user_object_deleted_and_re_created_under_its_name_is_not_intact(
    istio_base: tuple[str, str], kube: Kube, mesh_namespace: str
) -> None:
    made = create_user_resources(kube, "istiod", mesh_namespace)
    user_resources_intact(kube, mesh_namespace, made)
    (plural, name), stored = next(iter(made.items()))
    group, version = USER_KINDS[plural]
    kube.custom.delete_namespaced_custom_object(group, version, mesh_namespace, plural, name)
    body = {key: stored[key] for key in ("apiVersion", "kind", "spec")} | {"metadata": {"name": name}}
    kube.custom.create_namespaced_custom_object(group, version, mesh_namespace, plural, body)
    with pytest.raises(AssertionError, match="deleted and re-created"):
        user_resources_intact(kube, mesh_namespace, made)
    kube.custom.patch_namespaced_custom_object(
        group, version, mesh_namespace, plural, name, {"spec": {"hosts": ["changed"]}}
    )
    made[(plural, name)] = {**stored, "metadata": kube.custom.get_namespaced_custom_object(
        group, version, mesh_namespace, plural, name
    )["metadata"]}  # fmt: skip
    with pytest.raises(AssertionError, match="changed"):
        user_resources_intact(kube, mesh_namespace, made)
