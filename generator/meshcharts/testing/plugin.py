"""The meshcharts pytest plugin: a session cluster, the official Kubernetes client, a fresh namespace
per test, the Helm adapter and a release factory that cleans up and explains failures.

Registered through the `pytest11` entry point, so any project that installs meshcharts can use the
fixtures. Nothing starts until a test asks for a cluster fixture.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Generator, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from meshcharts import cluster as cluster_mod
from meshcharts import controlplane, tools, waits
from meshcharts.cluster.local.egress import Egress
from meshcharts.errors import ClusterError, UsageError
from meshcharts.helm import Helm
from meshcharts.kube import Kube, KubeApiError, kube_for
from meshcharts.paths import find_root
from meshcharts.testing import skips
from meshcharts.testing.registry import MISSING as REGISTRY_MISSING
from meshcharts.testing.registry import OciRegistry, registry_binary
from meshcharts.testing.releases import ReleaseFactory
from meshcharts.upgrade import PathResult, write_report

CLUSTER_FIXTURES = ("mesh_cluster", "kube_cluster", "kube_config")
ALLOWED_SKIPS = pytest.StashKey[tuple[Path, list[skips.AllowedSkip]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("meshcharts", "meshcharts cluster tests")
    group.addoption(
        "--cluster-provider",
        choices=list(cluster_mod.PROVIDERS),
        default="local",
        help="where the session cluster comes from (default: local, kwok-simulated nodes)",
    )
    # --kubeconfig comes from pytest-helm-charts (a dependency; its option for KUBECONFIG): registering it
    # here too would make whichever plugin loads second fail, so the existing provider reads theirs.
    group.addoption("--keep-cluster", action="store_true", help="leave the session cluster running afterwards")
    group.addoption(
        "--cluster-name",
        default=None,
        help="name of the session cluster (default: meshcharts-test with --keep-cluster, so a later run reuses it; "
        "otherwise one of this run's own, so concurrent runs never share a cluster)",
    )
    group.addoption(
        "--upgrade-report",
        default=None,
        metavar="DIR",
        help="write the upgrade matrix results there as Markdown, HTML and JSON",
    )
    group.addoption("--helm", choices=("4", "3"), default="4", help="Helm major version the fixtures use")
    group.addoption(
        "--mesh-charts",
        default=None,
        metavar="LOCATION",
        help="where mesh_control_plane takes base and istiod from: a directory holding them, oci://REGISTRY/PATH "
        "or a repository alias (default: charts/ of the meshcharts tree here)",
    )
    group.addoption("--mesh-version", default=None, help="chart version for an oci:// or repository --mesh-charts")
    group.addoption(
        "--mesh-values",
        action="append",
        default=[],
        metavar="CHART=FILE",
        help="values file for base or istiod in mesh_control_plane (repeatable), e.g. istiod=values/istiod.yaml",
    )
    group.addoption(
        "--allowed-skips",
        default=None,
        metavar="FILE",
        help="fail every skipped test whose reason no entry of FILE allows (a CI job missing a tool fails, not "
        "skips); see meshcharts.testing.skips for the format",
    )
    group.addoption(
        "--k8s-version",
        default=tools.DEFAULT_KUBERNETES,
        help="Kubernetes version of the session cluster: a toolchain release for local "
        f"({', '.join(sorted(tools.KUBERNETES_RELEASES))}), a minor such as 1.33 for kind "
        f"(default {tools.DEFAULT_KUBERNETES})",
    )


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--allowed-skips", None)
    if path:
        try:
            config.stash[ALLOWED_SKIPS] = (Path(path), skips.load(Path(path)))
        except UsageError as err:
            raise pytest.UsageError(str(err)) from err
    config.addinivalue_line("markers", "helm3: runs with Helm 3 too (select with --helm 3 -m helm3)")
    config.addinivalue_line("markers", "namespace_labels(labels): labels of the test's fresh namespace")
    config.addinivalue_line(
        "markers",
        "local_only(why): holds only on a cluster whose pods are simulated and whose API server's egress passes "
        "our proxy (the local provider: simulated pods, the egress proxy, the admission recorder); skipped "
        "elsewhere with `why`",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that use pytest-helm-charts' kube_cluster get the session cluster first, so its KUBECONFIG is set;
    local_only tests skip on other providers, naming why."""
    provider = config.getoption("--cluster-provider", "local")
    caps = cluster_mod.get_provider(provider).capabilities
    local_like = caps.simulated_pods and caps.egress_proxy
    for item in items:
        marker = item.get_closest_marker("local_only")
        if marker is not None and not local_like:
            why = marker.args[0] if marker.args else "it needs the local provider"
            item.add_marker(pytest.mark.skip(reason=f"holds only on the local provider, not {provider}: {why}"))
        names = getattr(item, "fixturenames", None)
        if names is not None and ("kube_cluster" in names or "kube_config" in names) and "mesh_cluster" not in names:
            names.insert(0, "mesh_cluster")


