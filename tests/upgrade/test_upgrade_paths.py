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

from pathlib import Path

import pytest
import semver
import yaml

from meshcharts import index, upgrade
from meshcharts._yaml import parse_all
from meshcharts.cluster import Cluster
from meshcharts.helm import Helm
from meshcharts.paths import Layout
from meshcharts.testing.plugin import Kube
from tests.cluster_fixtures import stop_istiod
from tests.e2e.conftest import BASE_RELEASE
from tests.upgrade.conftest import REPO, current_versions, published_matrix, recorded, target_tree
from tests.upgrade.steps import (
    AS_JSON,
    USER_KINDS,
    WEBHOOK_KINDS,
    answered,
    crds_kept_what_was_served,
    create_user_resources,
    live_crds,
    live_selectors,
    manifest_objects,
    path_slot,
    printed_objects,
    release_webhooks,
    rollback_flags,
    scenario_values,
    user_resources_intact,
    wait_workloads,
    workloads_kept,
)

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


def crds_match_working_tree(helm: Helm, kube: Kube, base: Path) -> None:
    rendered = parse_all(
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
    installed = helm.install(
        release,
        path.chart,
        namespace=namespace,
        version=path.from_version,
        values=[values],
        wait=True,
        timeout=120,
        extra=("--repo", chart_repo, *AS_JSON),
    )
    host = None
    try:
        old = printed_objects(installed)
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
        upgraded = helm.upgrade(release, target, namespace=namespace, wait=True, timeout=120, extra=(*flags, *AS_JSON))
        new = printed_objects(upgraded)
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
