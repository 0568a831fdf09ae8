"""Canary upgrades with revisions, and migrating a pre-1.12 ingress gateway into the gateway chart."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, utils

from meshcharts import tools
from meshcharts.helm import Helm
from meshcharts.testing import waits
from meshcharts.testing.admission import AdmissionRecorder
from meshcharts.testing.plugin import Kube
from tests.e2e.conftest import BASE_RELEASE, CHARTS, ControlPlane, istiod_values, trust_recorder
from tests.e2e.test_base import uninstall_base_and_crds
from tests.upgrade.conftest import REPO, published_matrix

# The oldest published istiod of the base line, whose tree (charts/) the canary moves to.
OLD = min(
    (p.from_version for p in published_matrix() if p.chart == "istiod" and p.line is None),
    key=lambda v: tuple(int(x) for x in v.split(".")),
    default=None,
)


def pod(kube: Kube, namespace: str, name: str) -> None:
    kube.core.create_namespaced_pod(
        namespace,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="busybox:1.36")]),
        ),
    )


@pytest.fixture
def canary_slate(mesh_helm: Helm, kube: Kube) -> Iterator[None]:
    uninstall_base_and_crds(mesh_helm, kube)
    yield
    for release in ("istiod-a", "istiod-b"):
        mesh_helm.run(["uninstall", release, "--namespace", BASE_RELEASE[1], "--ignore-not-found", "--wait"])
    uninstall_base_and_crds(mesh_helm, kube)


@pytest.mark.skipif(OLD is None, reason="requires a published istiod version in index.yaml")
def test_canary_from_the_published_revision_to_the_working_tree(
    canary_slate: None,
    mesh_helm: Helm,
    kube: Kube,
    recorder: AdmissionRecorder,
    chart_repo: str,
    mesh_namespace: str,
    tmp_path: Path,
) -> None:
    ns = BASE_RELEASE[1]
    old_rev = f"r{OLD.replace('.', '-')}"
    mesh_helm.install(
        BASE_RELEASE[0], CHARTS / "base", namespace=ns, wait=True, set_values={"defaultRevision": old_rev}
    )
    values_a = tmp_path / "a.yaml"
    values_a.write_text(yaml.safe_dump(istiod_values(recorder, old_rev)))
    mesh_helm.install(
        "istiod-a", "istiod", namespace=ns, version=OLD, values=[values_a], wait=True, extra=("--repo", chart_repo)
    )
    values_b = tmp_path / "b.yaml"
    values_b.write_text(yaml.safe_dump(istiod_values(recorder, "canary")))
    mesh_helm.install("istiod-b", CHARTS / "istiod", namespace=ns, values=[values_b], wait=True)
    trust_recorder(kube, recorder, "MutatingWebhookConfiguration", f"istio-sidecar-injector-{old_rev}")
    trust_recorder(kube, recorder, "MutatingWebhookConfiguration", "istio-sidecar-injector-canary")
    waits.deployment_available(kube.apps, ns, f"istiod-{old_rev}")
    waits.deployment_available(kube.apps, ns, "istiod-canary")

    kube.core.patch_namespace(mesh_namespace, {"metadata": {"labels": {"istio.io/rev": old_rev}}})
    pod(kube, mesh_namespace, "before-move")
    kube.core.patch_namespace(mesh_namespace, {"metadata": {"labels": {"istio.io/rev": "canary"}}})
    # The API server matches namespaceSelectors against its namespace cache, which follows the relabel a
    # moment later; dry-run pods (which reach webhooks without side effects) show when it has.
    waits.wait_until(
        lambda: dry_run_reaches(kube, recorder, mesh_namespace, "/inject/canary"),
        condition="the API server to route the relabelled namespace to canary",
        timeout=30,
    )
    pod(kube, mesh_namespace, "after-move")
    by_path: dict[str, set[str]] = {}
    for r in recorder.requests(kind="Pod", namespace=mesh_namespace):
        if not r.dry_run:
            by_path.setdefault(r.name, set()).add(r.path)
    assert by_path == {"before-move": {f"/inject/{old_rev}"}, "after-move": {"/inject/canary"}}

    mesh_helm.upgrade(
        BASE_RELEASE[0],
        CHARTS / "base",
        namespace=ns,
        wait=True,
        extra=("--reuse-values", "--set", "defaultRevision=canary"),
    )
    validator = kube.admission.read_validating_webhook_configuration("istiod-default-validator")
    assert validator.webhooks[0].client_config.service.name == "istiod-canary"
    assert validator.metadata.labels["istio.io/rev"] == "canary"

    mesh_helm.uninstall("istiod-a", namespace=ns, wait=True)
    dangling = [f"{kind} {name}" for kind, name in labelled_objects(kube) if old_rev in name]
    assert dangling == []
    waits.deployment_available(kube.apps, ns, "istiod-canary")


def dry_run_reaches(kube: Kube, recorder: AdmissionRecorder, namespace: str, path: str) -> bool:
    name = f"probe-{time.monotonic_ns()}"
    kube.core.create_namespaced_pod(
        namespace,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="busybox:1.36")]),
        ),
        dry_run="All",
    )
    return bool(recorder.requests(path=path, kind="Pod", namespace=namespace, name=name))


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


def readme_migration_script() -> str:
    readme = (CHARTS / "gateway" / "README.md").read_text()
    section = readme.split("## Migrating", 1)[1]
    return re.search(r"```console\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_a_pre_1_12_ingress_gateway_is_adopted_with_the_documented_steps(
    control_plane: ControlPlane,
    mesh_helm: Helm,
    kube: Kube,
    mesh_namespace: str,
    recorder: AdmissionRecorder,
    tmp_path: Path,
) -> None:
    fixture = list(yaml.safe_load_all((REPO / "ci" / "fixtures" / "pre-1.12-ingressgateway.yaml").read_text()))
    utils.create_from_yaml(kube.api_client, yaml_objects=fixture, namespace=mesh_namespace)
    waits.deployment_available(kube.apps, mesh_namespace, "istio-ingressgateway")
    old_service = kube.core.read_namespaced_service("istio-ingressgateway", mesh_namespace)
    address = waits.service_address(kube.core, mesh_namespace, "istio-ingressgateway")

    # The README's steps, run as written, with this checkout's chart in place of the repository's.
    script = readme_migration_script().replace("NS=istio-system", f"NS={mesh_namespace}")
    script = script.replace("meshcharts/gateway", str(CHARTS / "gateway"))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "kubectl").symlink_to(tools.path("kubectl"))
    (bindir / "helm").symlink_to(mesh_helm.binary)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "KUBECONFIG": str(mesh_helm.kubeconfig)}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr

    deployment = waits.deployment_available(kube.apps, mesh_namespace, "istio-ingressgateway")
    assert deployment.spec.selector.match_labels == {"app": "istio-ingressgateway", "istio": "ingressgateway"}
    assert deployment.spec.template.spec.containers[0].image == "auto"
    service = kube.core.read_namespaced_service("istio-ingressgateway", mesh_namespace)
    assert service.spec.cluster_ip == old_service.spec.cluster_ip
    assert waits.service_address(kube.core, mesh_namespace, "istio-ingressgateway") == address
    assert [(p.name, p.port) for p in service.spec.ports] == [(p.name, p.port) for p in old_service.spec.ports]
    status = mesh_helm.run(["status", "istio-ingressgateway", "--namespace", mesh_namespace])
    assert "STATUS: deployed" in status
    mesh_helm.uninstall("istio-ingressgateway", namespace=mesh_namespace, wait=True)