@pytest.fixture(scope="session")
def mesh_cluster(pytestconfig: pytest.Config) -> Iterator[cluster_mod.Cluster]:
    """The session cluster: brought up once (or found up), KUBECONFIG exported, taken down at the end."""
    provider = pytestconfig.getoption("--cluster-provider")
    keep = pytestconfig.getoption("--keep-cluster")
    # A random suffix, not the pid: containers reuse pids, and a reused name would adopt a stranger's cluster.
    name = pytestconfig.getoption("--cluster-name") or (
        "meshcharts-test" if keep else f"meshcharts-test-{uuid.uuid4().hex[:8]}"
    )
    worker = _xdist_worker(pytestconfig)
    if worker and (pytestconfig.getoption("--cluster-name") or keep):
        # pytest-xdist: each worker is a test run of its own with a session cluster of its own.
        name = f"{name}-{worker}"
    kubeconfig = pytestconfig.getoption("--kubeconfig", None)
    backend = cluster_mod.get_provider(provider)
    unavailable = backend.unavailable()
    if unavailable:
        pytest.skip(unavailable)
    try:
        # Clusters of killed test runs (and dead ones) go first: they hold processes and ports.
        backend.prune(timeout=60, say=lambda _: None)
    except ClusterError as err:
        pytest.fail(f"pruning the clusters of earlier test runs failed: {err}", pytrace=False)
    existed = backend.capabilities.owns_clusters and backend.exists(name)
    try:
        cluster = cluster_mod.up(
            name,
            provider=provider,
            kubeconfig=Path(kubeconfig) if kubeconfig else None,
            k8s_version=pytestconfig.getoption("--k8s-version"),
            timeout=180,
            owner=None if keep or existed else os.getpid(),
        )
    except ClusterError as err:
        pytest.fail(f"the session cluster could not be brought up: {err}", pytrace=False)
    previous = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
    try:
        yield cluster
    finally:
        if previous is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous
        if backend.capabilities.owns_clusters and not keep and not existed:
            backend.down(name, timeout=60, say=lambda _: None)


@pytest.fixture(scope="session")
def kube(mesh_cluster: cluster_mod.Cluster) -> Kube:
    """The official `kubernetes` client for the session cluster."""
    return kube_for(mesh_cluster.kubeconfig)


@pytest.fixture(scope="session")
def mesh_egress(mesh_cluster: cluster_mod.Cluster) -> Egress:
    """The local session cluster's egress proxy: where its API server may connect (loopback, routed Services).

    Route a Service's webhooks to a server on loopback with `AdmissionRecorder.stand_in_for(mesh_egress, ...)`.
    """
    if not mesh_cluster.capabilities.egress_proxy:
        pytest.skip(
            f"requires the local provider's egress proxy; on {mesh_cluster.provider}, Services route to real pods"
        )
    return mesh_cluster.backend.egress(mesh_cluster.name)


@pytest.fixture(scope="session")
def mesh_real_pods(mesh_cluster: cluster_mod.Cluster) -> None:
    """Skips whatever needs pods that really run (istiod answering its webhooks) on a cluster whose nodes are
    all simulated by kwok, naming that. On the local provider istiod runs on the host instead."""
    try:
        why = mesh_cluster.simulated_pods()
    except ClusterError as err:
        pytest.fail(f"cannot tell whether pods run on the session cluster: {err}", pytrace=False)
    if why:
        pytest.skip(why)


