"""Kubernetes client errors reach the user inside the error root, naming the object: kubeconfigs, refusals, adoption."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from meshcharts import adopt
from meshcharts.errors import ClusterError
from meshcharts.kube import KubeApiError, kube_for


def test_a_missing_kubeconfig_is_a_cluster_error_naming_the_path(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match=rf"no kubeconfig at {tmp_path}/absent; pass --kubeconfig or set KUBECONFIG"):
        kube_for(tmp_path / "absent")


def test_a_file_that_is_no_kubeconfig_is_a_cluster_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text("just text\n")
    with pytest.raises(ClusterError, match=rf"{path} is not a usable kubeconfig"):
        kube_for(path)


def test_an_api_error_says_what_was_asked_and_the_servers_message() -> None:
    raw = ApiException(status=403, reason="Forbidden")
    raw.body = '{"kind":"Status","message":"customresourcedefinitions is forbidden: User \\"ci\\" cannot patch"}'
    err = KubeApiError("giving CRD gateways.networking.istio.io to release istio-system/istio-base", raw)
    assert str(err) == (
        "giving CRD gateways.networking.istio.io to release istio-system/istio-base: the API server answered "
        '403 Forbidden: customresourcedefinitions is forbidden: User "ci" cannot patch'
    )
    assert (err.status, err.reason) == (403, "Forbidden")


class _Refusing:
    """An apiextensions API whose CRDs exist without Helm metadata and whose patches are forbidden."""

    def read_custom_resource_definition(self, name: str) -> Any:
        return SimpleNamespace(metadata=SimpleNamespace(name=name, annotations={}, labels={}))

    def patch_custom_resource_definition(self, name: str, body: Any) -> None:
        raise ApiException(status=403, reason="Forbidden")


def test_adoption_refused_by_the_api_server_names_the_crd_and_the_release() -> None:
    with pytest.raises(KubeApiError, match=r"giving CRD a\.istio\.io to release istio-system/istio-base: .* 403"):
        adopt.adopt_crds(_Refusing(), ["a.istio.io"], release="istio-base", namespace="istio-system")
