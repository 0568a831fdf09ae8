"""Clusters for tests and demos: `local` (kwokctl's binary runtime on cached binaries), `kind`, `existing`.

`up` returns only when the API server answers and the nodes are Ready; `down` verifies by pid and
port that nothing it started is left behind. Every failure is a ClusterError naming cause and fix.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshcharts import tools
from meshcharts.egress import Egress
from meshcharts.errors import ClusterError, ToolError, UsageError
from meshcharts.paths import find_root

PROVIDERS = ("local", "kind", "existing")
DEFAULT_NAME = "meshcharts"
DEFAULT_NODES = 2
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$")
_LOG_TAIL_LINES = 30

# kwokctl's binary runtime component names, as used for its pid and log files.
LOCAL_COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok-controller")

_KWOKCTL_CONFIG = """\
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  bindAddress: 127.0.0.1
"""

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class Cluster:
    """A reachable cluster: how to talk to it and who owns its lifecycle."""

    name: str
    provider: str
    kubeconfig: Path
    context: str | None = None

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for a child process that should talk to this cluster (KUBECONFIG set explicitly)."""
        env = dict(os.environ if base is None else base)
        env["KUBECONFIG"] = str(self.kubeconfig)
        return env


def validate_name(name: str) -> str:
    """Cluster names become directory names and kwokctl/kind names: DNS-label-like, at most 42 chars."""
    if not _NAME.match(name):
        raise ClusterError(
            f"invalid cluster name {name!r}: use lowercase letters, digits and '-', starting and ending "
            "with a letter or digit, at most 42 characters"
        )
    return name


def validate_provider(provider: str) -> str:
    if provider not in PROVIDERS:
        raise ClusterError(f"unknown provider {provider!r}; choose one of: {', '.join(PROVIDERS)}")
    return provider


# --- readiness (shared by every provider) -----------------------------------------------------------


def _api_client(kubeconfig: Path, context: str | None = None) -> Any:
    from kubernetes import config

    try:
        return config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig), context=context
        )
    except Exception as err:
        raise ClusterError(f"cannot load kubeconfig {kubeconfig}: {err}") from err


def _readyz(api: Any) -> bool:
    try:
        request = api.param_serialize("GET", "/readyz", auth_settings=["BearerToken"])
        response = api.call_api(*request, _request_timeout=2)
    except Exception:
        return False
    return bool(response.status == 200)


def _ready_nodes(api: Any) -> int:
    from kubernetes import client

    try:
        nodes = client.CoreV1Api(api).list_node(_request_timeout=5).items
    except Exception:
        return 0
    ready = 0
    for node in nodes:
        for cond in (node.status.conditions if node.status else None) or []:
            if cond.type == "Ready" and cond.status == "True":
                ready += 1
    return ready


def _default_service_account(api: Any) -> bool:
    from kubernetes import client

    try:
        client.CoreV1Api(api).read_namespaced_service_account("default", "default", _request_timeout=5)
    except Exception:
        return False
    return True


@dataclass
class _Condition:
    name: str
    check: Callable[[], bool]
    component: str


def wait_ready(
    kubeconfig: Path,
    *,
    nodes: int,
    timeout: float,
    context: str | None = None,
    logs: Callable[[str], str] | None = None,
    failed: Callable[[], str | None] | None = None,
) -> None:
    """Wait until /readyz answers, `nodes` nodes are Ready and ServiceAccount default/default exists.

    The last condition means the controller-manager runs, so workloads can be created at once.
    On timeout, ClusterError names the condition and carries the tail of the responsible component's log;
    `failed`, polled too, ends the wait at once with its description (e.g. a component that exited).
    """
    deadline = time.monotonic() + timeout
    api = _api_client(kubeconfig, context)
    try:
        conditions = [
            _Condition("API server answers /readyz", lambda: _readyz(api), "kube-apiserver"),
            _Condition(f"{nodes} node(s) Ready", lambda: _ready_nodes(api) >= nodes, "kwok-controller"),
            _Condition(
                "ServiceAccount default/default exists (controller-manager running)",
                lambda: _default_service_account(api),
                "kube-controller-manager",
            ),
        ]
        for cond in conditions:
            while not cond.check():
                problem = failed() if failed else None
                if problem:
                    raise ClusterError(f"while waiting for: {cond.name}: {problem}")
                if time.monotonic() > deadline:
                    tail = logs(cond.component) if logs else ""
                    detail = f"\nlast lines of {cond.component}'s log:\n{tail}" if tail else ""
                    raise ClusterError(
                        f"timed out after {timeout:.0f}s waiting for: {cond.name}{detail}\n"
                        "fix: look at the log above; retry with a longer --timeout if the machine is busy"
                    )
                time.sleep(0.1)
    finally:
        api.close()


