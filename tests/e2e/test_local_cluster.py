"""A real local cluster (apiserver, etcd, controller-manager, scheduler, kwok) up, used and taken down."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from meshcharts import cluster, tools
from meshcharts.cluster import get_provider
from meshcharts.cluster._common import listening_ports, pid_alive, wait_ready
from meshcharts.cluster.local import LOCAL_COMPONENTS, Local
from meshcharts.errors import ClusterError, ToolError
from meshcharts.helm import Helm
from meshcharts.kube import api_client, kube_for

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

NEEDED = (*get_provider("local").needs, "helm", "helm3")


@pytest.fixture(scope="module", autouse=True)
def local_provider_only(pytestconfig: pytest.Config) -> None:
    if pytestconfig.getoption("--cluster-provider") != "local":
        pytest.skip("tests the local provider itself; runs with --cluster-provider local")


@pytest.fixture(scope="module")
def k8s_version(pytestconfig: pytest.Config, local_provider_only: None) -> str:
    """The Kubernetes release these clusters run: the plugin's --k8s-version (CI runs both releases)."""
    return str(pytestconfig.getoption("--k8s-version"))


@pytest.fixture(scope="module", autouse=True)
def toolchain(k8s_version: str) -> None:
    try:
        for name in NEEDED:
            tools.path(name, k8s_version=k8s_version)
    except ToolError as err:
        pytest.skip(f"requires the built toolchain: {err}")


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_for(what: str, check: Callable[[], bool], *, timeout: float) -> None:
    """Poll `check` until true; fail naming `what` after `timeout` seconds of wall clock."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def _processes_mentioning(text: str) -> dict[int, str]:
    found: dict[int, str] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and pid_alive(int(proc.name)):
            found[int(proc.name)] = cmdline
    return found


def _listen_addresses(ports: set[int]) -> set[str]:
    """Local addresses of the LISTEN sockets on `ports`, from /proc/net/tcp (IPv4) and tcp6."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port, 16) in ports:
                if len(address) == 8:
                    found.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
                else:
                    found.add(f"ipv6:{address}")
    return found


def _deployment(name: str, replicas: int) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="probe", image="busybox:1.36")]),
            ),
        ),
    )


def _available(apps: client.AppsV1Api, namespace: str, name: str, replicas: int) -> bool:
    status: Any = apps.read_namespaced_deployment_status(name, namespace).status
    conditions = {c.type: c.status for c in status.conditions or []}
    return conditions.get("Available") == "True" and (status.available_replicas or 0) == replicas


def _namespace_gone(core: client.CoreV1Api, namespace: str) -> bool:
    try:
        core.read_namespace(namespace)
    except ApiException as err:
        if err.status == 404:
            return True
        raise
    return False


def test_local_cluster_runs_a_deployment_then_goes_down_leaving_no_process_or_port(k8s_version: str) -> None:
    name = _unique("e2e")
    local = Local()
    up = cluster.up(name, timeout=120, k8s_version=k8s_version)
    try:
        assert up.kubeconfig == local.kubeconfig(name)
        pids = local.pids(name)
        ports = local.ports(name)
        assert set(pids) == set(LOCAL_COMPONENTS)
        assert set(ports.values()) <= listening_ports()
        assert _listen_addresses(set(ports.values())) == {"127.0.0.1"}, "components must listen on loopback only"
        proxy = local.egress(name).pid()
        assert proxy is not None and pid_alive(proxy)

        api = api_client(up.kubeconfig)
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        nodes = core.list_node().items
        assert len(nodes) == 2

        namespace = _unique("probe")
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        apps.create_namespaced_deployment(namespace, _deployment("probe", 2))
        wait_for(
            "Deployment probe Available with 2 replicas",
            lambda: _available(apps, namespace, "probe", 2),
            timeout=60,
        )
        pods = core.list_namespaced_pod(namespace, label_selector="app=probe").items
        assert sorted(p.status.phase for p in pods) == ["Running", "Running"]

        apps.patch_namespaced_deployment_scale(namespace=namespace, name="probe", body={"spec": {"replicas": 3}})
        wait_for(
            "Deployment probe Available with 3 replicas",
            lambda: _available(apps, namespace, "probe", 3),
            timeout=60,
        )

        core.delete_namespace(namespace)
        wait_for(
            f"namespace {namespace} deleted by the namespace controller",
            lambda: _namespace_gone(core, namespace),
            timeout=90,
        )
        api.close()
    finally:
        said: list[str] = []
        cluster.down(name, timeout=60, say=said.append)

    # The five components and the egress proxy.
    assert said[-1].endswith("none of its 6 processes and 6 ports is left"), said
    assert {c: p for c, p in pids.items() if pid_alive(p)} == {}
    assert not pid_alive(proxy)
    assert not local.egress(name).directory.exists()
    assert not local.owner_path(name).exists()
    assert set(ports.values()) & listening_ports() == set()
    assert _processes_mentioning(str(local.cluster_dir(name))) == {}
    assert not local.cluster_dir(name).exists()


