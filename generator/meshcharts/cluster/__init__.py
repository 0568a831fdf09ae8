"""Clusters for tests and demos, behind one interface (`Provider`, in meshcharts.cluster.provider).

Providers: `local` (kwokctl's binary runtime on cached binaries; meshcharts.cluster.local), `kind`
(meshcharts.cluster.kind) and `existing` (meshcharts.cluster.existing). `up` returns only when the API server
answers and the nodes are Ready; `down` verifies that nothing it started is left behind. Every failure is a
ClusterError naming cause and fix. A new provider is a package implementing `Provider` and an entry in
PROVIDERS.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from meshcharts import tools
from meshcharts.cluster._common import Cluster, Say, quiet
from meshcharts.cluster.existing import ExistingProvider
from meshcharts.cluster.kind import KindProvider
from meshcharts.cluster.local import LocalProvider
from meshcharts.cluster.provider import Capabilities, Provider, UpRequest
from meshcharts.errors import ClusterError

PROVIDERS: dict[str, Callable[[Path | None], Provider]] = {
    "local": LocalProvider,
    "kind": KindProvider,
    "existing": ExistingProvider,
}
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


def get_provider(name: str, cache: Path | None = None) -> Provider:
    """The provider called `name`; ClusterError listing the known ones otherwise."""
    if name not in PROVIDERS:
        raise ClusterError(f"unknown provider {name!r}; choose one of: {', '.join(PROVIDERS)}")
    return PROVIDERS[name](cache)


# --- the command line's entry points ----------------------------------------------------------------------


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
    request = UpRequest(nodes, timeout, k8s_version, kubeconfig, image, api_port, owner)  # in UpRequest's field order
    return get_provider(provider, cache).up(name, request, say=say)


def down(
    name: str = DEFAULT_NAME,
    *,
    provider: str = "local",
    timeout: float = 60.0,
    cache: Path | None = None,
    say: Say = quiet,
) -> None:
    """Take a cluster down and verify that nothing it ran is left (nothing done for a cluster not ours)."""
    validate_name(name)
    get_provider(provider, cache).down(name, timeout=timeout, say=say)


def prune(*, timeout: float = 60.0, cache: Path | None = None, say: Say = quiet) -> list[str]:
    """Take down every cluster of every provider whose test run is gone; returns their names."""
    pruned: list[str] = []
    for name in PROVIDERS:
        pruned += get_provider(name, cache).prune(timeout=timeout, say=say)
    return pruned


def kubeconfig_path(
    name: str = DEFAULT_NAME,
    *,
    provider: str = "local",
    kubeconfig: Path | None = None,
    cache: Path | None = None,
) -> Path:
    """Path of the kubeconfig of an up cluster, or ClusterError saying how to bring it up."""
    validate_name(name)
    path = get_provider(provider, cache).kubeconfig(name, kubeconfig)
    if not path.is_file():
        raise ClusterError(
            f"no {provider} cluster {name} (no {path}); fix: `meshcharts cluster up --name {name} "
            f"--provider {provider}`"
        )
    return path


__all__ = [
    "DEFAULT_NAME",
    "DEFAULT_NODES",
    "PROVIDERS",
    "Capabilities",
    "Cluster",
    "Provider",
    "Say",
    "UpRequest",
    "down",
    "get_provider",
    "kubeconfig_path",
    "prune",
    "up",
    "validate_name",
]
