"""The kind provider: for machines with Docker or Podman, where pods really run."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from meshcharts import tools
from meshcharts.cluster._common import Cluster, Say, run_tool, wait_ready
from meshcharts.cluster.provider import Capabilities, UpRequest
from meshcharts.controlplane import InClusterIstiod
from meshcharts.errors import ClusterError, ToolError, UsageError
from meshcharts.paths import package_data

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


def kind_files() -> tuple[Path, Path]:
    """The base cluster config and the node image table: package data (meshcharts/data/kind)."""
    try:
        kind_dir = package_data("kind")
    except UsageError as err:
        raise ClusterError(str(err)) from err
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
            f"no kindest/node image for Kubernetes {minor} in data/kind/node-images.yaml; known minors: {known}; "
            "fix: add one, or pass --image"
        )
    return image


def kind_config(base: Mapping[str, Any], *, nodes: int, image: str) -> dict[str, Any]:
    """The kind Cluster config: `base` with one control plane and `nodes - 1` workers, all on `image`."""
    if nodes < 1:
        raise ClusterError(f"a kind cluster needs at least 1 node, not {nodes}")
    if base.get("kind") != "Cluster" or base.get("apiVersion") != "kind.x-k8s.io/v1alpha4":
        raise ClusterError("data/kind/cluster.yaml must be a kind Cluster of apiVersion kind.x-k8s.io/v1alpha4")
    if "nodes" in base:
        raise ClusterError("data/kind/cluster.yaml must not list nodes; meshcharts adds them from --nodes")
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


def kubeconfig_path(cache: Path, name: str) -> Path:
    return cache / "kind" / f"{name}.kubeconfig"


def up(
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
    kubeconfig = kubeconfig_path(cache, name)
    kubeconfig.parent.mkdir(parents=True, exist_ok=True)
    config_path = kubeconfig.with_suffix(".cluster.yaml")
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    say(f"creating kind cluster {name} ({config['nodes'][0]['image']}, engine {engine})")
    run_tool(
        kind_create_argv(kind, name, kubeconfig=kubeconfig, config=config_path, timeout=timeout),
        env=dict(os.environ),
        timeout=timeout + 60,
        what=f"creating kind cluster {name}",
    )
    wait_ready(kubeconfig, nodes=nodes, timeout=timeout)
    return Cluster(name, "kind", kubeconfig)


def down(cache: Path, name: str, *, timeout: float, say: Say) -> None:
    require_engine()
    try:
        kind = tools.path("kind", cache=cache)
    except ToolError as err:
        raise ClusterError(f"cannot delete kind cluster {name}: {err}") from err
    kubeconfig = kubeconfig_path(cache, name)
    run_tool(
        kind_delete_argv(kind, name, kubeconfig=kubeconfig),
        env=dict(os.environ),
        timeout=timeout,
        what=f"deleting kind cluster {name}",
    )
    kubeconfig.unlink(missing_ok=True)
    say(f"kind cluster {name} deleted")


class KindProvider:
    """`kind`: nodes in containers of Docker or Podman; real pods (the chart's istiod pod answers), no
    LoadBalancer implementation, the API server's egress is the node's own."""

    name = "kind"
    capabilities = Capabilities(simulated_pods=False, egress_proxy=False, load_balancer=False, owns_clusters=True)
    needs: tuple[str, ...] = ("kind",)

    def __init__(self, cache: Path | None = None) -> None:
        self.cache = cache or tools.cache_root()

    def unavailable(self) -> str | None:
        return KIND_ENGINE_SKIP if container_engine_socket() is None else None

    def up(self, name: str, request: UpRequest, *, say: Say) -> Cluster:
        if request.kubeconfig is not None:
            raise ClusterError("--kubeconfig is for --provider existing; provider kind writes its own")
        return up(
            self.cache,
            name,
            nodes=request.nodes,
            timeout=request.timeout,
            k8s_version=request.k8s_version,
            image=request.image,
            say=say,
        )

    def down(self, name: str, *, timeout: float, say: Say) -> None:
        down(self.cache, name, timeout=timeout, say=say)

    def exists(self, name: str) -> bool:
        return kubeconfig_path(self.cache, name).is_file()

    def kubeconfig(self, name: str, given: Path | None = None) -> Path:
        return kubeconfig_path(self.cache, name)

    def prune(self, *, timeout: float, say: Say) -> list[str]:
        return []  # kind clusters carry no owner record; `kind get clusters` lists them for the user

    def logs(self, name: str, lines: int, *, istiod: bool = False) -> str:
        return ""  # the control plane's logs are its pods' (`kind export logs`)

    def egress(self, name: str) -> Any:
        raise ClusterError("provider kind has no egress proxy: its Services route to real pods")

    def istiod_runner(self, name: str) -> InClusterIstiod:
        return InClusterIstiod()
