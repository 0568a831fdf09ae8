"""The existing provider: any kubeconfig, checked reachable; never ours to take down."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from meshcharts.cluster._common import Cluster, Say, check_reachable
from meshcharts.cluster.provider import Capabilities, UpRequest
from meshcharts.controlplane import InClusterIstiod
from meshcharts.errors import ClusterError


def kubeconfig(kubeconfig: Path | None) -> Path:
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


class ExistingProvider:
    """`existing`: the user's cluster (`--kubeconfig`, else KUBECONFIG, else ~/.kube/config). Assumed to run pods
    and to give LoadBalancer addresses (a cloud's, or MetalLB); never created, deleted or pruned by us."""

    name = "existing"
    capabilities = Capabilities(simulated_pods=False, egress_proxy=False, load_balancer=True, owns_clusters=False)
    needs: tuple[str, ...] = ()

    def __init__(self, cache: Path | None = None) -> None:
        self.cache = cache

    def unavailable(self) -> str | None:
        return None

    def up(self, name: str, request: UpRequest, *, say: Say) -> Cluster:
        if request.image is not None:
            raise ClusterError("--image is for --provider kind; provider existing runs no node image")
        path = kubeconfig(request.kubeconfig)
        check_reachable(path, timeout=request.timeout)
        return Cluster(name, self.name, path)

    def down(self, name: str, *, timeout: float, say: Say) -> None:
        say("provider existing: the cluster is not ours to take down; nothing done")

    def exists(self, name: str) -> bool:
        return True

    def kubeconfig(self, name: str, given: Path | None = None) -> Path:
        return kubeconfig(given)

    def prune(self, *, timeout: float, say: Say) -> list[str]:
        return []

    def logs(self, name: str, lines: int, *, istiod: bool = False) -> str:
        return ""

    def egress(self, name: str) -> Any:
        raise ClusterError("provider existing has no egress proxy: its Services route to real pods")

    def istiod_runner(self, name: str) -> InClusterIstiod:
        return InClusterIstiod()
