"""Upgrading releases of Istio's own 1.12.0 charts to charts/, with the README's commands as written.

The releases come from fixture charts (tests/fixtures/istio-1.12) that leave what Istio's charts leave:
the same names, namespaces and selectors, CRDs from a crds/ folder. On a cluster that no longer serves
policy/v1beta1 and autoscaling/v2beta1, the stored releases are rewritten to hold those versions, as
releases installed on Kubernetes 1.19-1.24 do.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from meshcharts import controlplane, mapkubeapis, tools, waits
from meshcharts.cluster import Cluster
from meshcharts.errors import HelmError
from meshcharts.helm import Helm
from meshcharts.testing.plugin import Kube
from tests.cluster_fixtures import ISTIOD_WRITES_EVERYWHERE, Shared, drop_shared_istiod
from tests.e2e.conftest import CHARTS, ISTIO_NS, run_istiod, stop_istiod
from tests.e2e.slate import uninstall_base_and_crds
from tests.upgrade.conftest import REPO, current_versions

FIXTURES = REPO / "tests" / "fixtures" / "istio-1.12"
FACTS = REPO / "tests" / "data" / "istio-1.12-migration.tsv"
RELEASES = {"base": "istio-base", "istiod": "istiod", "gateway": "istio-ingressgateway"}
OLD_APIS = ("policy/v1beta1/PodDisruptionBudget", "autoscaling/v2beta1/HorizontalPodAutoscaler")


def facts() -> list[dict[str, str]]:
    lines = [line for line in FACTS.read_text().splitlines() if not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))


def readme_script() -> str:
    section = (REPO / "README.md").read_text().split("### Coming from Istio's charts", 1)[1]
    return re.search(r"```console\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


@pytest.fixture
def istio_slate(
    request: pytest.FixtureRequest,
    mesh_helm: Helm,
    kube: Kube,
    mesh_cluster: Cluster,
    shared_installs: Shared,
    tmp_path: Path,
) -> Iterator[None]:
    """No istiod, gateway or base release in istio-system and no Istio CRDs, before and after; no shared istiod."""
    if not mesh_cluster.capabilities.simulated_pods:
        request.getfixturevalue("mesh_real_pods")
    drop_shared_istiod(mesh_cluster, mesh_helm, shared_installs, tmp_path)

    def clean() -> None:
        for release in ("istio-ingressgateway", "istiod"):
            mesh_helm.run(["uninstall", release, "--namespace", ISTIO_NS, "--ignore-not-found", "--wait"])
        uninstall_base_and_crds(mesh_helm, kube)

    clean()
    yield
    clean()


def injector_data(helm: Helm) -> dict[str, str]:
    """The injector ConfigMap's `config` and `values` of charts/istiod at default values (Istio 1.12's templates
    as this project writes them), for the fixture's istiod, whose real istiod injects the gateway's pods."""
    rendered = yaml.safe_load_all(helm.template("istiod", CHARTS / "istiod", namespace=ISTIO_NS))
    (config_map,) = [
        d for d in rendered if d and d["kind"] == "ConfigMap" and d["metadata"]["name"] == "istio-sidecar-injector"
    ]
    return {"config": config_map["data"]["config"], "values": config_map["data"]["values"]}


def install_istio_1_12(mesh_helm: Helm, kube: Kube, mesh_cluster: Cluster, tmp: Path) -> Any:
    """The three releases as a user of Istio's 1.12.0 charts has them (default values), with a real istiod running
    their istiod Deployment; returns the host istiod started, if any."""
    mesh_helm.install(RELEASES["base"], FIXTURES / "base", namespace=ISTIO_NS, wait=True)
    # A scratch copy of the fixture with charts/istiod's injection templates in its files/ (not a value: Helm would
    # carry it into the README's upgrade, whose values are the user's own).
    chart = tmp / "fixture-istiod"
    shutil.copytree(FIXTURES / "istiod", chart)
    (chart / "files").mkdir(exist_ok=True)
    data = injector_data(mesh_helm)
    (chart / "files" / "injector-config.yaml").write_text(data["config"])
    (chart / "files" / "injector-values.json").write_text(data["values"])
    mesh_helm.install(RELEASES["istiod"], chart, namespace=ISTIO_NS, wait=True)
    host = run_istiod(mesh_cluster, kube, ISTIO_NS, "istiod")
    controlplane.wait_webhooks_trusted(kube, "", timeout=120)
    mesh_helm.install(RELEASES["gateway"], FIXTURES / "gateway", namespace=ISTIO_NS, wait=True)
    return host


def released_objects(mesh_helm: Helm, release: str) -> set[tuple[str, str]]:
    manifest = mesh_helm.run(["get", "manifest", release, "--namespace", ISTIO_NS])
    return {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(manifest) if d}


def store_as_an_old_cluster_did(mesh_helm: Helm, kube: Kube, chart: str) -> None:
    """Replace the release's stored manifest with the fixture rendered for Kubernetes 1.22, as stored there."""
    release = RELEASES[chart]
    values = mesh_helm.run(["get", "values", release, "--namespace", ISTIO_NS, "--output", "json"])
    args = ["template", release, str(FIXTURES / chart), "--namespace", ISTIO_NS, "--kube-version", "1.22.0"]
    for api in OLD_APIS:
        args += ["--api-versions", api]
    values_file = Path(f"/tmp/meshcharts-old-{os.getpid()}-{chart}.json")
    values_file.write_text(values)
    try:
        manifest = mesh_helm.run([*args, "--values", str(values_file)])
    finally:
        values_file.unlink()
    assert "policy/v1beta1" in manifest or "autoscaling/v2beta1" in manifest
    (secret,) = [
        s
        for s in kube.core.list_namespaced_secret(ISTIO_NS, label_selector=f"owner=helm,name={release}").items
        if s.metadata.labels["status"] == "deployed"
    ]
    record = mapkubeapis.decode_release(base64.b64decode(secret.data["release"]), secret.metadata.name)
    record["manifest"] = manifest
    secret.data = {"release": base64.b64encode(mapkubeapis.encode_release(record)).decode()}
    kube.core.replace_namespaced_secret(secret.metadata.name, ISTIO_NS, secret)


