"""Clusters for tests and demos: `local` (kwokctl's binary runtime on cached binaries), `kind`, `existing`.

`up` returns only when the API server answers and the nodes are Ready; `down` verifies by pid and
port that nothing it started is left behind. Every failure is a ClusterError naming cause and fix.
"""

from __future__ import annotations

import re
from pathlib import Path

from meshcharts import tools
from meshcharts.cluster import existing, kind, local
from meshcharts.cluster._common import (
    KWOK_NODE_ANNOTATION,
    Cluster,
    Say,
    check_reachable,
    listening_ports,
    pid_alive,
    quiet,
    simulated_nodes,
    wait_ready,
)
from meshcharts.cluster.kind import (
    KIND_ENGINE_SKIP,
    container_engine_candidates,
    container_engine_socket,
    kind_config,
    kind_create_argv,
    kind_delete_argv,
    kind_files,
    kind_minor,
    kind_node_image,
    require_engine,
)
from meshcharts.cluster.local import LOCAL_COMPONENTS, LOCAL_STAGES, Local, local_stages
from meshcharts.errors import ClusterError

PROVIDERS = ("local", "kind", "existing")
DEFAULT_NAME = "meshcharts"
DEFAULT_NODES = 2
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$")


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
    owner: int | None = None,
    say: Say = quiet,
) -> Cluster:
    """Bring a cluster up (or find it up) and return once its API server answers and its nodes are Ready.

    `k8s_version` picks the local toolchain release, or for kind the kindest/node image of its minor;
    `image` overrides that image (kind only). `owner` (local only) is the pid of the process the cluster
    lives for, such as a test run: once that process is gone, `prune` takes the cluster down.
    """
    validate_name(name)
    validate_provider(provider)
    cache = cache or tools.cache_root()
    if provider == "existing":
        path = existing.kubeconfig(kubeconfig)
        check_reachable(path, timeout=timeout)
        return Cluster(name, "existing", path)
    if kubeconfig is not None:
        raise ClusterError(f"--kubeconfig is for --provider existing; provider {provider} writes its own")
    if image is not None and provider != "kind":
        raise ClusterError(f"--image is for --provider kind; provider {provider} runs no node image")
    if provider == "kind":
        return kind.up(cache, name, nodes=nodes, timeout=timeout, k8s_version=k8s_version, image=image, say=say)
    local_cluster = Local(cache, k8s_version, stages=local_stages())
    return local.up(local_cluster, name, nodes=nodes, timeout=timeout, api_port=api_port, say=say, owner=owner)


def down(
    name: str = DEFAULT_NAME,
    *,
    provider: str = "local",
    timeout: float = 60.0,
    cache: Path | None = None,
    say: Say = quiet,
) -> None:
    """Take a cluster down; for `local`, verify that none of its processes or listening ports is left."""
    validate_name(name)
    validate_provider(provider)
    cache = cache or tools.cache_root()
    if provider == "existing":
        say("provider existing: the cluster is not ours to take down; nothing done")
    elif provider == "kind":
        kind.down(cache, name, timeout=timeout, say=say)
    else:
        local.down(Local(cache), name, timeout=timeout, say=say)


def prune(*, timeout: float = 60.0, cache: Path | None = None, say: Say = quiet) -> list[str]:
    """Take down every local cluster whose owner process is gone or whose processes all died; returns their names."""
    return local.prune(Local(cache or tools.cache_root()), timeout=timeout, say=say)


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
        return existing.kubeconfig(kubeconfig)
    path = kind.kubeconfig_path(cache, name) if provider == "kind" else Local(cache).kubeconfig(name)
    if not path.is_file():
        raise ClusterError(
            f"no {provider} cluster {name} (no {path}); fix: `meshcharts cluster up --name {name} "
            f"--provider {provider}`"
        )
    return path


__all__ = [
    "DEFAULT_NAME",
    "DEFAULT_NODES",
    "KIND_ENGINE_SKIP",
    "KWOK_NODE_ANNOTATION",
    "LOCAL_COMPONENTS",
    "LOCAL_STAGES",
    "PROVIDERS",
    "Cluster",
    "Local",
    "Say",
    "check_reachable",
    "container_engine_candidates",
    "container_engine_socket",
    "down",
    "kind_config",
    "kind_create_argv",
    "kind_delete_argv",
    "kind_files",
    "kind_minor",
    "kind_node_image",
    "kubeconfig_path",
    "listening_ports",
    "local_stages",
    "pid_alive",
    "prune",
    "require_engine",
    "simulated_nodes",
    "tools",
    "up",
    "validate_name",
    "validate_provider",
    "wait_ready",
]
