"""Cross-minor upgrades: each chart's newest published 1.12 patch upgraded in place to the 1.13 line's
working tree (lines/1.13/), from the served repository, with the users' values.

Asserts what a move to the next minor must keep: the upgrade succeeds, workload and Service selectors are
unchanged, the gateway Service keeps its ClusterIP and node ports, the webhook configurations are exactly
the release's, users' Istio resources survive, and base's CRDs hold 1.13's schemas (ProxyConfig added,
the new fields served). Results join the upgrade report's matrix (from 1.12.x to 1.13.0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meshcharts import index, package, upgrade, waits
from meshcharts.cluster import Cluster
from meshcharts.helm import Helm
from meshcharts.testing.plugin import Kube
from tests.cluster_fixtures import stop_istiod
from tests.e2e.conftest import BASE_RELEASE
from tests.upgrade.conftest import REPO, recorded
from tests.upgrade.steps import (
    WEBHOOK_KINDS,
    RevisionIstiods,
    answered,
    crds_kept_what_was_served,
    create_user_resources,
    injected_by,
    labelled_objects,
    live_crds,
    live_selectors,
    manifest_objects,
    path_slot,
    pod,
    release_webhooks,
    scenario_values,
    user_resources_intact,
    wait_injected_by,
    wait_workloads,
    workloads_kept,
)

LINE = REPO / "lines" / "1.13"
RELEASES = {"gateway": "istio-ingressgateway", "istiod": "istiod"}


def cross_minor_paths() -> list[upgrade.UpgradePath]:
    """For each chart, the newest published patch of the minor just below the line's, to the line's tree: the
    in-place move Istio supports (one minor at a time), and one path per chart and line however many lines
    are kept."""
    entries = index.load(REPO / "index.yaml")["entries"]
    paths = []
    for chart in ("base", "istiod", "gateway"):
        target = str(package.load_metadata(LINE / chart)["version"])
        published = [str(e["version"]) for e in entries.get(chart, [])]
        major, minor = (int(x) for x in target.split(".")[:2])
        previous = f"{major}.{minor - 1}."
        older = [v for v in upgrade.select_versions(published, target) if v.startswith(previous)]
        paths += [upgrade.UpgradePath(chart, version, target) for version in older]
    return paths


CASES = [
    pytest.param(path, mode, id=f"{path.id}-{mode}")
    for path in cross_minor_paths()
    for mode in ("same-values", "reuse-values")
]


def service_addresses(kube: Kube, objects: list[dict[str, Any]], namespace: str) -> dict[str, Any]:
    found = {}
    for obj in objects:
        if obj["kind"] == "Service":
            spec = kube.core.read_namespaced_service(obj["metadata"]["name"], namespace).spec
            found[obj["metadata"]["name"]] = (spec.cluster_ip, sorted((p.name, p.node_port) for p in spec.ports or []))
    return found


def crds_match_the_line(helm: Helm, kube: Kube) -> None:
    rendered = [
        d
        for d in yaml.safe_load_all(
            helm.template(
                "x",
                LINE / "base",
                namespace=BASE_RELEASE[1],
                extra=("--show-only", "templates/customresourcedefinition.yaml"),
            )
        )
        if d
    ]
    assert "proxyconfigs.networking.istio.io" in {crd["metadata"]["name"] for crd in rendered}
    for crd in rendered:
        live = kube.api_client.sanitize_for_serialization(
            kube.ext.read_custom_resource_definition(crd["metadata"]["name"])
        )
        assert [v["name"] for v in live["spec"]["versions"]] == [v["name"] for v in crd["spec"]["versions"]]
        for want, have in zip(crd["spec"]["versions"], live["spec"]["versions"], strict=True):
            assert have["schema"] == want["schema"], f"{crd['metadata']['name']} {want['name']} not upgraded"


def test_the_cross_minor_matrix_reaches_the_1_13_line_from_1_12() -> None:
    assert {(p.chart, p.from_version.rsplit(".", 1)[0], p.to_version) for p in cross_minor_paths()} == {
        (chart, "1.12", "1.13.0") for chart in ("base", "istiod", "gateway")
    }


@pytest.mark.parametrize(("path", "mode"), CASES)
def test_cross_minor_upgrade(
    request: pytest.FixtureRequest,
    path: upgrade.UpgradePath,
    mode: str,
    mesh_helm: Helm,
    kube: Kube,
    mesh_cluster: Cluster,
    chart_repo: str,
    mesh_namespace: str,
    tmp_path: Path,
    upgrade_results: list[upgrade.PathResult],
) -> None:
    with recorded(upgrade_results, path, "default", mode, mesh_helm.major):
        release, namespace = path_slot(request, path.chart, mesh_cluster, mesh_namespace)
        run(path, mode, release, namespace, mesh_helm, kube, mesh_cluster, chart_repo, mesh_namespace, tmp_path)


def run(
    path: upgrade.UpgradePath,
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
    values.write_text(yaml.safe_dump(scenario_values(path.chart, "default", namespace)))
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
        addresses = service_addresses(kube, old, namespace)
        made = create_user_resources(kube, path.chart, user_namespace)
        served = live_crds(kube, old)
        flags = ["--values", str(values)] if mode == "same-values" else ["--reuse-values"]
        helm.upgrade(release, LINE / path.chart, namespace=namespace, wait=True, timeout=120, extra=tuple(flags))
        new = manifest_objects(helm, release, namespace)
        workloads_kept(selectors, live_selectors(kube, new, namespace))
        kept = service_addresses(kube, new, namespace)
        assert kept == {k: v for k, v in addresses.items() if k in kept}
        wait_workloads(kube, new, namespace)
        host = answered(mesh_cluster, kube, path.chart, new, namespace, user_namespace) or host
        assert release_webhooks(kube, release, namespace) == {
            (o["kind"], o["metadata"]["name"]) for o in new if o["kind"] in WEBHOOK_KINDS
        }
        user_resources_intact(kube, user_namespace, made)
        if path.chart == "base":
            crds_match_the_line(helm, kube)
            crds_kept_what_was_served(kube, served, new)
        if path.chart == "istiod":
            names = {o["metadata"]["name"] for o in new if o["kind"] == "EnvoyFilter"}
            assert names and all(name.endswith("-1.13") for name in names), names
    finally:
        helm.uninstall(release, namespace=namespace, wait=True, timeout=120)
        stop_istiod(mesh_cluster, host)


@pytest.mark.usefixtures("canary_slate")
def test_canary_from_1_12_to_a_1_13_revision_moving_a_revision_tag(
    request: pytest.FixtureRequest,
    mesh_helm: Helm,
    kube: Kube,
    chart_repo: str,
    mesh_namespace: str,
    upgrade_results: list[upgrade.PathResult],
) -> None:
    """Istio's recommended move across minors: base (CRDs) of the new line first, a 1.13 revision beside the
    1.12 control plane, the `prod` revision tag moved to it, namespaces switched, the old revision removed.
    Each revision is answered by a real istiod. The report's istiod matrix shows it as the `canary` scenario on
    the path 1.12.x -> 1.13.0."""
    (path,) = [p for p in cross_minor_paths() if p.chart == "istiod"]
    with recorded(upgrade_results, path, "canary", "revision-tag-moved", mesh_helm.major):
        istiods: RevisionIstiods = request.getfixturevalue("revision_istiods")
        canary(path.from_version, mesh_helm, kube, istiods, chart_repo, mesh_namespace)


def canary(
    old: str,
    mesh_helm: Helm,
    kube: Kube,
    istiods: RevisionIstiods,
    chart_repo: str,
    mesh_namespace: str,
) -> None:
    ns = BASE_RELEASE[1]
    old_rev, new_rev = f"r{old.replace('.', '-')}", "r1-13"
    mesh_helm.install(BASE_RELEASE[0], LINE / "base", namespace=ns, wait=True, set_values={"defaultRevision": old_rev})
    mesh_helm.install(
        "istiod-a",
        "istiod",
        namespace=ns,
        version=old,
        wait=True,
        extra=("--repo", chart_repo, "--set", f"revision={old_rev}", "--set", "revisionTags={prod}"),
    )
    mesh_helm.install("istiod-b", LINE / "istiod", namespace=ns, wait=True, set_values={"revision": new_rev})
    istiods.run(old_rev)
    istiods.run(new_rev)

    kube.core.patch_namespace(mesh_namespace, {"metadata": {"labels": {"istio.io/rev": "prod"}}})
    wait_injected_by(kube, mesh_namespace, old_rev)
    pod(kube, mesh_namespace, "on-1-12")
    # The tag moves: the 1.12 release gives it up, the 1.13 release takes it.
    mesh_helm.upgrade(
        "istiod-a",
        "istiod",
        namespace=ns,
        wait=True,
        extra=("--repo", chart_repo, "--version", old, "--reuse-values", "--set-json", "revisionTags=[]"),
    )
    istiods.run(old_rev)
    mesh_helm.upgrade(
        "istiod-b", LINE / "istiod", namespace=ns, wait=True, extra=("--reuse-values", "--set", "revisionTags={prod}")
    )
    istiods.run(new_rev)
    wait_injected_by(kube, mesh_namespace, new_rev)
    pod(kube, mesh_namespace, "on-1-13")
    assert injected_by(kube, mesh_namespace) == {"on-1-12": old_rev, "on-1-13": new_rev}

    mesh_helm.upgrade(
        BASE_RELEASE[0],
        LINE / "base",
        namespace=ns,
        wait=True,
        extra=("--reuse-values", "--set", f"defaultRevision={new_rev}"),
    )
    validator = kube.admission.read_validating_webhook_configuration("istiod-default-validator")
    assert validator.webhooks[0].client_config.service.name == f"istiod-{new_rev}"
    mesh_helm.uninstall("istiod-a", namespace=ns, wait=True)
    dangling = [f"{kind} {name}" for kind, name in labelled_objects(kube) if old_rev in name]
    assert dangling == []
    waits.deployment_available(kube.apps, ns, f"istiod-{new_rev}")