def helm_secrets(kube: Kube) -> dict[str, str]:
    """Every Helm record in istio-system with its resourceVersion: shows what a command changed."""
    items = kube.core.list_namespaced_secret(ISTIO_NS, label_selector="owner=helm").items
    return {s.metadata.name: s.metadata.resource_version for s in items}


def snapshot(kube: Kube, user_ns: str) -> dict[str, Any]:
    """What must survive the move: selectors, Service addresses and node ports, CRDs, user resources."""
    state: dict[str, Any] = {}
    for row in facts():
        if row["kind"] == "Deployment":
            dep = kube.apps.read_namespaced_deployment(row["name"], ISTIO_NS)
            state[f"Deployment {row['name']} selector"] = dep.spec.selector.match_labels
        elif row["kind"] == "Service":
            svc = kube.core.read_namespaced_service(row["name"], ISTIO_NS)
            state[f"Service {row['name']} selector"] = svc.spec.selector
            state[f"Service {row['name']} clusterIP"] = svc.spec.cluster_ip
            state[f"Service {row['name']} nodePorts"] = sorted((p.name, p.node_port) for p in svc.spec.ports)
        elif row["kind"] == "PodDisruptionBudget":
            pdb = kube.policy.read_namespaced_pod_disruption_budget(row["name"], ISTIO_NS)
            state[f"PodDisruptionBudget {row['name']} selector"] = pdb.spec.selector.match_labels
        elif row["kind"] == "CustomResourceDefinition":
            crd = kube.ext.read_custom_resource_definition(row["name"])
            state[f"CRD {row['name']} uid"] = crd.metadata.uid
    for plural in ("virtualservices", "destinationrules"):
        obj = kube.custom.get_namespaced_custom_object("networking.istio.io", "v1alpha3", user_ns, plural, "shop")
        state[f"{plural} shop"] = (obj["metadata"]["uid"], obj["spec"])
    return state


def create_user_resources(kube: Kube, user_ns: str) -> None:
    group = "networking.istio.io"
    kube.custom.create_namespaced_custom_object(
        group,
        "v1alpha3",
        user_ns,
        "virtualservices",
        {
            "apiVersion": f"{group}/v1alpha3",
            "kind": "VirtualService",
            "metadata": {"name": "shop"},
            "spec": {"hosts": ["shop"], "http": [{"route": [{"destination": {"host": "shop"}}]}]},
        },
    )
    kube.custom.create_namespaced_custom_object(
        group,
        "v1alpha3",
        user_ns,
        "destinationrules",
        {
            "apiVersion": f"{group}/v1alpha3",
            "kind": "DestinationRule",
            "metadata": {"name": "shop"},
            "spec": {"host": "shop", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}},
        },
    )


