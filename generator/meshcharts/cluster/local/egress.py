"""Where a local cluster's API server may connect to: loopback, and the Services routed there, nothing else.

kube-apiserver opens connections from addresses it reads out of cluster objects: webhooks (a Service or a
URL), aggregated APIs, and the node, pod and Service proxies. Its egress selector sends each of those
dials (the `cluster` and `controlplane` kinds of traffic) to an HTTP CONNECT proxy on a Unix socket
instead of the network. A local cluster runs this module as that proxy. It connects to loopback
addresses (127.0.0.0/8, ::1) only; a Service's ClusterIP is reached only where a route in
`routes.json` maps that Service's port to a loopback port (the harness routes istiod's Services to the
admission recorder this way, so the charts are installed as users install them). Every other target is
refused at once with a reason naming the Service, and logged. Hostnames are never resolved.

etcd traffic stays direct: kwokctl points the API server at etcd on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import ipaddress
import json
import os
import signal
import socket as socket_mod
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshcharts._files import atomic_write
from meshcharts.errors import ClusterError
from meshcharts.tools import locked

SELECTOR_CONFIG = "egress-selector.yaml"
ROUTES = "routes.json"
LOG = "egress.log"
PID = "egress.pid"
SOCKET_LINK = "socket-path"
_SOCKET_NAME = "egress.sock"
# sun_path holds 108 bytes with its terminating NUL.
_MAX_SOCKET_PATH = 107
_START_TIMEOUT = 10.0
_CONNECT_TIMEOUT = 5.0
_HEADER_LIMIT = 8192
_LOOKUP_TIMEOUT = 5.0


def is_loopback(host: str) -> bool:
    """True for a literal loopback address (127.0.0.0/8, ::1) or `localhost`; hostnames are never resolved."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def selector_config(socket: Path) -> str:
    """kube-apiserver's --egress-selector-config-file: cluster and controlplane dials go to `socket`."""
    proxied = (
        "  connection:\n"
        "    proxyProtocol: HTTPConnect\n"
        "    transport:\n"
        "      uds:\n"
        f"        udsName: {json.dumps(str(socket))}\n"
    )
    return (
        "# meshcharts: the local cluster's API server dials webhooks, aggregated APIs and proxies only through\n"
        "# the loopback-only proxy on this socket (meshcharts.cluster.local.egress); etcd is on 127.0.0.1 and\n"
        "# stays direct.\n"
        "apiVersion: apiserver.k8s.io/v1beta1\n"
        "kind: EgressSelectorConfiguration\n"
        "egressSelections:\n"
        "- name: cluster\n"
        f"{proxied}"
        "- name: controlplane\n"
        f"{proxied}"
        "- name: etcd\n"
        "  connection:\n"
        "    proxyProtocol: Direct\n"
    )


@dataclass(frozen=True)
class ServiceRoute:
    """Connections for `port` of Service `namespace/name` go to `target` (a loopback host:port)."""

    namespace: str
    name: str
    port: int
    target: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}:{self.port}"


