"""Canary upgrades with revisions, and migrating a pre-1.12 ingress gateway into the gateway chart."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from kubernetes import utils

from meshcharts import controlplane, tools, waits
from meshcharts.helm import Helm
from meshcharts.testing.plugin import Kube
from tests.e2e.conftest import BASE_RELEASE, CHARTS, ControlPlane
from tests.upgrade.conftest import REPO, published_matrix
from tests.upgrade.steps import RevisionIstiods, injected_by, labelled_objects, pod, wait_injected_by

# The oldest published istiod of the base line, whose tree (charts/) the canary moves to.
OLD = min(
    (p.from_version for p in published_matrix() if p.chart == "istiod" and p.line is None),
    key=lambda v: tuple(int(x) for x in v.split(".")),
    default=None,
)


@pytest.mark.skipif(OLD is None, reason="requires a published istiod version in index.yaml")
def test_canary_from_the_published_revision_to_the_working_tree(
    canary_slate: None,
    revision_istiods: RevisionIstiods,
    mesh_helm: Helm,
    kube: Kube,
    chart_repo: str,
    mesh_namespace: str,
) -> None:
    ns = BASE_RELEASE[1]
    old_rev = f"r{OLD.replace('.', '-')}"
    mesh_helm.install(
        BASE_RELEASE[0], CHARTS / "base", namespace=ns, wait=True, set_values={"defaultRevision": old_rev}
    )
    mesh_helm.install(
        "istiod-a", "istiod", namespace=ns, version=OLD, wait=True, extra=("--repo", chart_repo),
        set_values={"revision": old_rev},
    )  # fmt: skip
    mesh_helm.install("istiod-b", CHARTS / "istiod", namespace=ns, wait=True, set_values={"revision": "canary"})
    revision_istiods.run(old_rev)
    revision_istiods.run("canary")

    kube.core.patch_namespace(mesh_namespace, {"metadata": {"labels": {"istio.io/rev": old_rev}}})
    wait_injected_by(kube, mesh_namespace, old_rev)
    pod(kube, mesh_namespace, "before-move")
    kube.core.patch_namespace(mesh_namespace, {"metadata": {"labels": {"istio.io/rev": "canary"}}})
    wait_injected_by(kube, mesh_namespace, "canary")
    pod(kube, mesh_namespace, "after-move")
    assert injected_by(kube, mesh_namespace) == {"before-move": old_rev, "after-move": "canary"}

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
    controlplane.wait_webhooks_trusted(kube, "canary", timeout=120)  # the canary's istiod took the default validator

    mesh_helm.uninstall("istiod-a", namespace=ns, wait=True)
    dangling = [f"{kind} {name}" for kind, name in labelled_objects(kube) if old_rev in name]
    assert dangling == []
    waits.deployment_available(kube.apps, ns, "istiod-canary")


def readme_migration_script() -> str:
    readme = (CHARTS / "gateway" / "README.md").read_text()
    section = readme.split("## Migrating", 1)[1]
    return re.search(r"```console\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_a_pre_1_12_ingress_gateway_is_adopted_with_the_documented_steps(
    control_plane: ControlPlane,
    mesh_helm: Helm,
    kube: Kube,
    mesh_namespace: str,
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
