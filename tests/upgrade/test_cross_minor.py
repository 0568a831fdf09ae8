"""Cross-minor upgrades: for each release line the repository declares (generator/lines/<line>/), each chart's
newest published patch of the line one minor below upgraded in place to the line's working tree (lines/<line>/),
from the served repository, with the users' values. Today that is 1.12.x to lines/1.13/; a new line adds its
paths here without a test edited, and a line that skips minors gets none (Istio moves one minor at a time): the
upgrade report shows it as skipped, with the reason.

Asserts what a move to the next minor must keep: the upgrade succeeds, workload and Service selectors are
unchanged, the gateway Service keeps its ClusterIP and node ports, the webhook configurations are exactly
the release's, users' Istio resources survive, and base's CRDs hold the line's schemas (ProxyConfig, added by
1.13, the new fields served). Results join the upgrade report's matrix (from 1.12.x to 1.13.0).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import semver
import yaml

from meshcharts import index, upgrade, waits
from meshcharts.cluster import Cluster
from meshcharts.helm import Helm
from meshcharts.paths import Layout
from meshcharts.testing.plugin import Kube
from tests.cluster_fixtures import stop_istiod
from tests.e2e.conftest import BASE_RELEASE
from tests.upgrade.conftest import REPO, cross_minor_moves, recorded, release_lines, target_tree
from tests.upgrade.steps import (
    AS_JSON,
    WEBHOOK_KINDS,
    RevisionIstiods,
    answered,
    crds_kept_what_was_served,
    create_user_resources,
    injected_by,
    labelled_objects,
    live_crds,
    live_selectors,
    path_slot,
    pod,
    printed_objects,
    release_webhooks,
    scenario_values,
    user_resources_intact,
    wait_injected_by,
    wait_workloads,
    workloads_kept,
)

RELEASES = {"gateway": "istio-ingressgateway", "istiod": "istiod"}

MOVES = cross_minor_moves()
PATHS = [path for move in MOVES for path in move.paths]
"""For each line, one path per chart: the in-place move Istio supports (one minor at a time), however many
lines are kept."""

CASES = [pytest.param(path, mode, id=f"{path.id}-{mode}") for path in PATHS for mode in ("same-values", "reuse-values")]
CANARIES = [pytest.param(path, id=path.id) for path in PATHS if path.chart == "istiod"]


def line_of(version: str) -> str:
    return ".".join(version.split(".")[:2])


def revision(line: str) -> str:
    """A revision or object name for a line: 1.13 -> 1-13."""
    return line.replace(".", "-")


def service_addresses(kube: Kube, objects: list[dict[str, Any]], namespace: str) -> dict[str, Any]:
    found = {}
    for obj in objects:
        if obj["kind"] == "Service":
            spec = kube.core.read_namespaced_service(obj["metadata"]["name"], namespace).spec
            found[obj["metadata"]["name"]] = (spec.cluster_ip, sorted((p.name, p.node_port) for p in spec.ports or []))
    return found


def crds_match_the_line(helm: Helm, kube: Kube, tree: Path) -> None:
    rendered = [
        d
        for d in yaml.safe_load_all(
            helm.template(
                "x",
                tree,
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


def test_each_line_is_reached_from_the_newest_patch_of_the_line_one_minor_below(
    pytestconfig: pytest.Config, upgrade_results: list[upgrade.PathResult]
) -> None:
    """One move into each declared line but the oldest. A line one minor above the one below it gets a path per
    chart, from that line's newest published patch to the version its tree's Chart.yaml says; a line that skips
    minors gets none. A move without a path is in the report, skipped, with its reason."""
    lines = release_lines()
    assert [(m.from_line, m.to_line) for m in MOVES] == list(itertools.pairwise(lines))
    entries = index.load(REPO / "index.yaml")["entries"]
    for move in MOVES:
        older, newer = (semver.Version.parse(f"{line}.0") for line in (move.from_line, move.to_line))
        adjacent = (newer.major, newer.minor) == (older.major, older.minor + 1)
        newest = {}  # chart -> the from line's newest published patch (what `helm install` picks: no pre-release)
        for chart in lines[move.to_line]:
            published = [semver.Version.parse(str(e["version"])) for e in entries.get(chart, [])]
            of_older = [v for v in published if line_of(str(v)) == move.from_line and not v.prerelease]
            if of_older:
                newest[chart] = str(max(of_older))
        expected = [
            (chart, newest[chart], version, move.to_line)
            for chart, version in lines[move.to_line].items()
            if adjacent and chart in newest
        ]
        assert [(p.chart, p.from_version, p.to_version, p.line) for p in move.paths] == expected, move
        assert adjacent or "skips minors" in move.reason or "major" in move.reason, move
        for path in move.paths:
            assert str(yaml.safe_load((target_tree(path) / "Chart.yaml").read_text())["version"]) == path.to_version
        if not move.paths:
            assert move.reason, move
            upgrade_results.extend(move.skipped_results(f"helm{pytestconfig.getoption('--helm')}"))
    assert PATHS, "no declared line is one minor above another: nothing moves across minors"


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
        addresses = service_addresses(kube, old, namespace)
        made = create_user_resources(kube, path.chart, user_namespace)
        served = live_crds(kube, old)
        flags = ["--values", str(values)] if mode == "same-values" else ["--reuse-values"]
        upgraded = helm.upgrade(
            release, target_tree(path), namespace=namespace, wait=True, timeout=120, extra=(*flags, *AS_JSON)
        )
        new = printed_objects(upgraded)
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
            crds_match_the_line(helm, kube, target_tree(path))
            crds_kept_what_was_served(kube, served, new)
        if path.chart == "istiod":
            names = {o["metadata"]["name"] for o in new if o["kind"] == "EnvoyFilter"}
            assert names and all(name.endswith(f"-{path.line}") for name in names), names
    finally:
        helm.uninstall(release, namespace=namespace, wait=True, timeout=120)
        stop_istiod(mesh_cluster, host)


@pytest.mark.usefixtures("canary_slate")
@pytest.mark.parametrize("path", CANARIES)
def test_canary_to_a_revision_of_the_next_line_moving_a_revision_tag(
    request: pytest.FixtureRequest,
    path: upgrade.UpgradePath,
    mesh_helm: Helm,
    kube: Kube,
    chart_repo: str,
    mesh_namespace: str,
    upgrade_results: list[upgrade.PathResult],
) -> None:
    """Istio's recommended move across minors: base (CRDs) of the new line first, a revision of the new line (1.13)
    beside the control plane of the line below (1.12), the `prod` revision tag moved to it, namespaces switched,
    the old revision removed. Each revision is answered by a real istiod. The report's istiod matrix shows it as
    the `canary` scenario on the path (1.12.x -> 1.13.0)."""
    with recorded(upgrade_results, path, "canary", "revision-tag-moved", mesh_helm.major):
        istiods: RevisionIstiods = request.getfixturevalue("revision_istiods")
        canary(path, mesh_helm, kube, istiods, chart_repo, mesh_namespace)


def canary(
    path: upgrade.UpgradePath,
    mesh_helm: Helm,
    kube: Kube,
    istiods: RevisionIstiods,
    chart_repo: str,
    mesh_namespace: str,
) -> None:
    ns = BASE_RELEASE[1]
    old, tree = path.from_version, Layout(REPO, path.line).charts
    old_rev, new_rev = f"r{revision(old)}", f"r{revision(line_of(path.to_version))}"
    mesh_helm.install(BASE_RELEASE[0], tree / "base", namespace=ns, wait=True, set_values={"defaultRevision": old_rev})
    mesh_helm.install(
        "istiod-a",
        "istiod",
        namespace=ns,
        version=old,
        wait=True,
        extra=("--repo", chart_repo, "--set", f"revision={old_rev}", "--set", "revisionTags={prod}"),
    )
    mesh_helm.install("istiod-b", tree / "istiod", namespace=ns, wait=True, set_values={"revision": new_rev})
    istiods.run(old_rev)
    istiods.run(new_rev)

    kube.core.patch_namespace(mesh_namespace, {"metadata": {"labels": {"istio.io/rev": "prod"}}})
    wait_injected_by(kube, mesh_namespace, old_rev)
    old_pod, new_pod = f"on-{revision(line_of(old))}", f"on-{revision(line_of(path.to_version))}"
    pod(kube, mesh_namespace, old_pod)
    # The tag moves: the old line's release (1.12) gives it up, the new line's (1.13) takes it.
    mesh_helm.upgrade(
        "istiod-a",
        "istiod",
        namespace=ns,
        wait=True,
        extra=("--repo", chart_repo, "--version", old, "--reuse-values", "--set-json", "revisionTags=[]"),
    )
    istiods.run(old_rev)
    mesh_helm.upgrade(
        "istiod-b", tree / "istiod", namespace=ns, wait=True, extra=("--reuse-values", "--set", "revisionTags={prod}")
    )
    istiods.run(new_rev)
    wait_injected_by(kube, mesh_namespace, new_rev)
    pod(kube, mesh_namespace, new_pod)
    assert injected_by(kube, mesh_namespace) == {old_pod: old_rev, new_pod: new_rev}

    mesh_helm.upgrade(
        BASE_RELEASE[0],
        tree / "base",
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