def test_two_clusters_brought_up_at_once_get_their_own_ports_and_both_become_ready() -> None:
    names = [_unique("e2e"), _unique("e2e")]
    local = Local()
    errors: list[BaseException] = []

    def bring_up(name: str) -> None:
        try:
            cluster.up(name, timeout=120)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=bring_up, args=(name,)) for name in names]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        first, second = (set(local.ports(name).values()) for name in names)
        assert len(first) == len(second) == 6
        assert first.isdisjoint(second)
        for name in names:
            wait_ready(local.kubeconfig(name), nodes=2, timeout=10)
    finally:
        for name in names:
            cluster.down(name, timeout=60)


def test_up_on_a_port_in_use_fails_naming_the_port_and_starts_nothing() -> None:
    name = _unique("e2e")
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(ClusterError, match=rf"port {port} on 127.0.0.1 is in use.*fix: stop what holds it"):
            cluster.up(name, api_port=port)
    assert not Local().cluster_dir(name).exists()


def test_up_that_runs_out_of_time_cleans_up_after_itself() -> None:
    """Out of time while kwokctl starts the components (it takes seconds): when `up` raises, every process of the
    cluster has exited, and nothing of it starts afterwards."""
    name = _unique("e2e")
    local = Local()
    try:
        with pytest.raises(ClusterError, match=r"did not finish within 1s|timed out after [\d.]+s waiting for"):
            cluster.up(name, timeout=1.0)
    finally:
        if local.exists(name):  # up returned (or left something): never leave a cluster behind
            cluster.down(name, timeout=60)
    assert _processes_mentioning(str(local.cluster_dir(name))) == {}
    assert not local.cluster_dir(name).exists()
    assert local.egress(name).pid() is None


