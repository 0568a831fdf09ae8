"""A real istiod on the host of a local cluster: the chart's own istiod Deployment, run as a process.

Pods never run on the local cluster (kwok simulates its nodes), so nothing would answer the charts' webhooks.
This module does for one istiod Deployment what a kubelet would do for its pod, with `pilot-discovery` from
the toolchain (the same `istio.io/istio` module as istioctl):

- its credentials are a token of the Deployment's own ServiceAccount from the TokenRequest API, so what it may
  do is exactly what the chart's RBAC grants;
- its arguments and environment are the Deployment's container's (fieldRefs resolved as a kubelet would),
  with every listener bound to one loopback address of its own (127.2.x.y) and nothing else;
- the API server reaches it through the chart's own Services: each Service that selects the Deployment's pods
  is routed, port by port, to that address by the cluster's egress proxy;
- it belongs to the cluster's lifetime like the egress proxy: its pid and record live under the cluster's
  directory in the cache, `meshcharts cluster down` stops it by pid, and `cluster prune` with the cluster.

Where the istiod of the toolchain is newer than the chart (Istio 1.31 running 1.12's or 1.13's templates),
the harness adapts as little as it can, outside the chart: `SKEW` lists each adaptation and why.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import math
import os
import random
import re
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshcharts import tools
from meshcharts._files import atomic_write
from meshcharts.cluster._common import go_gc_percent, quiet, stop_pids
from meshcharts.cluster.local.egress import Egress
from meshcharts.errors import ClusterError, ToolError
from meshcharts.kube import kube_for

TOOL = "pilot-discovery"
RECORD = "istiod.json"
PID = "istiod.pid"
LOG = "istiod.log"
LOG_TAIL_LINES = 40
INJECT_DIR = Path("var") / "lib" / "istio" / "inject"
# Every listener of pilot-discovery and the flag that places it (loopback address, fixed port).
LISTENERS = {
    "--httpAddr": 8080,
    "--httpsAddr": 15017,
    "--grpcAddr": 15010,
    "--secureGRPCAddr": 15012,
    "--monitoringAddr": 15014,
}
CTRLZ_PORT = 9876
WEBHOOK_PORT = LISTENERS["--httpsAddr"]
READY_PORT = LISTENERS["--httpAddr"]
TOKEN_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Adaptation:
    """One thing the harness changes so a newer istiod serves an older chart, what it hides, and why."""

    name: str
    what: str
    hides: str


# What a 1.31 istiod needs to serve the 1.12 and 1.13 charts, and nothing more (tests/e2e/test_real_istiod.py drops
# each one and sees istiod fail without it); the README's skew table says the same.
SKEW_1_12 = (
    Adaptation(
        "configDir",
        "`--configDir` an empty directory: Istio configuration is read from files, not from the CRDs",
        "istiod 1.31 lists networking.istio.io/v1 (and other v1) kinds, which the 1.12/1.13 CRDs do not serve; "
        "with the Kubernetes config source it waits for them forever and never opens its webhook port. "
        "Admission (validation, injection) does not use the config source; what istiod would push to "
        "proxies from Istio resources is not exercised.",
    ),
    Adaptation(
        "EstimatedConcurrency",
        "the injector ConfigMap's templates given to istiod as files with `.EstimatedConcurrency` replaced by 0",
        "1.31's injection template data no longer has EstimatedConcurrency; the 1.12/1.13 templates read it "
        "only where proxy.concurrency is unset, so the rendered `--concurrency` differs from Istio 1.12's "
        "injector there (the offline oracle compares that branch).",
    ),
    Adaptation(
        "PILOT_ENABLE_IP_AUTOALLOCATE",
        "environment PILOT_ENABLE_IP_AUTOALLOCATE=false",
        "1.31's ServiceEntry address allocator (a controller 1.12 did not have) lists networking.istio.io/v1 "
        "ServiceEntries, which the 1.12/1.13 CRDs do not serve; with it on, the list fails, the allocator waits for a "
        "sync that never comes, and istiod usually never publishes istio-ca-root-cert or never becomes ready.",
    ),
)


def skew_for(chart_version: str) -> tuple[Adaptation, ...]:
    """The adaptations istiod of the toolchain needs for an istiod chart of `chart_version` (none for its own)."""
    match = re.match(r"(\d+)\.(\d+)", chart_version)
    if match and (int(match.group(1)), int(match.group(2))) < (1, 14):
        return SKEW_1_12
    return ()


def _istio_skew_template(text: str) -> str:
    return re.sub(r"\.EstimatedConcurrency\b", "0", text)


@dataclass(frozen=True)
class HostIstiod:
    """The files of one host istiod (one revision) of one local cluster."""

    directory: Path

    @property
    def record_file(self) -> Path:
        return self.directory / RECORD

    @property
    def pid_file(self) -> Path:
        return self.directory / PID

    @property
    def log(self) -> Path:
        return self.directory / LOG

    @property
    def workdir(self) -> Path:
        """istiod's working directory: it reads ./var/lib/istio/inject and writes ./var/run/secrets here."""
        return self.directory / "root"

    def record(self) -> dict[str, Any]:
        try:
            data = json.loads(self.record_file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def address(self) -> str:
        return str(self.record().get("address", ""))

    def pid(self) -> int | None:
        """istiod's pid while it runs (its executable checked), else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
            exe = Path(os.readlink(f"/proc/{pid}/exe"))
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, ValueError, IndexError):
            return None
        if state in ("Z", "X") or exe.name != TOOL:
            return None
        return pid

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return f"(no log at {self.log})"

    def stop(self, egress: Egress | None = None, *, timeout: float = 20.0) -> None:
        """Stop istiod by pid (SIGTERM, SIGKILL after `timeout`), wait until it is gone, drop its routes."""
        pid = self.pid()
        if pid is not None and stop_pids({"istiod": pid}, deadline=time.monotonic() + timeout, say=quiet):
            raise ClusterError(f"istiod (pid {pid}) of {self.directory} did not exit on SIGKILL")
        if egress is not None and egress.directory.is_dir():
            for route in self.record().get("routes", []):
                egress.unroute(route["namespace"], route["name"], int(route["port"]))
        self.pid_file.unlink(missing_ok=True)


def istiods_of(root: Path) -> list[HostIstiod]:
    """Every host istiod recorded under `root` (one directory per namespace/revision)."""
    return [HostIstiod(p.parent) for p in sorted(root.glob(f"*/{RECORD}"))]


# --- starting one -----------------------------------------------------------------------------------


def _free_address(ports: Sequence[int], *, tries: int = 50) -> str:
    """A loopback address 127.2.x.y on which every port in `ports` is free (bound and released to check)."""
    rng = random.Random()
    for _ in range(tries):
        address = f"127.2.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"
        held = []
        try:
            for port in ports:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                held.append(sock)
                sock.bind((address, port))
            return address
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise ClusterError(f"no loopback address 127.2.x.y with ports {list(ports)} free after {tries} tries")


def token_kubeconfig(kube: Any, namespace: str, service_account: str, path: Path) -> Path:
    """A kubeconfig for the API server of `kube` authenticated as ServiceAccount `namespace/service_account`
    with a token from the TokenRequest API: the credentials a pod of that ServiceAccount gets."""
    from kubernetes import client

    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=TOKEN_SECONDS)
    )
    try:
        answer = kube.core.create_namespaced_service_account_token(service_account, namespace, request)
    except Exception as err:  # the client's ApiException; named below
        raise ClusterError(
            f"cannot get a token of ServiceAccount {namespace}/{service_account} for istiod: {err}"
        ) from err
    config = kube.api_client.configuration
    ca = Path(config.ssl_ca_cert).read_bytes() if config.ssl_ca_cert else b""
    cluster: dict[str, Any] = {"server": config.host}
    if ca:
        cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": cluster}],
        "users": [{"name": service_account, "user": {"token": answer.status.token}}],
        "contexts": [{"name": service_account, "context": {"cluster": "local", "user": service_account}}],
        "current-context": service_account,
    }
    atomic_write(path, yaml.safe_dump(document, sort_keys=False))
    path.chmod(0o600)
    return path


def _quantity(text: str) -> float:
    """A Kubernetes quantity (`500m`, `2`, `1Gi`, `512M`) as a number."""
    units = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(text).strip())
    if not match or (match.group(2) and match.group(2) not in units):
        raise ClusterError(f"cannot read the quantity {text!r}")
    return float(match.group(1)) * units.get(match.group(2), 1)


def container_env(kube: Any, container: Any, *, namespace: str, pod_name: str, service_account: str) -> dict[str, str]:
    """The container's environment as a kubelet would set it for a pod named `pod_name`."""
    env: dict[str, str] = {}
    limits = (container.resources.limits or {}) if container.resources else {}
    for var in container.env or []:
        if var.value_from is None:
            env[var.name] = var.value or ""
            continue
        source = var.value_from
        if source.field_ref is not None:
            path = source.field_ref.field_path
            value = {
                "metadata.name": pod_name,
                "metadata.namespace": namespace,
                "spec.serviceAccountName": service_account,
                "spec.nodeName": "host",
                "status.podIP": "127.0.0.1",
                "status.hostIP": "127.0.0.1",
            }.get(path)
            if value is None:
                raise ClusterError(f"istiod's env {var.name} reads fieldRef {path}, which a host process cannot have")
            env[var.name] = value
        elif source.resource_field_ref is not None:
            resource = source.resource_field_ref.resource
            divisor = _quantity(source.resource_field_ref.divisor or "1")
            key = resource.split(".", 1)[1] if "." in resource else resource
            if resource.startswith("limits.") and key in limits:
                env[var.name] = str(math.ceil(_quantity(limits[key]) / divisor))
            # Without a limit a kubelet gives the node's allocatable; on the host, Go's own default stands.
        elif source.config_map_key_ref is not None:
            ref = source.config_map_key_ref
            data = kube.core.read_namespaced_config_map(ref.name, namespace).data or {}
            if ref.key in data:
                env[var.name] = data[ref.key]
        elif source.secret_key_ref is not None:
            ref = source.secret_key_ref
            secret = kube.core.read_namespaced_secret(ref.name, namespace).data or {}
            if ref.key in secret:
                env[var.name] = base64.b64decode(secret[ref.key]).decode()
    return env


@dataclass
class Started:
    """What `start` did: the process, where it listens, which Service ports route to it."""

    istiod: HostIstiod
    pid: int
    address: str
    routes: list[dict[str, Any]] = field(default_factory=list)
    egress: Egress | None = None

    # An Answering (meshcharts.controlplane): what the control-plane interface asks of any istiod.
    def running(self) -> bool:
        return self.istiod.pid() is not None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return self.istiod.log_tail(lines)

    def stop(self) -> None:
        self.istiod.stop(self.egress)


def _matching_services(kube: Any, namespace: str, labels: Mapping[str, str]) -> list[Any]:
    found = []
    for service in kube.core.list_namespaced_service(namespace).items:
        selector = service.spec.selector or {}
        if selector and all(labels.get(k) == v for k, v in selector.items()):
            found.append(service)
    return found


def start(
    kubeconfig: Path,
    egress: Egress,
    root: Path,
    *,
    namespace: str = "istio-system",
    deployment: str = "istiod",
    cache: Path | None = None,
    timeout: float = 120.0,
    extra_env: Mapping[str, str] | None = None,
    skew: Sequence[Adaptation] | None = None,
) -> Started:
    """Run the chart's istiod Deployment `namespace/deployment` on this host as pilot-discovery.

    Returns once istiod is ready (its /ready answers) and serves its webhook port; ClusterError naming what
    failed, with istiod's log tail, otherwise. An istiod already running for that Deployment is stopped first.
    `skew` overrides the adaptations `skew_for` picks from the chart's version (the tests drop one at a time).
    """
    try:
        binary = tools.path(TOOL, cache=cache)
    except ToolError as err:
        raise ClusterError(f"a real istiod needs {TOOL}: {err}; fix: `meshcharts tools install {TOOL}`") from err
    kube = kube_for(kubeconfig)
    try:
        deploy = kube.apps.read_namespaced_deployment(deployment, namespace)
    except Exception as err:
        raise ClusterError(f"no istiod Deployment {namespace}/{deployment} to run: {err}") from err
    pod_spec = deploy.spec.template.spec
    container = next((c for c in pod_spec.containers if c.name == "discovery"), pod_spec.containers[0])
    labels = dict(deploy.spec.template.metadata.labels or {})
    chart_version = _chart_version(deploy)
    skew = tuple(skew_for(chart_version) if skew is None else skew)
    service_account = pod_spec.service_account_name or "default"

    istiod = HostIstiod(root / f"{namespace}.{deployment}")
    istiod.stop(egress)
    istiod.directory.mkdir(parents=True, exist_ok=True)
    istiod.workdir.mkdir(parents=True, exist_ok=True)
    creds = token_kubeconfig(kube, namespace, service_account, istiod.directory / "kubeconfig.yaml")

    address = _free_address([*LISTENERS.values(), CTRLZ_PORT])
    pod_name = f"{deployment}-host-{address.replace('.', '-')}"
    env = dict(os.environ)
    env.pop("KUBERNETES_SERVICE_HOST", None)
    env.update(container_env(kube, container, namespace=namespace, pod_name=pod_name, service_account=service_account))
    env["KUBECONFIG"] = str(creds)
    env.setdefault("GOGC", go_gc_percent())  # the chart's own GOGC (pilot.env), then ours
    args = list(container.args or [])
    args += [f"{flag}={address}:{port}" for flag, port in LISTENERS.items()]
    args += ["--ctrlz_address", address, "--ctrlz_port", str(CTRLZ_PORT), "--kubeconfig", str(creds)]
    args += ["--shutdownDuration", "1s"]
    names = {a.name for a in skew}
    if "configDir" in names:
        config_dir = istiod.directory / "config"
        config_dir.mkdir(exist_ok=True)
        args += ["--configDir", str(config_dir)]
    if "PILOT_ENABLE_IP_AUTOALLOCATE" in names:
        env["PILOT_ENABLE_IP_AUTOALLOCATE"] = "false"
    if "EstimatedConcurrency" in names:
        _write_injection_files(kube, namespace, deploy, istiod.workdir / INJECT_DIR)
    env.update(extra_env or {})

    with istiod.log.open("ab") as log:
        log_from = log.tell()  # appended to: what an earlier istiod of this directory wrote is not this one's
        process = subprocess.Popen(
            [str(binary), *args],
            cwd=istiod.workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    atomic_write(istiod.pid_file, f"{process.pid}\n")
    routes = []
    for service in _matching_services(kube, namespace, labels):
        for port in service.spec.ports or []:
            target = port.target_port if isinstance(port.target_port, int) else port.port
            if isinstance(port.target_port, str):
                target = next(
                    (p.container_port for p in container.ports or [] if p.name == port.target_port), port.port
                )
            egress.route(namespace, service.metadata.name, port.port, f"{address}:{target}")
            routes.append({"namespace": namespace, "name": service.metadata.name, "port": port.port, "target": target})
    record = {
        "namespace": namespace,
        "deployment": deployment,
        "address": address,
        "pid": process.pid,
        "chart_version": chart_version,
        "skew": [a.name for a in skew],
        "routes": routes,
        "argv": [str(binary), *args],
    }
    atomic_write(istiod.record_file, json.dumps(record, indent=2) + "\n")
    try:
        _wait_ready(istiod, process, address, timeout=timeout, log_from=log_from)
    except BaseException:
        with contextlib.suppress(ClusterError):
            istiod.stop(egress)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=1)
        raise
    return Started(istiod, process.pid, address, routes, egress)


def _chart_version(deploy: Any) -> str:
    """The istiod chart's version, from the `helm.sh/chart` label (`istiod-1.12.2`), else istiod's image tag."""
    labels = deploy.metadata.labels or {}
    # `<name>-<version>`: the version starts at the first `-` followed by N.N.N (a pre-release has a `-` of its own).
    found = re.search(r"-(\d+\.\d+\.\d+\S*)$", labels.get("helm.sh/chart", ""))
    if found:
        return found.group(1)
    image = str(deploy.spec.template.spec.containers[0].image or "")
    return image.rsplit(":", 1)[1] if ":" in image else ""


def _write_injection_files(kube: Any, namespace: str, deploy: Any, directory: Path) -> None:
    """The injector ConfigMap's `config` and `values` as the files istiod reads first (skew: see SKEW_1_12)."""
    revision = (deploy.spec.template.metadata.labels or {}).get("istio.io/rev", "default")
    name = "istio-sidecar-injector" + ("" if revision in ("", "default") else f"-{revision}")
    try:
        data = kube.core.read_namespaced_config_map(name, namespace).data or {}
    except Exception as err:
        raise ClusterError(f"cannot read the injector ConfigMap {namespace}/{name}: {err}") from err
    directory.mkdir(parents=True, exist_ok=True)
    for key in ("config", "values"):
        if key not in data:
            raise ClusterError(f"the injector ConfigMap {namespace}/{name} has no `{key}`")
        atomic_write(directory / key, _istio_skew_template(data[key]) if key == "config" else data[key])


def _ready(address: str) -> bool:
    try:
        # No proxy from the environment: the address is this host's loopback.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://{address}:{READY_PORT}/ready", timeout=2) as answer:
            return int(answer.status) == 200
    except OSError:
        return False


def _serves_tls(address: str) -> bool:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((address, WEBHOOK_PORT), timeout=2) as raw, context.wrap_socket(raw):
            return True
    except OSError:
        return False


def refusals(log: str, *, most: int = 5) -> list[str]:
    """The distinct refusals the API server gave istiod (RBAC: `... is forbidden: User ... cannot ...`), from its
    log: what the chart's RBAC did not grant."""
    found: list[str] = []
    quote = r'\\?"'
    pattern = re.compile(
        rf"(\S+ is forbidden: User {quote}[^\"\\]+{quote} cannot [a-z]+ resource {quote}[^\"\\]+{quote}"
        rf"(?: in API group {quote}[^\"\\]*{quote})?"
        rf"(?: at the cluster scope| in the namespace {quote}[^\"\\]+{quote})?)"
    )
    for line in log.splitlines():
        for match in pattern.finditer(line):
            text = match.group(1).replace('\\"', '"')
            if text not in found:
                found.append(text)
    return found[:most]


# A list of istiod's informers that keeps failing never syncs, and istiod does not become ready while it waits for it
# (an RBAC refusal, or an API version the CRDs do not serve). Failing this many times over at least this many seconds
# of istiod's own log is not the moment's lag of a binding or CRD just created: the informer retries with a growing
# delay (its first retry about a second later), and a list that then succeeds logs nothing more. The fourth failure
# comes 7 to 10 s after the first (tests/data/istiod-1.31-logs/), instead of the whole `timeout`.
STUCK_LIST_FAILURES = 4
STUCK_LIST_SECONDS = 5.0
_LIST_FAILURE = re.compile(r"^(\d{4}-\d\d-\d\dT[\d:.]+Z)\s.*?failed to list \*([\w.]+): (.+)$")


def stuck_lists(log: str) -> list[str]:
    """The informer lists istiod's log shows failing again and again (`STUCK_LIST_FAILURES` times or more, the first
    and the last at least `STUCK_LIST_SECONDS` apart), each as `*<version>.<Kind>: <the API server's answer> (N
    failures over S s)`, in the order they first failed."""
    seen: dict[str, tuple[float, float, int, str]] = {}
    for line in log.splitlines():
        match = _LIST_FAILURE.match(line)
        if not match:
            continue
        stamp, kind, why = match.groups()
        try:
            at = datetime.datetime.fromisoformat(stamp).timestamp()
        except ValueError:
            continue
        first, _, count, _ = seen.get(kind, (at, at, 0, why))
        seen[kind] = (first, at, count + 1, why.strip())
    return [
        f"*{kind}: {why} ({count} failures over {last - first:.0f} s)"
        for kind, (first, last, count, why) in seen.items()
        if count >= STUCK_LIST_FAILURES and last - first >= STUCK_LIST_SECONDS
    ]


def _wait_ready(
    istiod: HostIstiod, process: subprocess.Popen[bytes], address: str, *, timeout: float, log_from: int = 0
) -> None:
    """Until istiod answers /ready and TLS on its webhook port. Fails at once if it exits, as soon as its log (from
    byte `log_from`, where this process began writing) shows an informer list it keeps failing (`stuck_lists`: it
    will not become ready), or at `timeout`; the error names the API server's refusals and the stuck lists, and ends
    with the log's tail."""
    start = time.monotonic()
    deadline = start + timeout
    next_look = start + 1.0
    while True:
        code = process.poll()
        if code is not None:
            raise ClusterError(
                f"istiod exited ({code}) before it was ready; last lines of its log:\n{istiod.log_tail()}"
            )
        if _ready(address) and _serves_tls(address):
            return
        now = time.monotonic()
        if now > deadline or now > next_look:
            next_look = now + 1.0
            try:
                with istiod.log.open("rb") as handle:
                    handle.seek(log_from)
                    log = handle.read().decode(errors="replace")
            except OSError:
                log = ""
            stuck = stuck_lists(log)
            if stuck or now > deadline:
                why = "".join(f"\n  refused by the API server: {r}" for r in refusals(log))
                why += "".join(f"\n  list failing: {s}" for s in stuck)
                waited = (
                    f"gave up after {now - start:.0f}s waiting for istiod at {address} to be ready: it keeps "
                    "failing to list what it watches, so it will not be"
                    if stuck
                    else f"timed out after {timeout:g}s waiting for istiod at {address} to be ready"
                )
                raise ClusterError(
                    f"{waited} (/ready on :{READY_PORT} and TLS on :{WEBHOOK_PORT}){why}; last lines of its log:\n"
                    f"{istiod.log_tail()}"
                )
        time.sleep(0.2)


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state that process `pid` holds (IPv4 and IPv6)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    found: set[tuple[str, int]] = set()
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 9 and fields[3] == "0A" and fields[9] in inodes:
                    host_hex, port_hex = fields[1].split(":")
                    found.add((_address(host_hex, width), int(port_hex, 16)))
    return found


def _address(hex_text: str, width: int) -> str:
    raw = bytes.fromhex(hex_text)
    if width == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)
