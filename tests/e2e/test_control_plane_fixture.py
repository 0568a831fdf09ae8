"""mesh_control_plane as a user's project uses it: base and istiod at their values, then their gateway.

The inner test run brings up a cluster of its own (base and istiod are cluster-wide), with the charts
of this tree given as a user gives a local chart path. On the local provider a real istiod runs on the host
in place of the chart's istiod pod, behind istiod's own Service; it injects the gateway's pod, which then
runs (its image is no longer `auto`); `went_through_injector` holds wherever pods run too.
"""

from __future__ import annotations

import pytest

from meshcharts import tools
from meshcharts.cluster import Cluster
from tests import REPO

pytest_plugins = ["pytester"]

# pytester gives the inner run a HOME of its own; point it at the real toolchain cache (read before that).
CACHE = tools.cache_root()

USER_TEST = """
import pytest
from meshcharts import waits


def gateway_pods(kube, namespace):
    return kube.core.list_namespaced_pod(namespace, label_selector="app=ingress").items


def pull_failed(pod):
    waiting = [s.state.waiting for s in pod.status.container_statuses or [] if s.state and s.state.waiting]
    return any(w.reason in ("ErrImagePull", "ImagePullBackOff") for w in waiting)


def test_my_gateway_values_come_up_through_the_injector(mesh_control_plane, releases, kube, mesh_namespace):
    releases.install("ingress", CHARTS + "/gateway", values={"service": {"type": "ClusterIP"}})
    waits.deployment_available(kube.apps, mesh_namespace, "ingress", timeout=120)
    pods = gateway_pods(kube, mesh_namespace)
    assert pods
    for pod in pods:
        assert mesh_control_plane.went_through_injector(kube, mesh_namespace, pod.metadata.name), pod.metadata.name


@pytest.mark.namespace_labels({"istio-injection": "disabled"})
def test_a_gateway_in_a_namespace_without_injection_is_not_taken_for_injected(
    mesh_control_plane, releases, kube, mesh_namespace
):
    releases.install("ingress", CHARTS + "/gateway", values={"service": {"type": "ClusterIP"}}, wait=False)
    # Its image stays `auto`, which no registry serves: as on any cluster, the pod never runs.
    pods = waits.wait_until(
        lambda: [p for p in gateway_pods(kube, mesh_namespace) if pull_failed(p)],
        condition="the gateway pod failing to pull its image",
        timeout=60,
    )
    assert not mesh_control_plane.went_through_injector(kube, mesh_namespace, pods[0].metadata.name)
    assert not kube.apps.read_namespaced_deployment("ingress", mesh_namespace).status.ready_replicas
"""


def test_a_users_gateway_test_on_a_control_plane_installed_at_default_values(
    pytester: pytest.Pytester, pytestconfig: pytest.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    if pytestconfig.getoption("--cluster-provider") != "local":
        pytest.skip("brings up a local cluster of its own; elsewhere the suite's own run is the user's")
    monkeypatch.setenv("MESHCHARTS_CACHE", str(CACHE))
    pytester.makepyfile(test_users_gateway=f"CHARTS = {str(REPO / 'charts')!r}\n" + USER_TEST)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--mesh-charts", str(REPO / "charts"),
        "--k8s-version", pytestconfig.getoption("--k8s-version"), "--helm", pytestconfig.getoption("--helm"),
    )  # fmt: skip
    result.assert_outcomes(passed=2)


def test_a_users_control_plane_test_skips_naming_simulated_nodes_where_no_pod_runs(
    pytester: pytest.Pytester, mesh_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a cluster the user brought (provider existing) whose nodes are all kwok's, istiod could never answer:
    the user's tests skip with that reason instead of hanging or failing on an unanswered webhook."""
    if mesh_cluster.provider != "existing":
        pytest.skip(f"needs --cluster-provider existing (the inner run uses this cluster), not {mesh_cluster.provider}")
    simulated = mesh_cluster.simulated_pods()
    if simulated is None:
        pytest.skip("pods may run on this cluster: the inner run would install base and istiod beside the suite's")
    monkeypatch.setenv("MESHCHARTS_CACHE", str(CACHE))
    pytester.makepyfile(test_users_gateway=f"CHARTS = {str(REPO / 'charts')!r}\n" + USER_TEST)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-rs", "--mesh-charts", str(REPO / "charts"),
        "--cluster-provider", "existing", "--kubeconfig", str(mesh_cluster.kubeconfig),
    )  # fmt: skip
    result.assert_outcomes(skipped=2)
    assert simulated in result.stdout.str()