def test_down_stops_a_component_that_has_no_pid_file(k8s_version: str) -> None:
    """A kwokctl killed between starting a component and writing its pid file (cluster up out of time) leaves a
    component no pid file names: `down` finds it by the cluster directory in its arguments, stops it by pid
    and returns only once it has exited."""
    name = _unique("e2e")
    local = Local(k8s_version=k8s_version)
    cluster.up(name, timeout=120, k8s_version=k8s_version)
    stray = None
    try:
        scheduler = tools.path("kube-scheduler", k8s_version=k8s_version)
        stray = subprocess.Popen(
            [str(scheduler), f"--kubeconfig={local.kubeconfig(name)}", "--secure-port=0", "--leader-elect=false"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(
            "the stray scheduler to run",
            lambda: stray.pid in _processes_mentioning(str(local.cluster_dir(name))),
            timeout=30,
        )
        assert stray.pid not in local.pids(name).values()
    finally:
        said: list[str] = []
        cluster.down(name, timeout=60, say=said.append)
    assert stray is not None
    assert any(f"pid {stray.pid} of local cluster {name} has no pid file" in line for line in said), said
    # down returned: the stray process has already exited (its exit status is there to collect at once).
    assert stray.poll() is not None
    assert _processes_mentioning(str(local.cluster_dir(name))) == {}


def test_the_cluster_of_a_killed_test_run_is_pruned_leaving_no_process_or_port(k8s_version: str) -> None:
    """A test run owns its session cluster; killed with SIGKILL it cannot take it down: prune does."""
    name = _unique("orphan")
    local = Local()
    script = (
        "import os, sys, time\n"
        "from meshcharts import cluster\n"
        f"cluster.up({name!r}, timeout=120, k8s_version={k8s_version!r}, owner=os.getpid())\n"
        "print('up', flush=True)\n"
        "time.sleep(300)\n"
    )
    run = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert run.stdout is not None and run.stdout.readline().strip() == "up"
        pids, ports, proxy = local.pids(name), local.ports(name), local.egress(name).pid()
        assert proxy is not None and len(pids) == len(LOCAL_COMPONENTS)
        assert local.orphaned(name) is None
        assert name not in cluster.prune()  # its owner still runs
    finally:
        run.kill()
        run.wait()
    assert local.orphaned(name) == f"its owner process {run.pid} is gone"
    said: list[str] = []
    assert name in cluster.prune(say=said.append)
    assert f"pruning local cluster {name}: its owner process {run.pid} is gone" in said
    assert {c: p for c, p in pids.items() if pid_alive(p)} == {}
    assert not pid_alive(proxy)
    assert set(ports.values()) & listening_ports() == set()
    assert name not in local.names()


@pytest.fixture(scope="module")
def local_cluster(mesh_cluster: cluster.Cluster) -> cluster.Cluster:
    """The plugin's session cluster (a local one here: see local_provider_only); one fewer bring-up."""
    return mesh_cluster


def test_up_of_a_cluster_that_is_already_up_returns_it_without_starting_another(
    local_cluster: cluster.Cluster, k8s_version: str
) -> None:
    local = Local()
    pids = local.pids(local_cluster.name)
    said: list[str] = []
    again = cluster.up(local_cluster.name, timeout=30, say=said.append, k8s_version=k8s_version)
    assert again == local_cluster
    assert local.pids(local_cluster.name) == pids
    assert said[0] == f"local cluster {local_cluster.name} already exists; waiting for it to be ready"
    assert said[1].startswith("egress: the API server dials webhooks, aggregated APIs and proxies only through")
    assert len(said) == 2


def test_kubectl_reports_the_requested_release_as_server_and_client(
    local_cluster: cluster.Cluster, k8s_version: str
) -> None:
    out = subprocess.run(
        [str(tools.path("kubectl", k8s_version=k8s_version)), "version", "-o", "json"],
        env=local_cluster.env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    versions = json.loads(out)
    server, client_version = versions["serverVersion"]["gitVersion"], versions["clientVersion"]["gitVersion"]
    print(f"kubectl version: server {server}, client {client_version}")
    assert versions["serverVersion"]["gitVersion"] == k8s_version
    assert versions["clientVersion"]["gitVersion"] == k8s_version


def test_helm_reports_v4_3_1_and_helm3_v3_22_0() -> None:
    assert Helm().version() == "v4.3.1"
    assert Helm(major=3).version() == "v3.22.0"


def test_helm_installs_upgrades_rolls_back_and_uninstalls_a_chart(
    local_cluster: cluster.Cluster, tmp_path: Path
) -> None:
    helm = Helm(
        kubeconfig=local_cluster.kubeconfig,
        env={
            **os.environ,
            "HELM_CACHE_HOME": str(tmp_path / "cache"),
            "HELM_CONFIG_HOME": str(tmp_path / "config"),
            "HELM_DATA_HOME": str(tmp_path / "data"),
        },
    )
    helm.run(["create", str(tmp_path / "probe")])
    chart = tmp_path / "probe"
    namespace = _unique("helm")
    helm.install("probe", chart, namespace=namespace, wait=True, timeout=120)
    helm.upgrade("probe", chart, namespace=namespace, set_values={"replicaCount": "2"}, wait=True, timeout=120)
    history = json.loads(helm.run(["history", "probe", "--namespace", namespace, "-o", "json"]))
    assert [h["revision"] for h in history] == [1, 2]
    helm.rollback("probe", 1, namespace=namespace, wait=True, timeout=120)
    apps = kube_for(local_cluster.kubeconfig).apps
    assert apps.read_namespaced_deployment("probe", namespace).spec.replicas == 1
    helm.uninstall("probe", namespace=namespace, wait=True, timeout=120)
    assert apps.list_namespaced_deployment(namespace).items == []