def _check_target(target: str) -> tuple[str, int]:
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError(f"egress route target {target!r} is not HOST:PORT")
    if not is_loopback(host):
        raise ClusterError(
            f"egress route target {target!r} is not a loopback address: a local cluster connects to nothing "
            "beyond loopback (127.0.0.0/8, ::1)"
        )
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class Egress:
    """The proxy's files for one local cluster: selector config, routes, log, pid and the socket's path."""

    directory: Path

    @property
    def config(self) -> Path:
        return self.directory / SELECTOR_CONFIG

    @property
    def routes_file(self) -> Path:
        return self.directory / ROUTES

    @property
    def log(self) -> Path:
        return self.directory / LOG

    @property
    def pid_file(self) -> Path:
        return self.directory / PID

    @property
    def socket(self) -> Path:
        """The Unix socket; in a short temporary directory where the cache path is too long for one."""
        recorded = self.directory / SOCKET_LINK
        with contextlib.suppress(OSError):
            return Path(recorded.read_text().strip())
        return self.directory / _SOCKET_NAME

    def prepare(self) -> None:
        """Create the directory, choose the socket path and write the selector config (before the API server starts)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        socket = self.directory / _SOCKET_NAME
        if len(os.fsencode(socket)) > _MAX_SOCKET_PATH:
            socket = Path(tempfile.mkdtemp(prefix="meshcharts-egress-")) / _SOCKET_NAME
            atomic_write(self.directory / SOCKET_LINK, f"{socket}\n")
        atomic_write(self.config, selector_config(socket))
        if not self.routes_file.exists():
            atomic_write(self.routes_file, json.dumps({"services": {}}, indent=2) + "\n")

    # --- routes ---------------------------------------------------------------------------------------

    def routes(self) -> dict[str, ServiceRoute]:
        """Routes by `namespace/name:port`; a missing or unreadable file means none."""
        try:
            data = json.loads(self.routes_file.read_text())
        except (OSError, ValueError):
            return {}
        found: dict[str, ServiceRoute] = {}
        for key, target in (data.get("services") or {}).items() if isinstance(data, dict) else ():
            service, _, port = str(key).rpartition(":")
            namespace, _, name = service.partition("/")
            if namespace and name and port.isdigit() and isinstance(target, str):
                found[key] = ServiceRoute(namespace, name, int(port), target)
        return found

    def route(self, namespace: str, name: str, port: int, target: str) -> ServiceRoute:
        """Send the API server's connections for Service `namespace/name` port `port` to loopback `target`."""
        _check_target(target)
        new = ServiceRoute(namespace, name, port, target)
        with self._routes_lock():
            self._write_routes({**self.routes(), new.key: new})
        return new

    def unroute(self, namespace: str, name: str, port: int) -> None:
        with self._routes_lock():
            routes = self.routes()
            routes.pop(ServiceRoute(namespace, name, port, "").key, None)
            self._write_routes(routes)

    def _routes_lock(self) -> contextlib.AbstractContextManager[None]:
        """Routes are read, changed and written by several processes (tests, the CLI): one at a time."""
        if not self.directory.is_dir():
            raise ClusterError(f"no egress proxy directory {self.directory}: is the local cluster up?")
        return locked(self.directory / "routes.lock")

    def _write_routes(self, routes: Mapping[str, ServiceRoute]) -> None:
        body = {"services": {key: routes[key].target for key in sorted(routes)}}
        atomic_write(self.routes_file, json.dumps(body, indent=2) + "\n")

    # --- what was decided -------------------------------------------------------------------------

    def decisions(self) -> list[dict[str, Any]]:
        """Every decision the proxy logged, oldest first (one JSON object per line)."""
        try:
            lines = self.log.read_text().splitlines()
        except OSError:
            return []
        found = []
        for line in lines:
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and "verdict" in record:
                    found.append(record)
        return found

    def describe(self) -> str:
        """One line for `cluster up`: where the cluster's traffic can go."""
        routes = self.routes()
        routed = ", ".join(f"{r.key} -> {r.target}" for r in routes.values()) or "none yet"
        return (
            f"egress: the API server dials webhooks, aggregated APIs and proxies only through {self.socket}, "
            f"which connects to loopback (127.0.0.0/8, ::1) and to routed Services ({routed}); "
            f"everything else is refused and logged in {self.log}"
        )

    # --- the proxy process ------------------------------------------------------------------------

    def pid(self) -> int | None:
        """The proxy's pid while it runs (checked against its command line), else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        return pid if os.fsencode(self.socket) in cmdline and b"meshcharts.cluster.local.egress" in cmdline else None

    def start(self, kubeconfig: Path) -> int:
        """Start the proxy in its own session unless it runs; return its pid once its socket accepts."""
        pid = self.launch(kubeconfig)
        self.wait_listening()
        return pid

    def launch(self, kubeconfig: Path) -> int:
        """Start the proxy in its own session unless it runs, without waiting for it to listen.

        The API server may start meanwhile: until the socket exists its dials fail, none goes direct.
        """
        running = self.pid()
        if running is not None:
            return running
        socket = self.socket
        socket.unlink(missing_ok=True)
        argv = [
            sys.executable,
            "-m",
            "meshcharts.cluster.local.egress",
            "--socket",
            str(socket),
            "--routes",
            str(self.routes_file),
            "--kubeconfig",
            str(kubeconfig),
        ]
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        with self.log.open("ab") as log:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, env=env
            )
        atomic_write(self.pid_file, f"{process.pid}\n")
        return process.pid

    def wait_listening(self) -> None:
        """Return once the proxy's socket exists; ClusterError with its log if it exited or took too long."""
        socket = self.socket
        deadline = time.monotonic() + _START_TIMEOUT
        while not socket.exists():
            if self.pid() is None and _exited(self._pid_on_file()):
                raise ClusterError(f"the egress proxy exited before listening on {socket}; its log:\n{_tail(self.log)}")
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"timed out after {_START_TIMEOUT:g}s waiting for the egress proxy to listen on {socket}; "
                    f"its log:\n{_tail(self.log)}"
                )
            time.sleep(0.02)

    def _pid_on_file(self) -> int:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return 0

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop the proxy by its pid (if it is ours and runs) and remove every file of it."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while not _exited(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if self.pid() is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            while not _exited(pid) and time.monotonic() < deadline + 5:
                time.sleep(0.02)
        socket = self.socket
        socket.unlink(missing_ok=True)
        if socket.parent != self.directory:
            with contextlib.suppress(OSError):
                socket.parent.rmdir()
        extra = (self.directory / SOCKET_LINK, self.directory / "routes.lock")
        for path in (self.config, self.routes_file, self.log, self.pid_file, *extra):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.directory.rmdir()


