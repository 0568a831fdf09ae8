"""The local provider: kwokctl's binary runtime on the cached toolchain, confined to loopback.

Real kube-apiserver, etcd, kube-controller-manager and kube-scheduler, with kwok simulating nodes. The
API server's egress goes through `meshcharts.cluster.local.egress` (see its docstring and the README).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshcharts import tools
from meshcharts._files import atomic_write
from meshcharts.cluster._common import (
    LOG_TAIL_LINES,
    Cluster,
    Say,
    go_gc_percent,
    listener_pids,
    listening_ports,
    machine_lock,
    names_directory,
    pid_alive,
    pid_runs,
    port_free,
    process_start,
    processes_naming,
    quiet,
    run_tool,
    stop_pids,
    wait_ready,
)
from meshcharts.cluster.local import istiod as host_istiod
from meshcharts.cluster.local.egress import Egress
from meshcharts.cluster.provider import Capabilities, UpRequest
from meshcharts.errors import ClusterError, ToolError, UsageError
from meshcharts.paths import package_data

# kwokctl's binary runtime component names, as used for its pid and log files.
LOCAL_COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok-controller")

_KWOKCTL_CONFIG = """\
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  bindAddress: 127.0.0.1
"""


# --- local: kwokctl's binary runtime ----------------------------------------------------------------

# kwok Stages the local provider adds to kwok's defaults: package data (meshcharts/data/kwok).
LOCAL_STAGES = ("loadbalancer-stage.yaml", "uninjected-pod-stage.yaml")


def local_stages() -> tuple[Path, ...]:
    """The extra kwok Stage files the package ships (LoadBalancer addresses, uninjected pods), or ClusterError
    naming the missing one."""
    try:
        return tuple(package_data("kwok", stage) for stage in LOCAL_STAGES)
    except UsageError as err:
        raise ClusterError(f"cannot find the kwok stages of the local cluster: {err}") from err


@dataclass(frozen=True)
class Local:
    """kwokctl's binary runtime on the cached toolchain; its work directory lives in the meshcharts cache.

    `stages` are kwok Stage files given to kwok-controller in addition to the configuration kwokctl
    writes: a Stage in kwokctl's own `--config` would replace kwok's default node and pod stages.
    """

    cache: Path = field(default_factory=tools.cache_root)
    k8s_version: str = tools.DEFAULT_KUBERNETES
    stages: tuple[Path, ...] = ()

    @property
    def workdir(self) -> Path:
        return self.cache / "kwok"

    def cluster_dir(self, name: str) -> Path:
        return self.workdir / "clusters" / name

    def kubeconfig(self, name: str) -> Path:
        return self.cluster_dir(name) / "kubeconfig.yaml"

    def exists(self, name: str) -> bool:
        return self.cluster_dir(name).is_dir()

    def record_path(self, name: str) -> Path:
        return self.cluster_dir(name) / "meshcharts.json"

    def record(self, name: str) -> None:
        """Note the Kubernetes version beside kwokctl's files, so `down` stops it with the same binaries."""
        self.record_path(name).write_text(json.dumps({"k8s_version": self.k8s_version}) + "\n")

    def recorded_version(self, name: str) -> str:
        """The Kubernetes version the cluster was started with (the default for clusters without a record)."""
        try:
            recorded = json.loads(self.record_path(name).read_text())
        except (OSError, ValueError):
            return tools.DEFAULT_KUBERNETES
        version = recorded.get("k8s_version") if isinstance(recorded, dict) else None
        return version if isinstance(version, str) else tools.DEFAULT_KUBERNETES

    def binaries(self) -> dict[str, Path]:
        """Every binary kwokctl needs, or ClusterError naming the missing one and the command to build it."""
        chain = tools.Toolchain(self.cache, self.k8s_version)
        found: dict[str, Path] = {}
        for name in tools.LOCAL_CLUSTER_TOOLS:
            try:
                found[name] = chain.path(name)
            except ToolError as err:
                raise ClusterError(f"cannot start a local cluster: {err}") from err
        return found

    def env(self, binaries: Mapping[str, Path]) -> dict[str, str]:
        """Child environment: cached kubectl first on PATH, kwok's state under the cache, pinned version."""
        env = dict(os.environ)
        env["KWOK_WORKDIR"] = str(self.workdir)
        env["KWOK_KUBE_VERSION"] = self.k8s_version
        if "kubectl" in binaries:
            env["PATH"] = os.pathsep.join([str(binaries["kubectl"].parent), env.get("PATH", "")])
            env["KWOK_KUBECTL_BINARY"] = str(binaries["kubectl"])
        env.pop("KUBECONFIG", None)
        return env

    def owner_path(self, name: str) -> Path:
        return self.workdir / "owners" / f"{name}.json"

    def claim(self, name: str, owner: int | None) -> None:
        """Record who the cluster lives for, before anything of it starts: process `owner` (a test run), or,
        with None, the creating process until `up` finishes and nobody after (a kept cluster)."""
        pid = os.getpid() if owner is None else owner
        record = {"pid": pid, "started": process_start(pid), "kept": owner is None}
        atomic_write(self.owner_path(name), json.dumps(record) + "\n")

    def release_creation(self, name: str) -> None:
        """A kept cluster's creation finished: it now lives until `down`, whoever created it."""
        with contextlib.suppress(OSError, ValueError):
            record = json.loads(self.owner_path(name).read_text())
            if record.get("kept"):
                atomic_write(self.owner_path(name), json.dumps({"kept": True}) + "\n")

    def orphaned(self, name: str) -> str | None:
        """Why cluster `name` has nobody left to take it down, or None while it is owned and running."""
        try:
            record = json.loads(self.owner_path(name).read_text())
        except (OSError, ValueError):
            record = None
        if isinstance(record, dict) and "pid" in record:
            pid, started = record["pid"], record.get("started")
            if not pid_alive(pid) or process_start(pid) != started:
                return f"its owner process {pid} is gone"
            return None
        pids = self.pids(name)
        if not any(pid_alive(pid) for pid in pids.values()):
            return "none of its processes runs"
        return None

    def names(self) -> list[str]:
        """Every local cluster this cache knows of: kwokctl's directories, and owner or egress records left behind."""
        found = {p.name for p in (self.workdir / "clusters").glob("*") if p.is_dir()}
        found |= {p.stem for p in (self.workdir / "owners").glob("*.json")}
        found |= {p.name for p in (self.workdir / "egress").glob("*") if p.is_dir()}
        found |= {p.name for p in (self.workdir / "istiod").glob("*") if p.is_dir()}
        return sorted(found)

    def egress(self, name: str) -> Egress:
        """The loopback-only egress proxy of cluster `name` (kept beside, not inside, kwokctl's directory)."""
        return Egress(self.workdir / "egress" / name)

    def istiod_root(self, name: str) -> Path:
        """Where the real istiods run on this host for cluster `name` keep their files (one directory each)."""
        return self.workdir / "istiod" / name

    def start_istiod(
        self, name: str, *, namespace: str = "istio-system", deployment: str = "istiod", timeout: float = 120.0
    ) -> host_istiod.Started:
        """Run the chart's istiod Deployment `namespace/deployment` of cluster `name` as a real istiod on this
        host (see meshcharts.cluster.local.istiod); it lives until stopped or until the cluster goes down."""
        if not self.exists(name):
            raise ClusterError(f"no local cluster {name} to run istiod for; bring it up first")
        return host_istiod.start(
            self.kubeconfig(name),
            self.egress(name),
            self.istiod_root(name),
            namespace=namespace,
            deployment=deployment,
            cache=self.cache,
            timeout=timeout,
        )

    def istiods(self, name: str) -> list[host_istiod.HostIstiod]:
        return host_istiod.istiods_of(self.istiod_root(name))

    def kwokctl_config(self, name: str) -> str:
        """kwokctl configuration (read from stdin at create): the API server's egress selector, `stages` added to
        kwok-controller's --config, and every component's garbage collector target (`go_gc_percent`)."""
        gogc = go_gc_percent()
        # A list of its own per component: one object shared would be written as a YAML anchor and aliases.
        patches: dict[str, dict[str, Any]] = {
            c: {"name": c, "extraEnvs": [{"name": "GOGC", "value": gogc}]} for c in LOCAL_COMPONENTS
        }
        patches["kube-apiserver"]["extraArgs"] = [
            {"key": "egress-selector-config-file", "value": str(self.egress(name).config)}
        ]
        if self.stages:
            patches["kwok-controller"]["extraArgs"] = [
                {"key": "config", "value": str(path.absolute())} for path in self.stages
            ]
        return yaml.safe_dump(
            {
                "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
                "kind": "KwokctlConfiguration",
                "componentsPatches": list(patches.values()),
            },
            sort_keys=False,
        )

    def config(self) -> Path:
        """kwokctl options shared by every local cluster: components listen on loopback only."""
        path = self.workdir / "meshcharts-kwokctl.yaml"
        if not path.is_file() or path.read_text() != _KWOKCTL_CONFIG:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(_KWOKCTL_CONFIG)
            tmp.replace(path)
        return path

    def create_argv(self, name: str, binaries: Mapping[str, Path], *, api_port: int | None) -> list[str]:
        argv = [
            str(binaries["kwokctl"]),
            "--config",
            str(self.config()),
            "create",
            "cluster",
            "--name",
            name,
            "--runtime",
            "binary",
            "--kubeconfig",
            "",
            "--kube-apiserver-binary",
            str(binaries["kube-apiserver"]),
            "--kube-controller-manager-binary",
            str(binaries["kube-controller-manager"]),
            "--kube-scheduler-binary",
            str(binaries["kube-scheduler"]),
            "--kwok-controller-binary",
            str(binaries["kwok"]),
            "--etcd-binary",
            str(binaries["etcd"]),
        ]
        if api_port is not None:
            argv += ["--kube-apiserver-port", str(api_port)]
        return [*argv, "--config", "-"]

    def pids(self, name: str) -> dict[str, int]:
        """Component -> pid, from the pid files kwokctl keeps."""
        found: dict[str, int] = {}
        for pid_file in sorted((self.cluster_dir(name) / "pids").glob("*.pid")):
            with contextlib.suppress(OSError, ValueError):
                found[pid_file.stem] = int(pid_file.read_text().strip())
        return found

    def ports(self, name: str) -> dict[str, int]:
        """Component -> host port, from kwokctl's own record of the cluster."""
        try:
            docs = list(yaml.safe_load_all((self.cluster_dir(name) / "kwok.yaml").read_text()))
        except (OSError, yaml.YAMLError):
            return {}
        ports: dict[str, int] = {}
        for doc in docs:
            if not isinstance(doc, dict) or doc.get("kind") != "KwokctlConfiguration":
                continue
            for comp in doc.get("components") or []:
                for port in comp.get("ports") or []:
                    host = port.get("hostPort") or port.get("port")
                    if host:
                        ports[f"{comp.get('name')}/{port.get('name', '')}"] = int(host)
        return ports

    def executables(self, name: str) -> set[Path]:
        """The real files the cluster's components run (kwokctl links them into the cluster's bin/)."""
        found: set[Path] = set()
        with contextlib.suppress(OSError):
            for link in (self.cluster_dir(name) / "bin").iterdir():
                found.add(link.resolve())
        return found

    def component_executables(self, name: str) -> set[Path]:
        """What the cluster's components may run: the files its bin/ links to, and this toolchain's binaries
        (a kwokctl killed early may have started a component before linking every file)."""
        found = self.executables(name)
        chain = tools.Toolchain(self.cache, self.k8s_version)
        for tool in ("kwok", "etcd", *tools.KUBERNETES_COMPONENTS):
            with contextlib.suppress(ToolError):
                found.add(chain.path(tool).resolve())
        return found

    def log_tail(self, name: str, component: str, lines: int = LOG_TAIL_LINES) -> str:
        path = self.cluster_dir(name) / "logs" / f"{component}.log"
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return f"(no log at {path})"
        return "\n".join(text.splitlines()[-lines:])