@pytest.fixture(scope="session")
def mesh_control_plane(
    request: pytest.FixtureRequest,
    pytestconfig: pytest.Config,
    mesh_cluster: cluster_mod.Cluster,
    mesh_helm: Helm,
    kube: Kube,
) -> Iterator[controlplane.ControlPlane]:
    """base and istiod in istio-system, installed once per test run with your values only, as users install them,
    and a real istiod answering their webhooks.

    Where pods run, that is the chart's istiod Deployment. On the local provider (pods never run) the same
    Deployment runs on this host as pilot-discovery from the toolchain (`.host_istiod`), with a token of the
    chart's own ServiceAccount, reached through the chart's Services. Returns once istiod has written its CA
    into every webhook of its revision; `went_through_injector(kube, namespace, pod)` holds on every provider.
    Uninstalled (and the host istiod stopped) at the end unless the cluster is kept. Elsewhere it skips where
    no pod runs (`mesh_real_pods`): istiod could not answer.
    """
    runner = mesh_cluster.backend.istiod_runner(mesh_cluster.name)
    if not mesh_cluster.capabilities.simulated_pods:
        request.getfixturevalue("mesh_real_pods")
    charts = pytestconfig.getoption("--mesh-charts")
    if charts is None:
        try:
            charts = str(find_root().charts)
        except UsageError:
            pytest.skip(
                "mesh_control_plane needs --mesh-charts LOCATION (no meshcharts tree here to take charts/ from)"
            )
    values: dict[str, list[Path]] = {}
    for entry in pytestconfig.getoption("--mesh-values"):
        chart, sep, file = entry.partition("=")
        if not sep or chart not in ("base", "istiod") or not Path(file).is_file():
            raise pytest.UsageError(f"--mesh-values {entry!r}: write base=FILE or istiod=FILE with an existing FILE")
        values.setdefault(chart, []).append(Path(file).absolute())
    plane = controlplane.install(
        mesh_helm,
        kube,
        charts=charts,
        version=pytestconfig.getoption("--mesh-version"),
        values=values,
        runner=runner,
        timeout=300,
    )
    yield plane
    if not pytestconfig.getoption("--keep-cluster"):
        controlplane.uninstall(mesh_helm)
        plane.istiod.stop()


@pytest.fixture(scope="session")
def mesh_helm(pytestconfig: pytest.Config, mesh_cluster: cluster_mod.Cluster) -> Helm:
    """The pinned Helm (--helm 4 or 3) bound to the session cluster's kubeconfig."""
    return Helm(major=int(pytestconfig.getoption("--helm")), kubeconfig=mesh_cluster.kubeconfig)


def _namespace_name(node_name: str) -> str:
    stem = re.sub(r"[^a-z0-9-]+", "-", node_name.lower()).strip("-")[:40].strip("-")
    return f"{stem}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def mesh_namespace(request: pytest.FixtureRequest, kube: Kube) -> Iterator[str]:
    """A fresh namespace for one test, labelled from @pytest.mark.namespace_labels, deleted afterwards."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    marker = request.node.get_closest_marker("namespace_labels")
    labels = dict(marker.args[0]) if marker else {}
    name = _namespace_name(request.node.name)
    try:
        kube.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))
    except ApiException as err:
        raise KubeApiError(f"creating namespace {name}", err) from err
    yield name
    with contextlib.suppress(Exception):
        kube.core.delete_namespace(name)


def control_plane_logs(mesh_cluster: cluster_mod.Cluster, lines: int = 20) -> str:
    """The log tails of the cluster's control-plane components, where this host has them."""
    return mesh_cluster.backend.logs(mesh_cluster.name, lines)


def istiod_logs(mesh_cluster: cluster_mod.Cluster, lines: int = 40) -> str:
    """The log tail of each real istiod run on this host for this cluster ("" where istiod's pod log is the
    cluster's)."""
    return mesh_cluster.backend.logs(mesh_cluster.name, lines, istiod=True)


