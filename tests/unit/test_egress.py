"""The local cluster's egress policy and proxy: loopback and routed Services pass, nothing else leaves.

The proxy runs here as the real process `cluster up` starts, on a real Unix socket; its only peers in
these tests are servers on 127.0.0.1. Addresses off the machine appear only as CONNECT targets it must
refuse without dialing.
"""

from __future__ import annotations

import os
import socket
import socketserver
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from meshcharts.cluster.local import egress as egress_mod
from meshcharts.cluster.local.egress import Egress, ServiceRoute, decide, is_loopback, selector_config
from meshcharts.errors import ClusterError

SERVICES = {("10.0.0.12", 443): ("istio-system", "istiod"), ("10.0.0.13", 15012): ("istio-system", "istiod")}


def lookup(ip: str, port: int) -> tuple[str, str] | None:
    return SERVICES.get((ip, port))


def failing_lookup(ip: str, port: int) -> tuple[str, str] | None:
    raise ConnectionRefusedError("API server down")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.2.1", "::1", "[::1]", "localhost"])
def test_loopback_hosts_are_loopback(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["10.0.0.12", "192.0.2.1", "169.254.169.254", "fd00::1", "example.com", "0.0.0.0"])
def test_other_hosts_are_not_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_a_loopback_target_passes_unchanged() -> None:
    assert decide("127.0.0.1", 8443, {}, lookup).target == ("127.0.0.1", 8443)
    assert decide("[::1]", 8443, {}, lookup).target == ("::1", 8443)


def test_a_service_without_a_route_is_refused_naming_the_service_and_its_cluster_ip() -> None:
    decision = decide("10.0.0.12", 443, {}, lookup)
    assert decision.target is None
    assert decision.service == "istio-system/istiod"
    assert "Service istio-system/istiod port 443 (ClusterIP 10.0.0.12) has no backend" in decision.reason


def test_a_routed_service_port_goes_to_its_loopback_target_and_other_ports_stay_refused() -> None:
    route = ServiceRoute("istio-system", "istiod", 443, "127.0.0.1:40001")
    routes = {route.key: route}
    assert decide("10.0.0.12", 443, routes, lookup).target == ("127.0.0.1", 40001)
    assert decide("10.0.0.13", 15012, routes, lookup).target is None


def test_an_address_no_service_has_is_refused_without_a_service_name() -> None:
    decision = decide("192.0.2.1", 443, {}, lookup)
    assert decision.target is None and decision.service == ""
    assert "192.0.2.1:443 is no Service port of this cluster" in decision.reason


def test_a_hostname_is_refused_and_never_resolved() -> None:
    def must_not_be_called(ip: str, port: int) -> tuple[str, str] | None:
        raise AssertionError("a hostname reached the Service lookup")

    decision = decide("example.com", 443, {}, must_not_be_called)
    assert decision.target is None
    assert "hostname" in decision.reason


def test_a_failing_service_lookup_refuses_and_says_why() -> None:
    decision = decide("10.0.0.12", 443, {}, failing_lookup)
    assert decision.target is None
    assert "looking its Service up failed: API server down" in decision.reason


def test_routes_accept_only_loopback_targets_and_persist(tmp_path: Path) -> None:
    egress = Egress(tmp_path / "egress")
    egress.prepare()
    egress.route("istio-system", "istiod", 443, "127.0.0.1:40001")
    egress.route("istio-system", "istiod-canary", 443, "[::1]:40002")
    with pytest.raises(ClusterError, match="not a loopback address"):
        egress.route("istio-system", "istiod", 15012, "10.0.0.5:15012")
    with pytest.raises(ClusterError, match="is not HOST:PORT"):
        egress.route("istio-system", "istiod", 15012, "127.0.0.1")
    assert sorted(Egress(tmp_path / "egress").routes()) == ["istio-system/istiod-canary:443", "istio-system/istiod:443"]
    egress.unroute("istio-system", "istiod", 443)
    assert list(egress.routes()) == ["istio-system/istiod-canary:443"]


def test_routes_need_the_cluster_directory(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="is the local cluster up"):
        Egress(tmp_path / "missing").route("ns", "svc", 443, "127.0.0.1:1")


def test_the_selector_config_proxies_cluster_and_controlplane_and_keeps_etcd_direct(tmp_path: Path) -> None:
    config = yaml.safe_load(selector_config(tmp_path / "egress.sock"))
    assert config["apiVersion"] == "apiserver.k8s.io/v1beta1"
    assert config["kind"] == "EgressSelectorConfiguration"
    selections = {s["name"]: s["connection"] for s in config["egressSelections"]}
    for name in ("cluster", "controlplane"):
        assert selections[name] == {
            "proxyProtocol": "HTTPConnect",
            "transport": {"uds": {"udsName": str(tmp_path / "egress.sock")}},
        }
    assert selections["etcd"] == {"proxyProtocol": "Direct"}