def check_reachable(kubeconfig: Path, *, timeout: float, context: str | None = None) -> None:
    """ClusterError unless the API server behind `kubeconfig` answers /readyz within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    api = _api_client(kubeconfig, context)
    try:
        while not _readyz(api):
            if time.monotonic() > deadline:
                host = getattr(api.configuration, "host", "?")
                raise ClusterError(
                    f"the API server of {kubeconfig} ({host}) did not answer /readyz within {timeout:.0f}s; "
                    "fix: check that the cluster runs and that the kubeconfig points at it"
                )
            time.sleep(0.2)
    finally:
        api.close()


# --- local: kwokctl's binary runtime ----------------------------------------------------------------

# kwok Stages the local provider adds to kwok's defaults, relative to the tree's ci/ directory.
LOCAL_STAGES = (Path("kwok") / "loadbalancer-stage.yaml",)


def local_stages() -> tuple[Path, ...]:
    """The extra kwok Stage files of this tree (LoadBalancer addresses), or ClusterError naming the missing one."""
    try:
        ci = find_root().ci
    except UsageError as err:
        raise ClusterError(f"cannot find the kwok stages of the local cluster: {err}") from err
    paths = tuple(ci / stage for stage in LOCAL_STAGES)
    for path in paths:
        if not path.is_file():
            raise ClusterError(
                f"the local cluster needs the kwok stage {path}, which does not exist; "
                "fix: run from a meshcharts tree (or set MESHCHARTS_ROOT to one)"
            )
    return paths


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
        for name in ("kwokctl", "kwok", "etcd", *tools.KUBERNETES_COMPONENTS):
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

    def egress(self, name: str) -> Egress:
        """The loopback-only egress proxy of cluster `name` (kept beside, not inside, kwokctl's directory)."""
        return Egress(self.workdir / "egress" / name)

    def kwokctl_config(self, name: str) -> str:
        """kwokctl configuration (read from stdin at create): the API server's egress selector, and
        `stages` added to kwok-controller's --config."""
        patches: list[dict[str, Any]] = [
            {
                "name": "kube-apiserver",
                "extraArgs": [{"key": "egress-selector-config-file", "value": str(self.egress(name).config)}],
            }
        ]
        if self.stages:
            patches.append(
                {
                    "name": "kwok-controller",
                    "extraArgs": [{"key": "config", "value": str(path.absolute())} for path in self.stages],
                }
            )
        return yaml.safe_dump(
            {
                "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
                "kind": "KwokctlConfiguration",
                "componentsPatches": patches,
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

    def log_tail(self, name: str, component: str, lines: int = _LOG_TAIL_LINES) -> str:
        path = self.cluster_dir(name) / "logs" / f"{component}.log"
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return f"(no log at {path})"
        return "\n".join(text.splitlines()[-lines:])


def _run(argv: Sequence[str], *, env: Mapping[str, str], timeout: float, what: str, stdin: str | None = None) -> str:
    try:
        done = subprocess.run(
            list(argv),
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin or "",
        )
    except subprocess.TimeoutExpired as err:
        raise ClusterError(f"{what}: `{' '.join(argv)}` did not finish within {timeout:.0f}s") from err
    except OSError as err:
        raise ClusterError(f"{what}: cannot run `{argv[0]}`: {err}") from err
    if done.returncode != 0:
        raise ClusterError(
            f"{what}: `{' '.join(argv)}` exited {done.returncode}:\n{(done.stderr or done.stdout).strip()}"
        )
    return done.stdout


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def listening_ports() -> set[int]:
    """TCP ports in LISTEN state on this host (IPv4 and IPv6), from /proc/net."""
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 3 and fields[3] == "0A":
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _pid_runs(pid: int, executables: set[Path]) -> bool:
    """True if `pid` is alive and runs one of `executables`: the guard before counting or signalling it."""
    try:
        exe = Path(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return False
    return pid_alive(pid) and exe in executables


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


def _local_up(local: Local, name: str, *, nodes: int, timeout: float, api_port: int | None, say: Say) -> Cluster:
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
    if api_port is not None and not _port_free(api_port):
        raise ClusterError(
            f"port {api_port} on 127.0.0.1 is in use, so kube-apiserver cannot listen there; "
            "fix: stop what holds it or pick another --api-port (default: a free port)"
        )
    start = time.monotonic()
    say(f"starting local cluster {name} (kwokctl binary runtime, Kubernetes {local.k8s_version})")
    try:
        # The proxy listens before the API server starts, so no dial of the API server ever goes direct.
        egress.stop()
        egress.prepare()
        egress.start(kubeconfig)
        with _prefetch_kubernetes_client():
            # kwokctl picks ports by probing from 32767 down; two creations at once pick the same
            # ones. One creation at a time per machine, until every picked port is listening.
            with _machine_lock("meshcharts-local-cluster-ports.lock"):
                try:
                    _run(
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
            _run(
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
    except BaseException:
        with contextlib.suppress(ClusterError):
            _local_down(local, name, timeout=30, say=_quiet)
        egress.stop()
        raise
    say(f"local cluster {name} ready ({time.monotonic() - start:.1f}s)")
    say(egress.describe())
    return Cluster(name, "local", kubeconfig)


def _machine_lock(filename: str) -> contextlib.AbstractContextManager[None]:
    """An exclusive lock shared by every process on this machine (a file in the temp directory)."""
    return tools.locked(Path(tempfile.gettempdir()) / filename)


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


def _local_down(local: Local, name: str, *, timeout: float, say: Say) -> None:
    egress = local.egress(name)
    if not local.exists(name):
        if egress.directory.exists():
            egress.stop(timeout=timeout)
            say(f"no local cluster {name}; its egress proxy and files are removed")
        else:
            say(f"no local cluster {name}")
        return
    try:
        kwokctl = tools.path("kwokctl", cache=local.cache)
    except ToolError as err:
        raise ClusterError(f"cannot take local cluster {name} down: {err}") from err
    pids = local.pids(name)
    ports = local.ports(name)
    executables = local.executables(name)
    ours = {comp: pid for comp, pid in pids.items() if _pid_runs(pid, executables)}
    _run(
        [str(kwokctl), "delete", "cluster", "--name", name],
        env=local.env({"kwokctl": kwokctl}),
        timeout=timeout,
        what=f"deleting local cluster {name}",
    )
    deadline = time.monotonic() + timeout
    while any(pid_alive(pid) for pid in ours.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    for comp, pid in ours.items():
        if _pid_runs(pid, executables):
            say(f"{comp} (pid {pid}) outlived `kwokctl delete cluster`; sending SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    proxy = egress.pid()
    egress.stop(timeout=max(1.0, deadline - time.monotonic()))
    if proxy is not None:
        ours["egress-proxy"] = proxy
    left = {comp: pid for comp, pid in ours.items() if pid_alive(pid)}
    while ports and time.monotonic() < deadline and set(ports.values()) & listening_ports():
        time.sleep(0.1)
    still = {what: port for what, port in ports.items() if port in listening_ports()}
    if left or still:
        raise ClusterError(
            f"local cluster {name} left processes {left} and listening ports {still} behind; "
            "fix: stop them by pid and remove " + str(local.cluster_dir(name))
        )
    say(f"local cluster {name} deleted; none of its {len(ours)} processes and {len(ports)} ports is left")


# --- kind --------------------------------------------------------------------------------------------

KIND_ENGINE_SKIP = "requires docker or podman for kind (no container engine socket answers here)"
"""Why kind cannot run here: the plugin's skip reason and the start of `cluster up --provider kind`'s error."""


def container_engine_candidates(env: Mapping[str, str] | None = None) -> list[str]:
    """Docker and Podman API sockets in the order they are tried: DOCKER_HOST, the user's, the system's."""
    env = os.environ if env is None else env
    candidates: list[str] = []
    host = env.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        candidates.append(host.removeprefix("unix://"))
    runtime_dir = env.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        candidates += [f"{runtime_dir}/docker.sock", f"{runtime_dir}/podman/podman.sock"]
    candidates += ["/var/run/docker.sock", "/run/podman/podman.sock"]
    return candidates


def container_engine_socket(env: Mapping[str, str] | None = None) -> str | None:
    """The first Docker or Podman API socket that answers a ping, or None."""
    for path in container_engine_candidates(env):
        if _socket_answers(path):
            return path
    return None


def _socket_answers(path: str) -> bool:
    if not Path(path).exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        try:
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: engine\r\n\r\n")
            return sock.recv(16).startswith(b"HTTP/")
        except OSError:
            return False


def require_engine(env: Mapping[str, str] | None = None) -> str:
    """The answering engine socket, or ClusterError naming every socket tried (the fix included)."""
    found = container_engine_socket(env)
    if found is None:
        tried = ", ".join(container_engine_candidates(env))
        raise ClusterError(
            f"{KIND_ENGINE_SKIP}; tried {tried}; "
            "fix: start Docker or Podman (or set DOCKER_HOST=unix://PATH), or use --provider local"
        )
    return found


def kind_minor(k8s_version: str) -> str:
    """`v1.34.4`, `1.34` or `v1.34` -> `1.34`; ClusterError for anything else."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", k8s_version)
    if not match:
        raise ClusterError(f"invalid Kubernetes version {k8s_version!r}: write it as 1.N, v1.N or v1.N.P")
    return f"{int(match[1])}.{int(match[2])}"


def kind_files(root: Path | None = None) -> tuple[Path, Path]:
    """The base cluster config and the node image table in ci/kind of this tree."""
    from meshcharts.paths import find_root

    kind_dir = (root or find_root().root) / "ci" / "kind"
    return kind_dir / "cluster.yaml", kind_dir / "node-images.yaml"


def _load_mapping(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ClusterError(f"cannot read {path}: {err}") from err
    if not isinstance(data, dict):
        raise ClusterError(f"{path}: expected a mapping at the top level")
    return data


def kind_node_image(k8s_version: str, images: Mapping[str, Any]) -> str:
    """The kindest/node image for the version's minor, or ClusterError listing the minors there are."""
    minor = kind_minor(k8s_version)
    image = images.get(minor)
    if not isinstance(image, str) or not image:
        known = ", ".join(sorted(images, key=lambda m: tuple(int(x) for x in str(m).split("."))))
        raise ClusterError(
            f"no kindest/node image for Kubernetes {minor} in ci/kind/node-images.yaml; known minors: {known}; "
            "fix: add one, or pass --image"
        )
    return image


def kind_config(base: Mapping[str, Any], *, nodes: int, image: str) -> dict[str, Any]:
    """The kind Cluster config: `base` with one control plane and `nodes - 1` workers, all on `image`."""
    if nodes < 1:
        raise ClusterError(f"a kind cluster needs at least 1 node, not {nodes}")
    if base.get("kind") != "Cluster" or base.get("apiVersion") != "kind.x-k8s.io/v1alpha4":
        raise ClusterError("ci/kind/cluster.yaml must be a kind Cluster of apiVersion kind.x-k8s.io/v1alpha4")
    if "nodes" in base:
        raise ClusterError("ci/kind/cluster.yaml must not list nodes; meshcharts adds them from --nodes")
    config = dict(base)
    config["nodes"] = [{"role": "control-plane", "image": image}] + [
        {"role": "worker", "image": image} for _ in range(nodes - 1)
    ]
    return config


def kind_create_argv(kind: Path, name: str, *, kubeconfig: Path, config: Path, timeout: float) -> list[str]:
    return [
        str(kind),
        "create",
        "cluster",
        "--name",
        name,
        "--kubeconfig",
        str(kubeconfig),
        "--config",
        str(config),
        "--wait",
        f"{int(timeout)}s",
    ]


def kind_delete_argv(kind: Path, name: str, *, kubeconfig: Path) -> list[str]:
    return [str(kind), "delete", "cluster", "--name", name, "--kubeconfig", str(kubeconfig)]


def _kind_kubeconfig(cache: Path, name: str) -> Path:
    return cache / "kind" / f"{name}.kubeconfig"


def _kind_up(
    cache: Path,
    name: str,
    *,
    nodes: int,
    timeout: float,
    k8s_version: str,
    image: str | None,
    say: Say,
) -> Cluster:
    base_path, images_path = kind_files()
    config = kind_config(
        _load_mapping(base_path),
        nodes=nodes,
        image=image or kind_node_image(k8s_version, _load_mapping(images_path)),
    )
    engine = require_engine()
    try:
        kind = tools.path("kind", cache=cache)
    except ToolError as err:
        raise ClusterError(f"cannot create a kind cluster: {err}") from err
    kubeconfig = _kind_kubeconfig(cache, name)
    kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    config_path = kubeconfig.with_suffix(".cluster.yaml")
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    say(f"creating kind cluster {name} ({config['nodes'][0]['image']}, engine {engine})")
    _run(
        kind_create_argv(kind, name, kubeconfig=kubeconfig, config=config_path, timeout=timeout),
        env=dict(os.environ),
        timeout=timeout + 60,
        what=f"creating kind cluster {name}",
    )
    wait_ready(kubeconfig, nodes=nodes, timeout=timeout)
    return Cluster(name, "kind", kubeconfig)


def _kind_down(cache: Path, name: str, *, timeout: float, say: Say) -> None:
    require_engine()
    try:
        kind = tools.path("kind", cache=cache)
    except ToolError as err:
        raise ClusterError(f"cannot delete kind cluster {name}: {err}") from err
    kubeconfig = _kind_kubeconfig(cache, name)
    _run(
        kind_delete_argv(kind, name, kubeconfig=kubeconfig),
        env=dict(os.environ),
        timeout=timeout,
        what=f"deleting kind cluster {name}",
    )
    kubeconfig.unlink(missing_ok=True)
    say(f"kind cluster {name} deleted")


# --- existing ---------------------------------------------------------------------------------------


def _existing_kubeconfig(kubeconfig: Path | None) -> Path:
    if kubeconfig is not None:
        path = kubeconfig
    elif os.environ.get("KUBECONFIG"):
        path = Path(os.environ["KUBECONFIG"].split(os.pathsep)[0])
    else:
        path = Path.home() / ".kube" / "config"
    if not path.is_file():
        raise ClusterError(
            f"provider existing: kubeconfig {path} does not exist; fix: pass --kubeconfig PATH or set KUBECONFIG"
        )
    return path.absolute()


# --- the public entry points ------------------------------------------------------------------------


def up(
    name: str = DEFAULT_NAME,
    *,
    provider: str = "local",
    kubeconfig: Path | None = None,
    nodes: int = DEFAULT_NODES,
    timeout: float = 120.0,
    api_port: int | None = None,
    cache: Path | None = None,
    k8s_version: str = tools.DEFAULT_KUBERNETES,
    image: str | None = None,
    say: Say = _quiet,
) -> Cluster:
    """Bring a cluster up (or find it up) and return once its API server answers and its nodes are Ready.

    `k8s_version` picks the local toolchain release, or for kind the kindest/node image of its minor;
    `image` overrides that image (kind only).
    """
    validate_name(name)
    validate_provider(provider)
    cache = cache or tools.cache_root()
    if provider == "existing":
        path = _existing_kubeconfig(kubeconfig)
        check_reachable(path, timeout=timeout)
        return Cluster(name, "existing", path)
    if kubeconfig is not None:
        raise ClusterError(f"--kubeconfig is for --provider existing; provider {provider} writes its own")
    if image is not None and provider != "kind":
        raise ClusterError(f"--image is for --provider kind; provider {provider} runs no node image")
    if provider == "kind":
        return _kind_up(cache, name, nodes=nodes, timeout=timeout, k8s_version=k8s_version, image=image, say=say)
    local = Local(cache, k8s_version, stages=local_stages())
    return _local_up(local, name, nodes=nodes, timeout=timeout, api_port=api_port, say=say)


def down(
    name: str = DEFAULT_NAME,
    *,
    provider: str = "local",
    timeout: float = 60.0,
    cache: Path | None = None,
    say: Say = _quiet,
) -> None:
    """Take a cluster down; for `local`, verify that none of its processes or listening ports is left."""
    validate_name(name)
    validate_provider(provider)
    cache = cache or tools.cache_root()
    if provider == "existing":
        say("provider existing: the cluster is not ours to take down; nothing done")
    elif provider == "kind":
        _kind_down(cache, name, timeout=timeout, say=say)
    else:
        _local_down(Local(cache), name, timeout=timeout, say=say)


def kubeconfig_path(
    name: str = DEFAULT_NAME,
    *,
    provider: str = "local",
    kubeconfig: Path | None = None,
    cache: Path | None = None,
) -> Path:
    """Path of the kubeconfig of an up cluster, or ClusterError saying how to bring it up."""
    validate_name(name)
    validate_provider(provider)
    cache = cache or tools.cache_root()
    if provider == "existing":
        return _existing_kubeconfig(kubeconfig)
    path = _kind_kubeconfig(cache, name) if provider == "kind" else Local(cache).kubeconfig(name)
    if not path.is_file():
        raise ClusterError(
            f"no {provider} cluster {name} (no {path}); fix: `meshcharts cluster up --name {name} "
            f"--provider {provider}`"
        )
    return path