def run_readme(mesh_helm: Helm, tmp: Path, *, skip_mapkubeapis: bool) -> subprocess.CompletedProcess[str]:
    """The README's commands as written, with this checkout's charts and meshcharts in place of the
    repository's and the installed command; without the mapkubeapis lines where the README says to skip them."""
    script = readme_script()
    for chart in RELEASES:
        script = script.replace(f"meshcharts/{chart} ", f"{CHARTS / chart} ")
    if skip_mapkubeapis:
        script = "\n".join(line for line in script.splitlines() if not line.startswith("meshcharts mapkubeapis"))
    bindir = tmp / "bin"
    bindir.mkdir(exist_ok=True)
    for name, target in (("kubectl", tools.path("kubectl")), ("helm", mesh_helm.binary)):
        if not (bindir / name).exists():
            (bindir / name).symlink_to(target)
    shim = bindir / "meshcharts"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m meshcharts.cli "$@"\n')
    shim.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "KUBECONFIG": str(mesh_helm.kubeconfig),
        "PYTHONPATH": str(REPO / "generator"),
    }
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], env=env, cwd=tmp, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("removed_apis", [True, False], ids=["stored-on-1.22", "stored-on-this-cluster"])
def test_istio_1_12_releases_move_to_these_charts_with_the_readme_commands(
    istio_slate: None,
    removed_apis: bool,
    mesh_helm: Helm,
    kube: Kube,
    mesh_cluster: Cluster,
    mesh_namespace: str,
    tmp_path: Path,
) -> None:
    hosts = [install_istio_1_12(mesh_helm, kube, mesh_cluster, tmp_path)]
    try:
        move(removed_apis, mesh_helm, kube, mesh_cluster, mesh_namespace, tmp_path, hosts)
    finally:
        for host in hosts:
            stop_istiod(mesh_cluster, host)


def move(
    removed_apis: bool,
    mesh_helm: Helm,
    kube: Kube,
    mesh_cluster: Cluster,
    mesh_namespace: str,
    tmp_path: Path,
    hosts: list[Any],
) -> None:
    for chart, release in RELEASES.items():
        expected = {(r["kind"], r["name"]) for r in facts() if r["chart"] == chart}
        assert released_objects(mesh_helm, release) == expected, f"fixture {chart} drifted from Istio 1.12.0's objects"
    crds = {r["name"] for r in facts() if r["chart"] == "base-crds"}
    assert crds <= {c.metadata.name for c in kube.ext.list_custom_resource_definition().items}
    create_user_resources(kube, mesh_namespace)
    before = snapshot(kube, mesh_namespace)

    if removed_apis:
        for chart in ("istiod", "gateway"):
            store_as_an_old_cluster_did(mesh_helm, kube, chart)
        with pytest.raises(HelmError) as failed:
            mesh_helm.upgrade("istiod", CHARTS / "istiod", namespace=ISTIO_NS)
        assert re.search(r"policy/v1beta1|autoscaling/v2beta1", failed.value.stderr), failed.value.stderr
        records = helm_secrets(kube)
        dry = subprocess.run(
            [sys.executable, "-m", "meshcharts.cli", "mapkubeapis", "istiod", "--namespace", ISTIO_NS, "--dry-run"],
            env={**os.environ, "KUBECONFIG": str(mesh_helm.kubeconfig), "PYTHONPATH": str(REPO / "generator")},
            capture_output=True,
            text=True,
            check=False,
        )
        assert dry.returncode == 0, dry.stderr
        assert "PodDisruptionBudget istiod: policy/v1beta1 -> policy/v1" in dry.stderr + dry.stdout
        assert helm_secrets(kube) == records, "a dry run changed a stored release"
    else:
        records = helm_secrets(kube)
        with pytest.raises(Exception, match="nothing to map"):
            mapkubeapis.map_release(kube.api_client, "istiod", ISTIO_NS, dry_run=False)
        assert helm_secrets(kube) == records

    # The running istiod answers throughout (Helm 3's three-way merge drops the caBundle it wrote where Istio's
    # charts rendered `caBundle: ""`; istiod puts it back), as in a cluster where its pod keeps serving.
    done = run_readme(mesh_helm, tmp_path, skip_mapkubeapis=not removed_apis)
    assert done.returncode == 0, f"README commands failed:\n{done.stdout}\n{done.stderr}"

    # The upgraded Deployment rolls: on the host its istiod is restarted, and its CA is in the webhooks again.
    waits.deployment_available(kube.apps, ISTIO_NS, "istiod", timeout=120)
    hosts.append(run_istiod(mesh_cluster, kube, ISTIO_NS, "istiod"))
    controlplane.wait_webhooks_trusted(kube, "", timeout=120)
    waits.deployment_available(kube.apps, ISTIO_NS, "istio-ingressgateway", timeout=120)
    listed = json.loads(mesh_helm.run(["list", "--namespace", ISTIO_NS, "--output", "json"]))
    charts = {r["name"]: (r["status"], r["chart"]) for r in listed}
    version = current_versions()
    assert charts == {release: ("deployed", f"{chart}-{version[chart]}") for chart, release in RELEASES.items()}
    after = snapshot(kube, mesh_namespace)
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert changed == {}, f"the upgrade changed what users rely on: {changed}"
    if removed_apis:
        manifest = mesh_helm.run(["get", "manifest", "istiod", "--namespace", ISTIO_NS])
        assert "policy/v1beta1" not in manifest and "autoscaling/v2beta1" not in manifest
        with pytest.raises(Exception, match="nothing to map"):
            mapkubeapis.map_release(kube.api_client, "istiod", ISTIO_NS, dry_run=False)


