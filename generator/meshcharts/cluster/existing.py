"""The existing provider: any kubeconfig, checked reachable; never ours to take down."""

from __future__ import annotations

import os
from pathlib import Path

from meshcharts.errors import ClusterError

# --- existing ---------------------------------------------------------------------------------------


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
