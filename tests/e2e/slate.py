"""A clean slate for tests that install base themselves: no base release and none of the Istio CRDs."""

from __future__ import annotations

from typing import Any

from kubernetes.client.exceptions import ApiException

from meshcharts import crds, waits
from meshcharts.errors import HelmError
from meshcharts.helm import Helm
from meshcharts.testing.plugin import Kube
from tests import REPO
from tests.cluster_fixtures import BASE_RELEASE

API_TYPES = crds.load_api_types(REPO / "generator" / "specs" / "crds")


CRD_NAMES = sorted(t.name for t in API_TYPES)


def uninstall_base_and_crds(helm: Helm, kube: Kube) -> None:
    """A clean slate: no base release and none of the Istio CRDs (deleting them deletes their resources)."""
    try:
        helm.uninstall(BASE_RELEASE[0], namespace=BASE_RELEASE[1], wait=True, timeout=60)
    except HelmError as err:
        if "not found" not in err.stderr:
            raise
    for api in API_TYPES:
        if crd_exists(kube, api.name):
            # Deleting a CRD whose storage is still initializing leaves it Terminating with a long retry
            # backoff ("could not list instances"); wait until its instances can be listed first.
            waits.wait_until(lambda api=api: crd_lists(kube, api), condition=f"{api.name} to serve lists", timeout=30)
    for name in CRD_NAMES:
        try:
            kube.ext.delete_custom_resource_definition(name)
        except ApiException as err:
            if err.status != 404:
                raise
    waits.wait_until(
        lambda: not [n for n in CRD_NAMES if crd_exists(kube, n)],
        condition="Istio CRDs to be gone",
        timeout=60,
        describe=lambda: (
            "left: "
            + ", ".join(
                f"{n} {kube.ext.read_custom_resource_definition(n).status.conditions}"
                for n in CRD_NAMES
                if crd_exists(kube, n)
            )
        ),
    )


def crd_lists(kube: Kube, api: Any) -> bool:
    try:
        kube.custom.list_cluster_custom_object(api.group, api.storage_version, api.name.split(".", 1)[0], limit=1)
    except ApiException:
        return False
    return True


def crd_exists(kube: Kube, name: str) -> bool:
    try:
        kube.ext.read_custom_resource_definition(name)
    except ApiException as err:
        if err.status == 404:
            return False
        raise
    return True