def test_mapkubeapis_refuses_a_release_it_does_not_expect_and_changes_nothing(
    mesh_helm: Helm, kube: Kube, mesh_namespace: str
) -> None:
    ns = mesh_namespace
    env = {**os.environ, "KUBECONFIG": str(mesh_helm.kubeconfig), "PYTHONPATH": str(REPO / "generator")}

    def run(release: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "meshcharts.cli", "mapkubeapis", release, "--namespace", ns]
        return subprocess.run(argv, env=env, capture_output=True, text=True, check=False)

    def records() -> dict[str, str]:
        """Helm's records in the namespace. Not the CA ConfigMaps a real istiod of an earlier test on this cluster
        writes into every namespace whenever it gets to it (it raced this comparison under xdist)."""
        items = kube.core.list_namespaced_secret(ns).items + kube.core.list_namespaced_config_map(ns).items
        return {
            f"{type(o).__name__} {o.metadata.name}": o.metadata.resource_version
            for o in items
            if o.metadata.name not in ISTIOD_WRITES_EVERYWHERE
        }

    missing = run("no-such-release")
    assert missing.returncode == 2 and "no Helm release 'no-such-release'" in missing.stderr

    # A release mid-upgrade: its latest revision is pending, so nothing may be rewritten under Helm.
    mesh_helm.install("pending", FIXTURES / "gateway", namespace=ns, set_values={"service.type": "ClusterIP"})
    (secret,) = kube.core.list_namespaced_secret(ns, label_selector="owner=helm,name=pending").items
    record = mapkubeapis.decode_release(base64.b64decode(secret.data["release"]), "pending")
    record["manifest"] = record["manifest"].replace("autoscaling/v2\n", "autoscaling/v2beta2\n")
    record["info"]["status"] = "pending-upgrade"
    secret.data = {"release": base64.b64encode(mapkubeapis.encode_release(record)).decode()}
    secret.metadata.labels["status"] = "pending-upgrade"
    kube.core.replace_namespaced_secret(secret.metadata.name, ns, secret)
    state = records()
    pending = run("pending")
    assert pending.returncode == 2 and "revision 1 is 'pending-upgrade', not 'deployed'" in pending.stderr
    assert records() == state

    # Stored by Helm's ConfigMap driver: not the storage this command knows.
    Helm(
        major=mesh_helm.major, kubeconfig=mesh_helm.kubeconfig, env={**mesh_helm.env, "HELM_DRIVER": "configmap"}
    ).install("in-configmaps", FIXTURES / "gateway", namespace=ns, set_values={"service.type": "ClusterIP"})
    state = records()
    in_cm = run("in-configmaps")
    assert in_cm.returncode == 2 and "stored in ConfigMaps (HELM_DRIVER=configmap)" in in_cm.stderr
    assert records() == state

    # A Secret that carries Helm's labels but not its type.
    kube.core.create_namespaced_secret(
        ns,
        client.V1Secret(
            metadata=client.V1ObjectMeta(
                name="sh.helm.release.v1.forged.v1",
                labels={"owner": "helm", "name": "forged", "status": "deployed", "version": "1"},
            ),
            type="Opaque",
            string_data={"release": "x"},
        ),
    )
    state = records()
    forged = run("forged")
    assert forged.returncode == 2 and "unknown release storage (type 'Opaque')" in forged.stderr
    assert records() == state
