"""The plugin on a real cluster: a user's own chart installed through the fixtures, and a failure explained."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

import pytest
from kubernetes import client

from meshcharts import tools, waits
from meshcharts.cluster import Cluster
from meshcharts.cluster._common import KWOK_NODE_ANNOTATION
from meshcharts.testing.plugin import Kube
from meshcharts.testing.releases import ReleaseFactory

pytest_plugins = ["pytester"]

# pytester gives the inner run a HOME of its own; point it at the real toolchain cache.
CACHE = tools.cache_root()


def make_chart(root: Path, replicas: int = 2) -> Path:
    chart = root / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: probe\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text(f"replicas: {replicas}\n")
    (chart / "templates" / "deployment.yaml").write_text(
        textwrap.dedent("""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: probe}
        spec:
          replicas: {{ .Values.replicas }}
          selector: {matchLabels: {app: probe}}
          template:
            metadata: {labels: {app: probe}}
            spec: {containers: [{name: probe, image: busybox:1.36}]}
        """)
    )
    return chart


def test_release_factory_installs_upgrades_rolls_back_and_cleans_up(
    releases: ReleaseFactory, kube: Kube, mesh_namespace: str, tmp_path: Path
) -> None:
    chart = make_chart(tmp_path)
    releases.install("probe", chart)
    assert waits.deployment_available(kube.apps, mesh_namespace, "probe", timeout=60).spec.replicas == 2
    releases.upgrade("probe", chart, values={"replicas": 3})
    assert waits.deployment_available(kube.apps, mesh_namespace, "probe", timeout=60).spec.replicas == 3
    releases.rollback("probe", 1)
    assert kube.apps.read_namespaced_deployment("probe", mesh_namespace).spec.replicas == 2
    assert [h["revision"] for h in releases.history("probe")] == [1, 2, 3]
    assert releases.cleanup() == []
    assert kube.apps.list_namespaced_deployment(mesh_namespace).items == []


def test_pytest_helm_charts_kube_cluster_sees_the_session_cluster(
    kube_cluster: object, mesh_cluster: Cluster, kube: Kube
) -> None:
    import pykube

    # The same nodes as the session cluster's own client sees, however many the provider gives it.
    nodes = sorted(n.name for n in pykube.Node.objects(kube_cluster.kube_client))  # type: ignore[attr-defined]
    assert nodes and nodes == sorted(n.metadata.name for n in kube.core.list_node().items)


def test_a_failing_user_test_reports_events_pods_helm_status_and_logs(
    pytester: pytest.Pytester, mesh_cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESHCHARTS_CACHE", str(CACHE))
    chart = make_chart(tmp_path)
    pytester.makepyfile(f"""
        def test_user_chart(releases, kube, mesh_namespace):
            releases.install("probe", {str(chart)!r})
            assert kube.apps.read_namespaced_deployment("probe", mesh_namespace).spec.replicas == 5
    """)
    result = pytester.runpytest_subprocess(
        "--cluster-provider", "existing", "--kubeconfig", str(mesh_cluster.kubeconfig)
    )
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "meshcharts diagnostics" in out
    assert "--- pods in test-user-chart" in out and "--- helm status probe" in out
    assert "STATUS: deployed" in out or "status: deployed" in out.lower()


def test_simulated_pods_names_kwok_until_one_node_may_run_pods(mesh_cluster: Cluster, kube: Kube) -> None:
    """What mesh_control_plane and the real-istiod fixtures ask (mesh_real_pods): every node kwok's, or not."""
    nodes = kube.core.list_node().items
    if not all((n.metadata.annotations or {}).get(KWOK_NODE_ANNOTATION) == "fake" for n in nodes):
        pytest.skip("this cluster has nodes kwok does not simulate; the test adds one next to simulated ones")
    simulated = (
        f"this cluster's nodes are simulated by kwok (every node has {KWOK_NODE_ANNOTATION}=fake): "
        "pods never run, so istiod cannot answer its webhooks"
    )
    assert mesh_cluster.simulated_pods() == simulated
    name = f"meshcharts-unsimulated-{uuid.uuid4().hex[:6]}"
    kube.core.create_node(client.V1Node(metadata=client.V1ObjectMeta(name=name)))
    try:
        assert mesh_cluster.simulated_pods() is None
    finally:
        kube.core.delete_node(name)
    waits.wait_until(lambda: mesh_cluster.simulated_pods() == simulated, condition=f"node {name} gone", timeout=10)