def _exited(pid: int) -> bool:
    """True once `pid` is gone or a zombie (its command line empties earlier, while it still exits)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


# --- the proxy ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """Where a CONNECT goes: `target` (host, port) or None with the `reason` it is refused."""

    target: tuple[str, int] | None
    reason: str
    service: str = ""


ServiceLookup = Callable[[str, int], "tuple[str, str] | None"]
"""(ClusterIP, port) -> (namespace, name) of the Service that has it, or None."""


def decide(host: str, port: int, routes: Mapping[str, ServiceRoute], lookup: ServiceLookup) -> Decision:
    """The policy: loopback passes, a routed Service goes to its loopback target, everything else is refused."""
    if is_loopback(host):
        return Decision((host.strip("[]"), port), "loopback")
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return Decision(None, f"{host}:{port} is a hostname; the local cluster resolves none and reaches only loopback")
    try:
        service = lookup(host, port)
    except Exception as err:  # the proxy must answer even when the API server cannot be asked
        service, problem = None, f" (looking its Service up failed: {err})"
    else:
        problem = ""
    if service is None:
        return Decision(
            None,
            f"{host}:{port} is no Service port of this cluster{problem} and not loopback; "
            "the local cluster sends nothing beyond loopback",
        )
    namespace, name = service
    label = f"{namespace}/{name}"
    route = routes.get(f"{label}:{port}")
    if route is None:
        return Decision(
            None,
            f"Service {label} port {port} (ClusterIP {host}) has no backend on this machine: the local "
            "cluster runs no pods and sends nothing beyond loopback",
            label,
        )
    return Decision(_check_target(route.target), f"Service {label} port {port} routed to {route.target}", label)


class _ServiceIndex:
    """Finds a Service by ClusterIP and port through the official client, asked again on every miss."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self._core: Any = None

    def __call__(self, ip: str, port: int) -> tuple[str, str] | None:
        if self._core is None:
            from meshcharts.kube import kube_for

            self._core = kube_for(self.kubeconfig).core
        services = self._core.list_service_for_all_namespaces(_request_timeout=_LOOKUP_TIMEOUT).items
        for svc in services:
            spec = svc.spec
            ips = set(spec.cluster_ips or []) | ({spec.cluster_ip} if spec.cluster_ip else set())
            if ip in ips and any(p.port == port for p in spec.ports or []):
                return str(svc.metadata.namespace), str(svc.metadata.name)
        return None


