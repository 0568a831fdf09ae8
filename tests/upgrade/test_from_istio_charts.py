"""Upgrading releases of Istio's own 1.12.0 charts to charts/, with the README's commands as written.

The releases come from fixture charts (tests/fixtures/istio-1.12) that leave what Istio's charts leave:
the same names, namespaces and selectors, CRDs from a crds/ folder. On a cluster that no longer serves
policy/v1beta1 and autoscaling/v2beta1, the stored releases are rewritten to hold those versions, as
releases installed on Kubernetes 1.19-1.24 do.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from meshcharts import mapkubeapis, tools
from meshcharts.errors import HelmError
from meshcharts.helm import Helm
from meshcharts.testing import waits
from meshcharts.testing.admission import AdmissionRecorder
from meshcharts.testing.plugin import Kube
from tests.e2e.conftest import CHARTS, ISTIO_NS, trust_recorder
from tests.e2e.test_base import uninstall_base_and_crds
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
def istio_slate(mesh_helm: Helm, kube: Kube) -> Iterator[None]:
    """No istiod, gateway or base release in istio-system and no Istio CRDs, before and after."""

    def clean() -> None:
        for release in ("istio-ingressgateway", "istiod"):
            mesh_helm.run(["uninstall", release, "--namespace", ISTIO_NS, "--ignore-not-found", "--wait"])
        uninstall_base_and_crds(mesh_helm, kube)

    clean()
    yield
    clean()


def install_istio_1_12(mesh_helm: Helm, kube: Kube, recorder: AdmissionRecorder, tmp: Path) -> None:
    """The three releases as a user of Istio's 1.12.0 charts has them, webhooks answered by the recorder."""
    values = {
        "base": {"base": {"validationURL": recorder.url("/validate/base")}},
        "istiod": {"istiodRemote": {"injectionURL": recorder.url("/inject/default")}},
    }
    for chart in ("base", "istiod"):
        path = tmp / f"{chart}-1.12.yaml"
        path.write_text(yaml.safe_dump(values[chart]))
        mesh_helm.install(RELEASES[chart], FIXTURES / chart, namespace=ISTIO_NS, values=[path], wait=True)
    trust_recorder(kube, recorder, "ValidatingWebhookConfiguration", "istiod-default-validator")
    trust_recorder(kube, recorder, "MutatingWebhookConfiguration", "istio-sidecar-injector")
    mesh_helm.install(RELEASES["gateway"], FIXTURES / "gateway", namespace=ISTIO_NS, wait=True)


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


@contextlib.contextmanager
def istiod_patching_its_webhooks(kube: Kube, recorder: AdmissionRecorder) -> Iterator[None]:
    """What a running istiod does: put its CA back into its webhooks whenever one lacks it.

    Helm 3's three-way merge removes the `caBundle` istiod wrote when the previous release rendered
    `caBundle: ""` (Istio's charts did) and the new one renders none; istiod notices and patches it again.
    """
    webhooks = (
        ("ValidatingWebhookConfiguration", "istiod-default-validator"),
        ("MutatingWebhookConfiguration", "istio-sidecar-injector"),
    )
    stop = threading.Event()

    def lacks_ca(kind: str, name: str) -> bool:
        read = (
            kube.admission.read_validating_webhook_configuration
            if kind == "ValidatingWebhookConfiguration"
            else kube.admission.read_mutating_webhook_configuration
        )
        try:
            return any(not w.client_config.ca_bundle for w in read(name).webhooks or [])
        except client.exceptions.ApiException:
            return False

    def loop() -> None:
        while not stop.wait(0.1):
            for kind, name in webhooks:
                if lacks_ca(kind, name):
                    with contextlib.suppress(Exception):
                        trust_recorder(kube, recorder, kind, name)

    thread = threading.Thread(target=loop, name="istiod-stand-in", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


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
    recorder: AdmissionRecorder,
    mesh_namespace: str,
    tmp_path: Path,
) -> None:
    install_istio_1_12(mesh_helm, kube, recorder, tmp_path)
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

    with istiod_patching_its_webhooks(kube, recorder):
        done = run_readme(mesh_helm, tmp_path, skip_mapkubeapis=not removed_apis)
    assert done.returncode == 0, f"README commands failed:\n{done.stdout}\n{done.stderr}"

    # istiod patches its webhooks' caBundle once it serves; the recorder stands in for it.
    trust_recorder(kube, recorder, "MutatingWebhookConfiguration", "istio-sidecar-injector")
    trust_recorder(kube, recorder, "ValidatingWebhookConfiguration", "istiod-default-validator")
    waits.deployment_available(kube.apps, ISTIO_NS, "istiod", timeout=120)
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
        items = kube.core.list_namespaced_secret(ns).items + kube.core.list_namespaced_config_map(ns).items
        return {f"{type(o).__name__} {o.metadata.name}": o.metadata.resource_version for o in items}

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