@pytest.fixture
def releases(
    request: pytest.FixtureRequest,
    mesh_helm: Helm,
    mesh_namespace: str,
    kube: Kube,
    mesh_cluster: cluster_mod.Cluster,
    tmp_path: Path,
) -> Generator[ReleaseFactory, None, None]:
    """Helm install/upgrade/rollback/uninstall/template in the test's namespace; uninstalled afterwards."""
    factory = ReleaseFactory(mesh_helm, namespace=mesh_namespace, workdir=tmp_path)
    request.node.stash[_FACTORY] = (factory, kube, mesh_cluster)
    yield factory
    problems = factory.cleanup()
    if problems:
        pytest.fail("cleanup failed: " + "; ".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def oci_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OciRegistry]:
    """A real OCI registry (Debian's docker-registry) on 127.0.0.1, empty storage, no auth; stopped by pid."""
    if registry_binary() is None:
        pytest.skip(REGISTRY_MISSING)
    with OciRegistry(tmp_path_factory.mktemp("oci-registry")) as registry:
        yield registry


_FACTORY = pytest.StashKey[tuple[ReleaseFactory, Kube, cluster_mod.Cluster]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """On a failed test that used the release factory, attach what explains it to the report; on any failed test of
    the session cluster, the log tails of the host istiods answering its webhooks. With --allowed-skips, a skip
    no entry allows becomes a failure."""
    report = yield
    _gate_skip(item.config, report)
    if report.when == "call" and report.failed and _FACTORY in item.stash:
        factory, kube, mesh_cluster = item.stash[_FACTORY]
        try:
            text = factory.diagnostics(kube.core, lambda: control_plane_logs(mesh_cluster))
        except Exception as err:  # diagnostics must never hide the real failure
            text = f"collecting diagnostics failed: {err}"
        report.sections.append(("meshcharts diagnostics", text))
    funcargs = getattr(item, "funcargs", {})
    if (
        report.when in ("setup", "call")
        and report.failed
        and isinstance(funcargs.get("mesh_cluster"), cluster_mod.Cluster)
    ):
        text = istiod_logs(funcargs["mesh_cluster"])
        if text:
            report.sections.append(("istiod logs", text))
    return report


_UPGRADE_RESULTS = pytest.StashKey[list[PathResult]]()


@pytest.fixture(scope="session")
def upgrade_results(pytestconfig: pytest.Config) -> list[PathResult]:
    """Upgrade tests append one PathResult per path; the session writes them with --upgrade-report DIR."""
    return pytestconfig.stash.setdefault(_UPGRADE_RESULTS, [])


def _xdist_worker(config: pytest.Config) -> str | None:
    """The pytest-xdist worker id (gw0, gw1, ...) when this process is one of its workers."""
    workerinput = getattr(config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else None


_WORKER_RESULTS_KEY = "meshcharts_upgrade_results"


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist's controller: gather the upgrade results a worker sent back (see pytest_sessionfinish)."""
    rows = getattr(node, "workeroutput", {}).get(_WORKER_RESULTS_KEY, [])
    node.config.stash.setdefault(_UPGRADE_RESULTS, []).extend(PathResult(**row) for row in rows)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Writes the upgrade report; under pytest-xdist the workers hand their results to the controller,
    which writes the one report of the whole run."""
    results = session.config.stash.get(_UPGRADE_RESULTS, [])
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[_WORKER_RESULTS_KEY] = [asdict(r) for r in results]
        return
    target = session.config.getoption("--upgrade-report", None)
    if target:
        # Written even when no upgrade path ran here (a shard holding none): merge-results then finds every
        # shard's report.
        write_report(results, Path(target))


__all__ = ["Kube", "OciRegistry", "kube_for", "waits"]


def _gate_skip(config: pytest.Config, report: pytest.TestReport | pytest.CollectReport) -> None:
    """With --allowed-skips, turn a skip no entry allows into a failure naming its reason. Runs where the report
    is made (an xdist worker too), so the controller and every report format see a failure."""
    if ALLOWED_SKIPS not in config.stash or not report.skipped or hasattr(report, "wasxfail"):
        return
    path, allowed = config.stash[ALLOWED_SKIPS]
    provider = config.getoption("--cluster-provider", "local")
    reason = skips.reason_of(report.longrepr)
    if not skips.allows(allowed, reason, provider):
        report.outcome = "failed"
        report.longrepr = skips.refusal(reason, path, provider)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    report = yield
    _gate_skip(collector.config, report)
    return report