def _port_in_use_hint(local: Local, name: str) -> str:
    for component in LOCAL_COMPONENTS:
        tail = local.log_tail(name, component, lines=200)
        for line in tail.splitlines():
            if "address already in use" in line:
                return (
                    f"\ncause: {component} could not listen, a port is in use: {line.strip()}\n"
                    "fix: stop what holds that port and retry (kwokctl picks free ports when it creates "
                    "a cluster; --api-port fixes only the API server's)"
                )
    return ""


@contextlib.contextmanager
def _prefetch_kubernetes_client() -> Iterator[None]:
    """Import the Kubernetes client while kwokctl starts processes: the import overlaps the wait."""
    thread = threading.Thread(target=lambda: __import__("kubernetes.client"), daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()


def up(
    local: Local, name: str, *, nodes: int, timeout: float, api_port: int | None, say: Say, owner: int | None = None
) -> Cluster:
    binaries = local.binaries()
    env = local.env(binaries)
    kubeconfig = local.kubeconfig(name)
    if local.exists(name) and local.recorded_version(name) != local.k8s_version:
        raise ClusterError(
            f"local cluster {name} already runs Kubernetes {local.recorded_version(name)}, not {local.k8s_version}; "
            f"fix: `meshcharts cluster down --name {name}` first, or pick another --name"
        )
    egress = local.egress(name)
    if local.exists(name):
        if local.pids(name) and all(pid_alive(p) for p in local.pids(name).values()):
            if not egress.config.is_file():
                raise ClusterError(
                    f"local cluster {name} was started without the loopback-only egress proxy, so its API server "
                    f"may dial addresses off this machine; fix: `meshcharts cluster down --name {name}` and bring "
                    "it up again"
                )
            say(f"local cluster {name} already exists; waiting for it to be ready")
            egress.start(kubeconfig)
            wait_ready(kubeconfig, nodes=nodes, timeout=timeout, logs=lambda c: local.log_tail(name, c))
            say(egress.describe())
            return Cluster(name, "local", kubeconfig)
        raise ClusterError(
            f"local cluster {name} exists in {local.cluster_dir(name)} but not all its processes run; "
            f"fix: `meshcharts cluster down --name {name}` and bring it up again"
        )
    if api_port is not None and not port_free(api_port):
        raise ClusterError(
            f"port {api_port} on 127.0.0.1 is in use, so kube-apiserver cannot listen there; "
            "fix: stop what holds it or pick another --api-port (default: a free port)"
        )
    start = time.monotonic()
    say(f"starting local cluster {name} (kwokctl binary runtime, Kubernetes {local.k8s_version})")
    try:
        local.claim(name, owner)
        # The selector config exists before the API server starts, so none of its dials goes direct; until the
        # proxy (started alongside) listens, a dial fails.
        egress.stop()
        egress.prepare()
        egress.launch(kubeconfig)
        with _prefetch_kubernetes_client():
            # kwokctl picks ports by probing from 32767 down; two creations at once pick the same
            # ones. One creation at a time per machine, until every picked port is listening.
            with machine_lock("meshcharts-local-cluster-ports.lock"):
                try:
                    run_tool(
                        local.create_argv(name, binaries, api_port=api_port),
                        env=env,
                        timeout=timeout,
                        what=f"creating local cluster {name}",
                        stdin=local.kwokctl_config(name),
                    )
                except ClusterError as err:
                    raise ClusterError(f"{err}{_port_in_use_hint(local, name)}") from err
                _wait_listening(local, name, deadline=start + timeout, timeout=timeout)
            local.record(name)
            say(f"control plane started ({time.monotonic() - start:.1f}s); adding {nodes} node(s)")
            run_tool(
                [str(binaries["kwokctl"]), "scale", "node", "--replicas", str(nodes), "--name", name],
                env=env,
                timeout=timeout,
                what=f"adding nodes to local cluster {name}",
            )
        remaining = max(1.0, timeout - (time.monotonic() - start))
        wait_ready(
            kubeconfig,
            nodes=nodes,
            timeout=remaining,
            logs=lambda c: local.log_tail(name, c),
            failed=lambda: _exited_component(local, name),
        )
        egress.wait_listening()
    except BaseException:
        with contextlib.suppress(ClusterError):
            down(local, name, timeout=30, say=quiet)
        egress.stop()
        raise
    local.release_creation(name)
    say(f"local cluster {name} ready ({time.monotonic() - start:.1f}s)")
    say(egress.describe())
    return Cluster(name, "local", kubeconfig)


def _exited_component(local: Local, name: str) -> str | None:
    """Describe the first component of the cluster whose process is gone, with its log tail and hint."""
    for component, pid in local.pids(name).items():
        if not pid_alive(pid):
            return (
                f"{component} (pid {pid}) exited; last lines of its log:\n{local.log_tail(name, component)}"
                f"{_port_in_use_hint(local, name)}"
            )
    return None


def _wait_listening(local: Local, name: str, *, deadline: float, timeout: float) -> None:
    """Wait until every port kwokctl assigned to the cluster is listening, or a component exits."""
    ports = local.ports(name)
    while not set(ports.values()) <= listening_ports():
        problem = _exited_component(local, name)
        if problem:
            raise ClusterError(f"local cluster {name} did not start: {problem}")
        if time.monotonic() > deadline:
            missing = {what: port for what, port in ports.items() if port not in listening_ports()}
            raise ClusterError(
                f"timed out after {timeout:g}s waiting for the ports of local cluster {name} to listen: {missing}"
            )
        time.sleep(0.05)


def _stop_istiods(local: Local, name: str, *, timeout: float, say: Say) -> dict[str, int]:
    """Stop the cluster's host istiods by pid (waited for) and remove their files; returns what was stopped."""
    stopped = {}
    for istiod in local.istiods(name):
        pid = istiod.pid()
        istiod.stop(local.egress(name), timeout=timeout)
        if pid is not None:
            stopped[f"istiod {istiod.directory.name}"] = pid
            say(f"istiod {istiod.directory.name} (pid {pid}) stopped")
    shutil.rmtree(local.istiod_root(name), ignore_errors=True)
    return stopped


def down(local: Local, name: str, *, timeout: float, say: Say) -> None:
    """Take cluster `name` down: its istiods, kwokctl's components, the egress proxy, its records. One process at
    a time per cluster: test runs prune at their start, several at once (pytest-xdist workers), and each would
    otherwise delete the same orphan under the others' feet (kwokctl then fails on the files already gone)."""
    with tools.locked(local.workdir / "locks" / f"{name}.lock"):
        _down(local, name, timeout=timeout, say=say)


def _down(local: Local, name: str, *, timeout: float, say: Say) -> None:
    egress = local.egress(name)
    istiods = _stop_istiods(local, name, timeout=timeout, say=say)
    if not local.exists(name):
        if egress.directory.exists() or local.owner_path(name).exists():
            egress.stop(timeout=timeout)
            local.owner_path(name).unlink(missing_ok=True)
            say(f"no local cluster {name}; its egress proxy and records are removed")
        else:
            say(f"no local cluster {name}")
        return
    # A cluster whose `up` was killed before kwokctl wrote its configuration cannot be deleted by kwokctl (it
    # reads kwok.yaml first): its processes are stopped below and its directory removed here instead.
    half_made = not (local.cluster_dir(name) / "kwok.yaml").is_file()
    kwokctl = None
    if not half_made:
        try:
            kwokctl = tools.path("kwokctl", cache=local.cache)
        except ToolError as err:
            raise ClusterError(f"cannot take local cluster {name} down: {err}") from err
    pids = local.pids(name)
    ports = local.ports(name)
    cluster_dir = local.cluster_dir(name)
    executables = local.component_executables(name)
    # Every process of the cluster, by pid: those kwokctl's pid files name, and any a killed kwokctl started
    # before it could write the pid file (found by the cluster's directory in its arguments).
    ours = {comp: pid for comp, pid in pids.items() if pid_runs(pid, executables)}
    known = set(ours.values())
    for pid, cmdline in processes_naming(local.cluster_dir(name), executables).items():
        if pid not in known:
            say(f"pid {pid} of local cluster {name} has no pid file: {cmdline}")
            ours[f"pid {pid}"] = pid
    if kwokctl is not None:
        run_tool(
            [str(kwokctl), "delete", "cluster", "--name", name],
            env=local.env({"kwokctl": kwokctl}),
            timeout=timeout,
            what=f"deleting local cluster {name}",
        )
    deadline = time.monotonic() + timeout
    left = stop_pids(ours, deadline=deadline, say=say)
    if half_made and not left:
        say(f"local cluster {name} was never finished (no kwok.yaml); removing {local.cluster_dir(name)}")
        shutil.rmtree(local.cluster_dir(name))
    ours.update(istiods)
    proxy = egress.pid()
    egress.stop(timeout=max(1.0, deadline - time.monotonic()))
    if proxy is not None:
        ours["egress-proxy"] = proxy
        if pid_alive(proxy):
            left["egress-proxy"] = proxy
    pids_of_ours = set(ours.values())

    def still_ours() -> dict[str, int]:
        owners = listener_pids(ports.values())
        return ports_still_held(ports, owners, lambda pid: pid in pids_of_ours or names_directory(pid, cluster_dir))

    while ports and time.monotonic() < deadline and still_ours():
        time.sleep(0.1)
    still = still_ours()
    if left or still:
        raise ClusterError(
            f"local cluster {name} left processes {left} and listening ports {still} behind; "
            "fix: stop them by pid and remove " + str(local.cluster_dir(name))
        )
    local.owner_path(name).unlink(missing_ok=True)
    say(f"local cluster {name} deleted; none of its {len(ours)} processes and {len(ports)} ports is left")


def ports_still_held(
    ports: Mapping[str, int], owners: Mapping[int, set[int]], is_ours: Callable[[int], bool]
) -> dict[str, int]:
    """Which of a cluster's `ports` (component -> port) are still held by it, given who listens on them (`owners`,
    from listener_pids): a port nobody listens on is free; one whose every holder is a process that is not the
    cluster's (`is_ours`: by pid, or by its arguments naming the cluster's directory) was taken again by someone
    else after the cluster let it go (kwokctl picks free ports: a cluster another test worker brings up meanwhile
    may get it); any other is still the cluster's, also one whose holder /proc does not name."""
    return {
        what: port
        for what, port in ports.items()
        if port in owners and (not owners[port] or any(is_ours(pid) for pid in owners[port]))
    }


def prune(local: Local, *, timeout: float, say: Say) -> list[str]:
    """Take down every local cluster nobody is left to take down (its test run was killed, its processes
    died); clusters of live owners and kept clusters that run are left alone. Returns the names pruned."""
    pruned = []
    for name in local.names():
        why = local.orphaned(name)
        if why is None:
            continue
        say(f"pruning local cluster {name}: {why}")
        down(local, name, timeout=timeout, say=say)
        pruned.append(name)
    return pruned


# --- the Provider interface -------------------------------------------------------------------------------


@dataclass
class HostIstiodRunner:
    """The control plane where pods never run: the chart's istiod Deployment run on this host as a real istiod
    (meshcharts.cluster.local.istiod), reached through the chart's Services by the cluster's egress proxy."""

    local: Local
    cluster: str
    where = "pilot-discovery on this host"

    def answer(self, kube: Any, namespace: str, deployment: str, *, timeout: float) -> host_istiod.Started:
        return self.local.start_istiod(self.cluster, namespace=namespace, deployment=deployment, timeout=timeout)


class LocalProvider:
    """`local`: kwokctl's binary runtime on the cached toolchain, nodes simulated by kwok, egress through our
    loopback-only proxy, LoadBalancer addresses from a kwok stage, istiod on the host."""

    name = "local"
    capabilities = Capabilities(simulated_pods=True, egress_proxy=True, load_balancer=True, owns_clusters=True)
    needs: tuple[str, ...] = (*tools.LOCAL_CLUSTER_TOOLS, host_istiod.TOOL)

    def __init__(self, cache: Path | None = None) -> None:
        self.cache = cache or tools.cache_root()

    def _local(self, k8s_version: str = tools.DEFAULT_KUBERNETES, *, stages: bool = False) -> Local:
        return Local(self.cache, k8s_version, stages=local_stages() if stages else ())

    def unavailable(self) -> str | None:
        return None

    def up(self, name: str, request: UpRequest, *, say: Say) -> Cluster:
        if request.kubeconfig is not None:
            raise ClusterError("--kubeconfig is for --provider existing; provider local writes its own")
        if request.image is not None:
            raise ClusterError("--image is for --provider kind; provider local runs no node image")
        local = self._local(request.k8s_version, stages=True)
        return up(
            local,
            name,
            nodes=request.nodes,
            timeout=request.timeout,
            api_port=request.api_port,
            say=say,
            owner=request.owner,
        )

    def down(self, name: str, *, timeout: float, say: Say) -> None:
        down(self._local(), name, timeout=timeout, say=say)

    def exists(self, name: str) -> bool:
        return self._local().kubeconfig(name).is_file()

    def kubeconfig(self, name: str, given: Path | None = None) -> Path:
        return self._local().kubeconfig(name)

    def prune(self, *, timeout: float, say: Say) -> list[str]:
        return prune(self._local(), timeout=timeout, say=say)

    def logs(self, name: str, lines: int, *, istiod: bool = False) -> str:
        local = self._local()
        parts = []
        if istiod:
            with contextlib.suppress(Exception):
                for host in local.istiods(name):
                    head = f"--- istiod {host.directory.name} (pid {host.pid()}), last {lines} lines"
                    parts.append(f"{head}\n{host.log_tail(lines)}")
            return "\n".join(parts)
        for component in LOCAL_COMPONENTS:
            with contextlib.suppress(Exception):
                parts.append(f"--- {component} log (last {lines} lines)\n{local.log_tail(name, component, lines)}")
        return "\n".join(parts)

    def egress(self, name: str) -> Egress:
        return self._local().egress(name)

    def istiod_runner(self, name: str) -> HostIstiodRunner:
        return HostIstiodRunner(self._local(), name)
