"""Hand CRDs created outside Helm (Istio 1.12's `crds/` folder, istioctl) to a base release, once.

Helm refuses to install an object that exists without its ownership metadata. Labelling and annotating
the CRDs the chart renders is all it takes; nothing else about them changes, so no resource is lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from meshcharts.errors import ClusterError
from meshcharts.kube import KubeApiError

MANAGED_BY = "app.kubernetes.io/managed-by"


@dataclass(frozen=True)
class Adoption:
    adopted: list[str]
    already: list[str]
    absent: list[str]


def adopt_crds(ext: Any, names: Iterable[str], *, release: str, namespace: str) -> Adoption:
    """Give each existing CRD in `names` Helm's ownership metadata for `release` in `namespace`.

    A CRD already owned by another release is left alone and reported as an error: taking it over
    silently would let two releases fight over it.
    """
    from kubernetes.client.exceptions import ApiException

    adopted: list[str] = []
    already: list[str] = []
    absent: list[str] = []
    conflicts: list[str] = []
    for name in sorted(names):
        try:
            crd = ext.read_custom_resource_definition(name)
        except ApiException as err:
            if err.status == 404:
                absent.append(name)
                continue
            raise KubeApiError(f"reading CRD {name}", err) from err
        annotations = crd.metadata.annotations or {}
        owner = (annotations.get("meta.helm.sh/release-name"), annotations.get("meta.helm.sh/release-namespace"))
        if owner == (release, namespace) and (crd.metadata.labels or {}).get(MANAGED_BY) == "Helm":
            already.append(name)
            continue
        if owner[0] is not None and owner != (release, namespace):
            conflicts.append(f"{name} (owned by release {owner[0]} in {owner[1]})")
            continue
        patch = {
            "metadata": {
                "labels": {MANAGED_BY: "Helm"},
                "annotations": {"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": namespace},
            }
        }
        try:
            ext.patch_custom_resource_definition(name, patch)
        except ApiException as err:
            done = f" (adopted before it: {', '.join(adopted)})" if adopted else ""
            raise KubeApiError(f"giving CRD {name} to release {namespace}/{release}{done}", err) from err
        adopted.append(name)
    if conflicts:
        raise ClusterError(
            "these CRDs belong to another Helm release; uninstall it or pass its name with --release: "
            + ", ".join(conflicts)
            + (f" (adopted meanwhile: {', '.join(adopted)})" if adopted else "")
        )
    return Adoption(adopted, already, absent)
