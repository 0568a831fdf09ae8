"""The one interface every cluster provider implements (after kind's `providers.Provider`).

A provider brings clusters up and down, says where their kubeconfig is, shows their logs, and says what its
clusters can do. Everything that needs a cluster (the CLI, the demo, the pytest plugin, the tests) asks these
questions and never branches on a provider's name; a new provider is one package implementing `Provider`
plus one entry in `meshcharts.cluster.PROVIDERS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from meshcharts.cluster._common import Cluster, Say

if TYPE_CHECKING:
    from meshcharts.cluster.local.egress import Egress
    from meshcharts.controlplane import IstiodRunner


@dataclass(frozen=True)
class Capabilities:
    """What the clusters of a provider can do, asked instead of the provider's name.

    simulated_pods: pods become Running and Ready while no container runs (kwok's nodes), so nothing in a pod
      answers a webhook; an istiod runs on the host instead (`istiod_runner`).
    egress_proxy: the API server's outgoing connections pass a proxy on this host that tests can route
      (a Service's webhooks to a server on loopback) and read (`Provider.egress`).
    load_balancer: a Service of type LoadBalancer gets an address.
    owns_clusters: `up` creates and `down` deletes the cluster; False where the cluster is the user's.
    """

    simulated_pods: bool
    egress_proxy: bool
    load_balancer: bool
    owns_clusters: bool


@dataclass(frozen=True)
class UpRequest:
    """What `up` was asked for; a provider refuses (ClusterError naming the option) what it cannot honour."""

    nodes: int
    timeout: float
    k8s_version: str
    kubeconfig: Path | None = None  # existing: the user's kubeconfig
    image: str | None = None  # kind: the node image
    api_port: int | None = None  # local: the API server's port
    owner: int | None = None  # local: the pid the cluster lives for (prune takes it down once that is gone)


class Provider(Protocol):
    """A kind of cluster: `local`, `kind`, `existing`."""

    name: str
    capabilities: Capabilities
    needs: tuple[str, ...]
    """The toolchain's tools its clusters need on this host (`meshcharts tools install` builds them)."""

    def unavailable(self) -> str | None:
        """Why no cluster of this provider can be brought up on this machine (a missing engine), or None."""
        ...

    def up(self, name: str, request: UpRequest, *, say: Say) -> Cluster:
        """Bring cluster `name` up (or find it up); return once its API server answers and its nodes are Ready."""
        ...

    def down(self, name: str, *, timeout: float, say: Say) -> None:
        """Take cluster `name` down and check nothing it ran is left (a no-op where the cluster is not ours)."""
        ...

    def exists(self, name: str) -> bool:
        """Whether cluster `name` is already there (a test run then leaves it up)."""
        ...

    def kubeconfig(self, name: str, given: Path | None = None) -> Path:
        """Where the kubeconfig of cluster `name` is (ClusterError saying how to bring it up if it is not)."""
        ...

    def prune(self, *, timeout: float, say: Say) -> list[str]:
        """Take down the clusters of test runs that are gone; returns their names."""
        ...

    def logs(self, name: str, lines: int, *, istiod: bool = False) -> str:
        """The tails of the control plane's logs where this host has them ("" where the cluster keeps them);
        with `istiod`, those of the istiods run on this host for the cluster instead."""
        ...

    def egress(self, name: str) -> Egress:
        """The egress proxy of cluster `name` (only where `capabilities.egress_proxy`; ClusterError elsewhere)."""
        ...

    def istiod_runner(self, name: str) -> IstiodRunner:
        """What makes a chart's istiod Deployment answer on cluster `name` (its own pod, or a host process)."""
        ...


__all__ = ["Capabilities", "Provider", "UpRequest"]