def _log(record: Mapping[str, Any]) -> None:
    stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
    print(json.dumps({"time": stamp, **record}, sort_keys=True), flush=True)


def _status_line(code: int, reason: str) -> bytes:
    text = " ".join(reason.split()).encode("ascii", "replace")[:900]
    return b"HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" % (code, text)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


class Proxy:
    """The HTTP CONNECT proxy on a Unix socket; one CONNECT per connection, as kube-apiserver sends it."""

    def __init__(self, routes_file: Path, lookup: ServiceLookup) -> None:
        self.egress = Egress(routes_file.parent)
        self.routes_file = routes_file
        self.lookup = lookup

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._handle(reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=_CONNECT_TIMEOUT)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            return
        request = head.split(b"\r\n", 1)[0].decode("latin-1")
        method, _, rest = request.partition(" ")
        authority = rest.partition(" ")[0]
        host, sep, port_text = authority.rpartition(":")
        if method != "CONNECT" or not sep or not port_text.isdigit():
            _log({"verdict": "refused", "request": request, "reason": "not a CONNECT"})
            writer.write(_status_line(405, f"only CONNECT host:port is served here, not {request!r}"))
            return
        port = int(port_text)
        loop = asyncio.get_running_loop()
        decision = await loop.run_in_executor(
            None, decide, host, port, Egress(self.routes_file.parent).routes(), self.lookup
        )
        record = {"target": authority, "service": decision.service, "reason": decision.reason}
        if decision.target is None:
            _log({"verdict": "refused", **record})
            writer.write(_status_line(503, f"meshcharts egress refused: {decision.reason}"))
            return
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(*decision.target), timeout=_CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError) as err:
            to = f"{decision.target[0]}:{decision.target[1]}"
            why = f"meshcharts egress: {decision.reason}, but connecting to {to} failed: {err}"
            _log({"verdict": "failed", "error": str(err), **record})
            writer.write(_status_line(502, why))
            return
        # Logged before the client hears back, so whoever reads the log after a call sees the decision.
        _log({"verdict": "connected", "to": f"{decision.target[0]}:{decision.target[1]}", **record})
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            upstream_writer.close()


def _listening(path: Path) -> socket_mod.socket:
    """A Unix socket, private to its owner, that listens before it appears at `path`: it is bound and made to listen
    under a name of its own in the same directory, then renamed. Whoever sees `path` exist (`wait_listening`, the API
    server) can connect at once; bound at `path` itself, the file would be there a moment before listen(), and a
    connect in that moment is refused."""
    # No longer than the final name, so it fits sun_path wherever that does.
    staging = path.with_name(f".e{os.getpid()}")
    staging.unlink(missing_ok=True)
    sock = socket_mod.socket(socket_mod.AF_UNIX, socket_mod.SOCK_STREAM)
    try:
        sock.bind(str(staging))
        os.chmod(staging, 0o600)
        sock.listen(100)
        os.replace(staging, path)
    except BaseException:
        sock.close()
        staging.unlink(missing_ok=True)
        raise
    return sock


async def _serve(socket: Path, routes_file: Path, kubeconfig: Path) -> None:
    proxy = Proxy(routes_file, _ServiceIndex(kubeconfig))
    server = await asyncio.start_unix_server(proxy.handle, sock=_listening(socket), limit=_HEADER_LIMIT)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    _log({"verdict": "listening", "socket": str(socket), "pid": os.getpid()})
    async with server:
        await stop.wait()
    socket.unlink(missing_ok=True)
    _log({"verdict": "stopped", "pid": os.getpid()})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m meshcharts.cluster.local.egress", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--routes", type=Path, required=True)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.socket, args.routes, args.kubeconfig))
    return 0


if __name__ == "__main__":
    sys.exit(main())