def test_a_cache_path_too_long_for_a_unix_socket_gets_a_short_socket_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    egress = Egress(deep)
    egress.prepare()
    assert len(str(egress.socket)) <= 107
    assert f'"{egress.socket}"' in egress.config.read_text()
    egress.stop()
    assert not egress.socket.parent.exists()
    assert not deep.exists()


# --- the real proxy process ---------------------------------------------------------------------------


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data = self.request.recv(1024)
        self.request.sendall(b"echo:" + data)


@pytest.fixture
def echo_port() -> Iterator[int]:
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo) as server:
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        yield int(server.server_address[1])
        server.shutdown()
        thread.join()


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[Egress]:
    egress = Egress(tmp_path / "egress")
    egress.prepare()
    # No cluster: the kubeconfig does not exist, so every Service lookup fails (and says so).
    egress.start(tmp_path / "no-kubeconfig.yaml")
    yield egress
    egress.stop()


def connect(egress: Egress, target: str) -> tuple[str, socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(egress.socket))
    sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            break
        head += chunk
    return head.decode().split("\r\n", 1)[0], sock


def test_the_proxy_tunnels_to_loopback(proxy: Egress, echo_port: int) -> None:
    status, sock = connect(proxy, f"127.0.0.1:{echo_port}")
    with sock:
        assert status == "HTTP/1.1 200 Connection established"
        sock.sendall(b"hello")
        assert sock.recv(1024) == b"echo:hello"
    assert any(d["verdict"] == "connected" and d["target"] == f"127.0.0.1:{echo_port}" for d in proxy.decisions())


def test_the_proxy_refuses_an_off_machine_address_at_once_and_logs_it(proxy: Egress) -> None:
    status, sock = connect(proxy, "10.0.0.12:443")
    sock.close()
    assert status.startswith("HTTP/1.1 503 meshcharts egress refused: 10.0.0.12:443 is no Service port")
    refused = [d for d in proxy.decisions() if d["verdict"] == "refused"]
    assert refused and refused[-1]["target"] == "10.0.0.12:443"
    assert not any(d["verdict"] == "connected" for d in proxy.decisions())


def test_the_proxy_reports_a_dead_loopback_target_as_a_failed_connection(proxy: Egress) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    status, sock = connect(proxy, f"127.0.0.1:{free}")
    sock.close()
    assert status.startswith("HTTP/1.1 502 meshcharts egress: loopback, but connecting to 127.0.0.1:")


def test_the_proxy_answers_only_connect(proxy: Egress) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with sock:
        sock.settimeout(10)
        sock.connect(str(proxy.socket))
        sock.sendall(b"GET http://10.0.0.12/ HTTP/1.1\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 405 ")


def test_stop_ends_the_proxy_by_pid_and_removes_its_files(tmp_path: Path) -> None:
    egress = Egress(tmp_path / "egress")
    egress.prepare()
    pid = egress.start(tmp_path / "kubeconfig")
    assert egress.pid() == pid
    assert egress.start(tmp_path / "kubeconfig") == pid  # already running: not started twice
    egress.stop()
    assert egress.pid() is None
    assert not Path(f"/proc/{pid}/cmdline").exists() or Path(f"/proc/{pid}/cmdline").read_bytes() == b""
    assert not (tmp_path / "egress").exists()


def test_the_proxys_socket_appears_only_once_it_accepts_and_only_its_owner_may_use_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`wait_listening` returns as soon as the socket's path exists, and the API server dials that path: the proxy
    must be listening by then. Bound at the path itself, the file exists a moment before listen(), and a connect in
    that moment is refused (a static-layer run here failed so). Checked at the rename that makes the path appear."""
    path = tmp_path / "egress.sock"
    seen: list[tuple[int, str]] = []
    real_replace = os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        assert not Path(dst).exists()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(5)
            probe.connect(str(src))  # refused unless the socket listens already
        seen.append((stat.S_IMODE(os.stat(src).st_mode), Path(src).parent.name))
        real_replace(src, dst)

    monkeypatch.setattr(egress_mod.os, "replace", replace)
    sock = egress_mod._listening(path)
    with sock:
        assert seen == [(0o600, tmp_path.name)]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["egress.sock"]
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(5)
            client.connect(str(path))
